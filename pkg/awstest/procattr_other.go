//go:build !linux

package awstest

import "syscall"

// sysProcAttr has no parent-death signal off Linux: stop the server with Run.
func sysProcAttr() *syscall.SysProcAttr { return nil }
