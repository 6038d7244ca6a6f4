package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/backing"
)

// TestKillingTheRuntimeLeavesNoProcessBehind runs `tickit-local run` as a user would, wakes a
// function, SIGKILLs the runtime and checks that every process it started is gone too.
func TestKillingTheRuntimeLeavesNoProcessBehind(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "tickit-local")
	build := exec.Command("go", "build", "-o", bin, "./knative/local/cmd/tickit-local")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build tickit-local: %v\n%s", err, out)
	}
	// The functions built for this package, linked where the runtime builds them: up to date.
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(binDir)
	for _, e := range entries {
		if err := os.Link(filepath.Join(binDir, e.Name()), filepath.Join(data, "bin", e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	port, err := backing.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	runtime := exec.Command(bin, "run")
	runtime.Dir = root
	runtime.Env = append(os.Environ(), "ADDR="+addr, "DATA="+data, "TICK=1s", "STRIPE_API_BASE="+stripeURL)
	out, err := runtime.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := runtime.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = runtime.Process.Kill(); _ = runtime.Wait() }()
	up := make(chan bool, 1)
	go func() { // read until "tickit is up", then keep the pipe drained
		lines, said := bufio.NewScanner(out), false
		for lines.Scan() {
			if !said && strings.HasPrefix(lines.Text(), "tickit is up") {
				said = true
				up <- true
			}
		}
		if !said {
			up <- false
		}
	}()
	select {
	case ok := <-up:
		if !ok {
			t.Fatal(`the runtime ended its output without "tickit is up"`)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal(`the runtime did not say "tickit is up" within 5 minutes`)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/tickets", nil)
	req.Host = "tickets.tickit.127.0.0.1.sslip.io"
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	children := descendants(runtime.Process.Pid)
	var names []string
	for _, pid := range children {
		names = append(names, command(pid))
	}
	if all := strings.Join(names, "\n"); !strings.Contains(all, "redis-server") || !strings.Contains(all, filepath.Join(data, "bin", "tickets")) {
		t.Fatalf("the runtime's processes:\n%s\nwant redis-server and the woken tickets function", all)
	}

	_ = runtime.Process.Kill()
	_ = runtime.Wait()

	deadline := time.Now().Add(20 * time.Second)
	for _, pid := range children {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d (%s) outlived the killed runtime", pid, command(pid))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	parents := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			parents[ppid] = append(parents[ppid], child)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range parents[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func command(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}
