package rotator_test

import (
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// TestBackoffNextAttempt is the table of the project's one backoff. It
// carries the cases of the copies it replaced (salesforce.ExponentialBackoff,
// vault.DefaultBackoff, the scheduler's, the notifier's and the daemon's
// doubling waits).
func TestBackoffNextAttempt(t *testing.T) {
	half := func() float64 { return 0.5 }
	zero := func() float64 { return 0 }
	equal := rotator.Backoff{Base: 10 * time.Second, Max: 2 * time.Minute, Attempts: 5, Jitter: 0.5, Rand: half}
	plain := rotator.Backoff{Base: time.Second, Max: time.Minute, Attempts: 4}
	const maxDuration = time.Duration(1<<63 - 1)
	tests := []struct {
		name      string
		b         rotator.Backoff
		attempt   int
		wantRetry bool
		wantWait  time.Duration
	}{
		{"the first retry waits three quarters of base with mid jitter", equal, 1, true, 7500 * time.Millisecond},
		{"the second doubles", equal, 2, true, 15 * time.Second},
		{"the fourth is 80s before jitter", equal, 4, true, 60 * time.Second},
		{"the wait is capped at max", equal, 5, true, 90 * time.Second},
		{"past the allowed attempts there is no retry, but still a wait", equal, 6, false, 90 * time.Second},
		{"zero jitter gives half the exponential wait", rotator.Backoff{Base: 10 * time.Second, Max: time.Minute, Attempts: 3, Jitter: 0.5, Rand: zero}, 2, true, 10 * time.Second},
		{"a nil Rand counts as zero", rotator.Backoff{Base: 10 * time.Second, Max: time.Minute, Attempts: 3, Jitter: 0.5}, 2, true, 10 * time.Second},
		{"jitter near one gives almost the full wait", rotator.Backoff{Base: 10 * time.Second, Max: time.Minute, Attempts: 3, Jitter: 0.5, Rand: func() float64 { return 0.999 }}, 1, true, 9995 * time.Millisecond},
		{"a sixth of jitter spreads the top sixth", rotator.Backoff{Base: 600 * time.Millisecond, Max: 36 * time.Second, Attempts: rotator.Forever, Jitter: 1.0 / 6, Rand: zero}, 1, true, 500 * time.Millisecond},
		{"attempt zero is treated as the first", equal, 0, true, 7500 * time.Millisecond},
		{"without jitter the first failure waits the base", plain, 1, true, time.Second},
		{"without jitter the second failure doubles the wait", plain, 2, true, 2 * time.Second},
		{"without jitter the fourth waits eight times the base", plain, 4, true, 8 * time.Second},
		{"the last allowed retry is followed by none", plain, 5, false, 16 * time.Second},
		{"no retries allowed never retries", rotator.Backoff{Base: time.Second, Max: time.Minute}, 1, false, time.Second},
		{"a huge attempt number does not overflow past max", rotator.Backoff{Base: time.Second, Max: 3 * time.Second, Attempts: rotator.Forever}, 999, true, 3 * time.Second},
		{"an unbounded cap does not overflow", rotator.Backoff{Base: time.Second, Max: maxDuration, Attempts: rotator.Forever}, 999, true, maxDuration},
		{"zero base gives zero waits for tests", rotator.Backoff{Attempts: 3}, 2, true, 0},
		{"Forever always retries", rotator.Backoff{Base: time.Minute, Max: time.Hour, Attempts: rotator.Forever}, 1 << 20, true, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry, wait := tt.b.NextAttempt(tt.attempt)
			if retry != tt.wantRetry || wait != tt.wantWait {
				t.Errorf("NextAttempt(%d) = %v, %s; want %v, %s", tt.attempt, retry, wait, tt.wantRetry, tt.wantWait)
			}
		})
	}
	if retry, wait := rotator.NoRetry(1); retry || wait != 0 {
		t.Errorf("NoRetry(1) = %v, %s; want false, 0", retry, wait)
	}
}
