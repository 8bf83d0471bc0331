package salesforce

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// parseRetryAfter reads a Retry-After header (delay-seconds or HTTP-date).
func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// sleepCtx waits d or until ctx is done; the default Options.Sleep.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DefaultBackoff is Options.Backoff's default for idempotent calls: 4
// attempts in all (3 retries), 500ms doubling to 10s, equal jitter from
// rnd (math/rand/v2's Float64 in production).
func DefaultBackoff(rnd func() float64) rotator.Backoff {
	return rotator.Backoff{Base: 500 * time.Millisecond, Max: 10 * time.Second, Attempts: 3, Jitter: 0.5, Rand: rnd}
}
