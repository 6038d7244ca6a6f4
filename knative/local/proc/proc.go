// Package proc starts the runtime's child processes so that none outlives it: each child
// leads its own process group (stopping it stops what it started), and on Linux the kernel
// kills it when the runtime dies, also on SIGKILL.
package proc

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Pdeathsig fires when the OS thread that forked the child exits, not the process; Go may
// retire threads, so every child is forked from one goroutine locked to a thread that lives
// as long as the runtime.
var spawns = make(chan spawn)

type spawn struct {
	cmd  *exec.Cmd
	done chan error
}

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for s := range spawns {
			s.done <- s.cmd.Start()
		}
	}()
}

// Start starts cmd in its own process group, tied to the runtime's life.
func Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = sysProcAttr()
	s := spawn{cmd: cmd, done: make(chan error, 1)}
	spawns <- s
	return <-s.done
}

// Stop sends SIGTERM to cmd's process group, waits up to grace for exited to close (the
// caller's cmd.Wait), then kills the group.
func Stop(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	if cmd.Process == nil {
		return
	}
	signalGroup(cmd, syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(grace):
	}
	signalGroup(cmd, syscall.SIGKILL)
	<-exited
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if err := syscall.Kill(-cmd.Process.Pid, sig); errors.Is(err, syscall.ESRCH) {
		_ = cmd.Process.Signal(sig) // the group is gone; the process may not be
	}
}
