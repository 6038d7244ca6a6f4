package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// supervisor starts every process of the run, each in its own process group with its
// output in logs/<name>.log, and stops them by PID, tier by tier in the reverse order of
// their start (functions and Knative together, then the API server, then etcd: an API
// server whose etcd went first hangs in its shutdown).
type supervisor struct {
	logs    string
	tier    int         // the tier of the processes started next
	failed  func(error) // called once when a process exits on its own
	mu      sync.Mutex
	procs   []*proc
	closing bool
}

type proc struct {
	tier    int
	name    string
	cmd     *exec.Cmd
	log     string
	done    chan struct{}
	stopped atomic.Bool // stopped on purpose by stop: its exit is not a failure of the run
	// onExit, when set, is called (in its own goroutine) instead of failing the run when
	// the process exits on its own: a pod's restartPolicy.
	onExit func(err error)
}

func (s *supervisor) start(name, bin string, args, env []string) (*proc, error) {
	return s.startWith(name, bin, args, env, nil)
}

// startWith starts a process whose exit on its own calls onExit rather than failing the run.
func (s *supervisor) startWith(name, bin string, args, env []string, onExit func(error)) (*proc, error) {
	// A restarted process appends to its log, so both lives stay readable.
	log, err := os.OpenFile(filepath.Join(s.logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	// Own process group (so a stop reaches the children), and killed with us even if we die hard.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{tier: s.tier, name: name, cmd: cmd, log: log.Name(), done: make(chan struct{}), onExit: onExit}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		log.Close()
		close(p.done)
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if !closing && !p.stopped.Load() && p.onExit != nil {
			go p.onExit(err)
			return
		}
		if !closing && !p.stopped.Load() && s.failed != nil {
			s.failed(fmt.Errorf("%s exited (%v); last lines of %s:\n%s", name, err, p.log, tail(p.log, 15)))
		}
	}()
	return p, nil
}

// stop ends one process on purpose (a fault the run injects): sig to its group, then
// SIGKILL if it has not exited within timeout. It returns once the process is gone.
func (s *supervisor) stop(p *proc, sig syscall.Signal, timeout time.Duration) error {
	p.stopped.Store(true)
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return nil
}

// stopAll stops every process, the newest tier first, a tier's processes together:
// SIGTERM to each one's group, SIGKILL after 5 s (Knative's webhooks drain for longer).
func (s *supervisor) stopAll() {
	s.mu.Lock()
	s.closing = true
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	for tier := s.tier; tier >= 0; tier-- {
		var wg sync.WaitGroup
		for _, p := range procs {
			if p.tier != tier {
				continue
			}
			wg.Go(func() {
				select {
				case <-p.done:
					return
				default:
				}
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
				select {
				case <-p.done:
				case <-time.After(5 * time.Second):
					_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
					<-p.done
				}
			})
		}
		wg.Wait()
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return "  " + strings.Join(lines, "\n  ")
}

// freePort asks the kernel for a free TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ports returns n distinct free ports.
func ports(n int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// poll calls check until it returns nil, the context ends or the timeout passes; the
// error names what was awaited and the last reason it was not there yet.
func poll(ctx context.Context, what string, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s: not within %s: %w", what, timeout, err)
			}
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hostIP is the first non-loopback IPv4 address: the API server refuses loopback
// addresses in endpoints, and calls the webhooks there.
func hostIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("no non-loopback IPv4 address")
}

// rss sums the resident memory of the running processes (from /proc).
func (s *supervisor) rss() (n int, mib float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				var kb float64
				if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kb); err == nil {
					n++
					mib += kb / 1024
				}
			}
		}
	}
	return n, mib
}
