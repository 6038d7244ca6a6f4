package proc_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/proc"
)

// With TEST_PROC=parent the test binary plays the runtime: it starts a child through proc,
// prints the child's pid and waits to be killed.
func TestMain(m *testing.M) {
	if os.Getenv("TEST_PROC") == "parent" {
		child := exec.Command("sleep", "300")
		if err := proc.Start(child); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(child.Process.Pid)
		select {}
	}
	os.Exit(m.Run())
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || !strings.Contains(string(stat), ") Z ")
}

// readLine reads the first line a process writes, for at most a minute.
func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		got <- result{line, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("reading the process's first line: %v", r.err)
		}
		return r.line
	case <-time.After(time.Minute):
		t.Fatal("the process wrote no line within a minute")
		return ""
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestChildrenDieWhenTheRuntimeIsKilled(t *testing.T) {
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), "TEST_PROC=parent")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line := readLine(t, out)
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("the parent said %q", line)
	}
	if !alive(child) {
		t.Fatal("the child is not running")
	}

	_ = parent.Process.Kill() // SIGKILL: the runtime gets no chance to clean up
	_ = parent.Wait()

	eventually(t, "the child killed with its parent", func() bool { return !alive(child) })
}

func TestStopEndsTheWholeProcessGroup(t *testing.T) {
	// A shell that starts a grandchild: stopping the shell must stop the grandchild too.
	cmd := exec.Command("sh", "-c", "sleep 300 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(cmd); err != nil {
		t.Fatal(err)
	}
	line := readLine(t, out)
	grandchild, _ := strconv.Atoi(strings.TrimSpace(line))
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	proc.Stop(cmd, exited, 5*time.Second)

	eventually(t, "the grandchild stopped", func() bool { return !alive(grandchild) })
}

func TestPrefixWritesWholeLinesWithThePrefix(t *testing.T) {
	var buf bytes.Buffer
	w := proc.Prefix(&buf, "[fn] ")
	fmt.Fprint(w, "one\ntw")
	fmt.Fprint(w, "o\nthree")
	if got := buf.String(); got != "[fn] one\n[fn] two\n" {
		t.Fatalf("got %q", got)
	}
}
