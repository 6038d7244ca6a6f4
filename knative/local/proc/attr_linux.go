package proc

import "syscall"

// sysProcAttr: own process group, and SIGKILL from the kernel when the runtime dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
