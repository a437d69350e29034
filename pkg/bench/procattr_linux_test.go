//go:build bench && linux

package bench

import "syscall"

// sysProcAttr makes the kernel kill a moto_server the harness started if
// the test binary dies (a -timeout panic runs no cleanup).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
