package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for range 100 {
		if d := Backoff(1, 200*time.Millisecond, ""); d < 100*time.Millisecond || d > 200*time.Millisecond {
			t.Fatalf("first wait %s, want 100–200 ms", d)
		}
		if d := Backoff(3, 200*time.Millisecond, ""); d < 400*time.Millisecond || d > 800*time.Millisecond {
			t.Fatalf("third wait %s, want 400–800 ms", d)
		}
		if d := Backoff(20, time.Second, ""); d > 5*time.Second {
			t.Fatalf("wait %s over the 5 s ceiling", d)
		}
	}
	if d := Backoff(1, time.Millisecond, "2"); d != 2*time.Second {
		t.Fatalf("Retry-After 2: %s", d)
	}
	if d := Backoff(1, time.Millisecond, "3600"); d != 5*time.Second {
		t.Fatalf("Retry-After 3600: %s, want the 5 s ceiling", d)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("err = %v", err)
	}
}
