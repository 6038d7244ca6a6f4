package runtime_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tickit/tickit/functions/internal/testenv"
)

// buildMinimal builds testdata/minimal, the smallest function binary.
func buildMinimal(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "minimal")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/minimal").CombinedOutput(); err != nil {
		tb.Fatalf("build minimal: %v\n%s", err, out)
	}
	return bin
}

// startMinimal execs the binary on a free port and waits for /healthz; it returns the
// process, its base URL and the time from exec to the first 200.
func startMinimal(tb testing.TB, bin string) (*exec.Cmd, string, time.Duration) {
	tb.Helper()
	port := testenv.FreePort(tb)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	for {
		resp, err := client.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, url, time.Since(start)
			}
		}
		if time.Since(start) > 10*time.Second {
			_ = cmd.Process.Kill()
			tb.Fatalf("minimal did not become healthy: %v", err)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func TestSIGTERMDrainsInFlightRequestsThenExitsZero(t *testing.T) {
	// Arrange: a request that takes a while is in flight.
	cmd, url, _ := startMinimal(t, buildMinimal(t))
	answered := make(chan int, 1)
	go func() {
		resp, err := testenv.Client.Get(url + "/api/slow?for=700ms")
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond)

	// Act
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// Assert: the in-flight request completes, new connections are refused, exit status 0.
	if status := testenv.Receive(t, answered, time.Minute, "the in-flight request's answer"); status != http.StatusOK {
		t.Fatalf("in-flight request got %d, want 200", status)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := testenv.Receive(t, exited, time.Minute, "the function to exit after SIGTERM"); err != nil {
		t.Fatalf("exit: %v, want status 0", err)
	}
	if _, err := testenv.Client.Get(url + "/healthz"); err == nil {
		t.Fatal("the function still answers after exiting")
	}
}

// BenchmarkColdStart times exec of a minimal function binary to its first 200 on /healthz.
func BenchmarkColdStart(b *testing.B) {
	bin := buildMinimal(b)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd, _, d := startMinimal(b, bin)
		total += d
		b.StopTimer()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-healthy")
}
