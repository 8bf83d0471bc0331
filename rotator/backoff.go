package rotator

import "time"

// BackoffFunc decides, after the attempt-th failed attempt (1-based),
// whether to try again and how long to wait first. It is the one retry
// shape of the project (consul-template's RetryFunc): the engine, the
// Salesforce and Vault clients, the scheduler and the webhook notifier all
// take one, and Backoff.NextAttempt is the one implementation.
type BackoffFunc func(attempt int) (retry bool, wait time.Duration)

// Forever as Backoff.Attempts never gives up: the caller stops on its own
// terms (a context, a per-webhook attempt limit, the next schedule).
const Forever = -1

// Backoff is exponential backoff with optional jitter, the only one in the
// project. The wait before jitter is Base·2^(attempt-1), capped at Max.
// Jitter is the random fraction of that wait: the wait is drawn from
// [d·(1-Jitter), d], so 0 gives the plain exponential wait and 0.5 is
// "equal jitter" (half fixed, half random), which spreads replicas that
// failed together without ever retrying at once. Rand returns a float in
// [0,1) and is injected so tests get exact waits; production passes
// math/rand/v2's Float64 (jitter protects nothing secret). A nil Rand
// counts as 0 (the shortest wait of the range).
type Backoff struct {
	Base     time.Duration // wait before the first retry, before jitter
	Max      time.Duration // cap on the un-jittered wait
	Attempts int           // retries allowed: attempt > Attempts gives retry=false; negative (Forever) never gives up
	Jitter   float64       // random fraction of each wait, in [0,1]
	Rand     func() float64
}

// NoRetry never retries (Backoff{}.NextAttempt, named for readability).
func NoRetry(int) (bool, time.Duration) { return false, 0 }

// NextAttempt returns whether attempt (1-based; less than 1 counts as 1)
// may be retried and how long to wait first. The wait is returned even
// when retry is false, for callers that pace something other than a retry
// (the engine's next scheduled attempt).
func (b Backoff) NextAttempt(attempt int) (retry bool, wait time.Duration) {
	if attempt < 1 {
		attempt = 1
	}
	d := b.Base
	for i := 1; i < attempt && d > 0 && d < b.Max; i++ {
		if d > b.Max/2 {
			d = b.Max // doubling would pass the cap (or overflow)
			break
		}
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if b.Jitter > 0 {
		r := 0.0
		if b.Rand != nil {
			r = b.Rand()
		}
		j := min(b.Jitter, 1)
		spread := time.Duration(j * float64(d))
		d = d - spread + time.Duration(r*float64(spread))
	}
	return b.Attempts < 0 || attempt <= b.Attempts, d
}
