//go:build unix && !linux

package proc

import "syscall"

// sysProcAttr: own process group (no parent-death signal outside Linux).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
