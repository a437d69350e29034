package awstest

import "syscall"

// sysProcAttr makes the kernel kill moto_server when the test binary dies,
// however it dies, so no server outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
