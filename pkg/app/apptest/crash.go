package apptest

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// CrashAfterOpen wraps a Provider whose first successful Open dies right
// after the provider conversation is opened, before the bridge records it,
// as a function killed at that moment would: the request is aborted.
type CrashAfterOpen struct {
	hitl.Provider
	crashed atomic.Bool
}

// Open opens through the wrapped Provider, and aborts the request the
// first time that succeeds.
func (c *CrashAfterOpen) Open(ctx context.Context, req hitl.OpenRequest) (hitl.Opened, error) {
	opened, err := c.Provider.Open(ctx, req)
	if err == nil && c.crashed.CompareAndSwap(false, true) {
		panic(http.ErrAbortHandler)
	}
	return opened, err
}
