//go:build bench && !linux

package bench

import "syscall"

// sysProcAttr has no parent-death signal off Linux: test cleanup stops
// the servers.
func sysProcAttr() *syscall.SysProcAttr { return nil }
