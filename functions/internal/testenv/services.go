package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Redis returns the URL of a fresh Redis: redis-server from PATH when there is one (make test
// installs it), else the embedded miniredis, with a log line saying so.
func Redis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Log("redis-server not on PATH: using the embedded miniredis")
		m := miniredis.RunT(t)
		return "redis://" + m.Addr()
	}
	port := FreePort(t)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	start(t, cmd)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	return fmt.Sprintf("redis://127.0.0.1:%d", port)
}

// StripeMock starts stripe-mock (the tool pinned in functions/go.mod) on loopback only, with
// an optional fixtures file, and returns its base URL. Both its HTTP and HTTPS listeners are
// bound to 127.0.0.1: left alone it opens HTTPS on every interface.
func StripeMock(t testing.TB, fixtures string) string {
	t.Helper()
	bin := toolPath(t, "stripe-mock")
	port, tlsPort := FreePort(t), FreePort(t)
	args := []string{"-http-addr", fmt.Sprintf("127.0.0.1:%d", port), "-https-addr", fmt.Sprintf("127.0.0.1:%d", tlsPort)}
	if fixtures != "" {
		abs, err := filepath.Abs(fixtures)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "-fixtures", abs)
	}
	start(t, exec.Command(bin, args...))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := (&http.Client{Timeout: time.Second}).Get(base + "/v1/charges")
		if err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock did not answer on %s: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// toolPath builds (or finds in the build cache) a tool of the module's go.mod.
func toolPath(t testing.TB, name string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("go", "tool", "-n", name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool -n %s: %v\n%s", name, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// start runs cmd until the test ends; its output goes to the test log when the test fails.
func start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), out.String())
		}
	})
}

func waitTCP(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
