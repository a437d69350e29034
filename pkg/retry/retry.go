// Package retry is the wait between attempts of a provider API call: the
// providers share one policy, bounded so a call never outlives its
// request's budget.
package retry

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"
)

// ceiling caps every wait, Retry-After included.
const ceiling = 5 * time.Second

// Backoff is the wait before attempt+1: base doubled per attempt, capped at
// 5 s, with full jitter over its upper half, or the provider's Retry-After
// seconds when it sends them (also capped).
func Backoff(attempt int, base time.Duration, retryAfter string) time.Duration {
	if s, err := strconv.Atoi(retryAfter); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, ceiling)
	}
	d := min(base<<(attempt-1), ceiling)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
