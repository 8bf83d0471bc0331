package rotatortest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// Clock is the fake rotator.Clock: its time moves only when told (Advance,
// Sleep), and its timers fire when the time passes their deadline. It is
// safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*timer // armed, not yet fired or stopped
}

var _ rotator.Clock = (*Clock)(nil)

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d and fires the timers whose deadline
// it reaches.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool {
		if t.at.After(c.t) {
			return false
		}
		t.ch <- c.t // buffered (1) and sent once: never blocks
		return true
	})
}

// Sleep advances the clock by d instead of waiting; it matches
// rotator.Options.Sleep.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}

// NewTimer returns a timer that fires when the clock reaches now+d (at once
// when d <= 0).
func (c *Clock) NewTimer(d time.Duration) rotator.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.t.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.t
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Timers is how many timers are armed: a test waits for a loop to block on
// its timer before it advances the clock.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

// Stop disarms the timer; it reports whether the timer was armed.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	n := len(t.c.timers)
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *timer) bool { return x == t })
	return len(t.c.timers) < n
}
