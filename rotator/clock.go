package rotator

import "time"

// Timer is the part of *time.Timer that a Clock's users need.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// SystemClock is the Clock backed by package time, the only real one.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer wrapped as a Timer.
func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }

var _ Clock = SystemClock{}
