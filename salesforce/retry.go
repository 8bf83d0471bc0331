package salesforce

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BackoffFunc decides, after the attempt-th failed attempt (1-based), whether
// to try again and how long to wait first. It must be a pure function of its
// input (plus an injected jitter source) so it can be table-tested.
type BackoffFunc func(attempt int) (retry bool, wait time.Duration)

// ExponentialBackoff returns a BackoffFunc allowing maxAttempts attempts in
// total, waiting base·2^(attempt-1) capped at maxWait. With a jitter source
// (returning values in [0,1), e.g. math/rand/v2.Float64) half of each wait
// is fixed and the other half scaled by jitter(), so replicas spread out but
// never hot-loop; a nil jitter gives the plain exponential wait.
func ExponentialBackoff(base, maxWait time.Duration, maxAttempts int, jitter func() float64) BackoffFunc {
	return func(attempt int) (bool, time.Duration) {
		if attempt < 1 || attempt >= maxAttempts {
			return false, 0
		}
		wait := base
		for i := 1; i < attempt && wait < maxWait; i++ {
			if wait > maxWait/2 {
				wait = maxWait // doubling would pass the cap (or overflow)
				break
			}
			wait *= 2
		}
		if wait > maxWait {
			wait = maxWait
		}
		if jitter != nil {
			// Keep half of the wait fixed so retries never collapse to a
			// hot loop, jitter the other half.
			wait = wait/2 + time.Duration(jitter()*float64(wait/2))
		}
		return true, wait
	}
}

// NoRetry never retries.
func NoRetry(int) (bool, time.Duration) { return false, 0 }

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
