package rotatortest

import (
	"testing"
	"time"
)

func fired(c <-chan time.Time) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestClockTimersFireWhenTheClockReachesTheirDeadline(t *testing.T) {
	start := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	c := NewClock(start)
	tm := c.NewTimer(time.Minute)
	if c.Timers() != 1 {
		t.Fatalf("armed timers = %d, want 1", c.Timers())
	}
	c.Advance(59 * time.Second)
	if fired(tm.C()) {
		t.Fatal("the timer fired a second early")
	}
	c.Advance(time.Second)
	select {
	case at := <-tm.C():
		if !at.Equal(start.Add(time.Minute)) {
			t.Errorf("fired at %s, want %s", at, start.Add(time.Minute))
		}
	default:
		t.Fatal("the timer did not fire at its deadline")
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it armed")
	}
	if c.Timers() != 0 {
		t.Errorf("armed timers = %d after firing, want 0", c.Timers())
	}
}

func TestClockStoppedTimersNeverFire(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	tm := c.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer reported it not armed")
	}
	c.Advance(time.Hour)
	if fired(tm.C()) {
		t.Fatal("a stopped timer fired")
	}
}

func TestClockTimerOfZeroFiresAtOnce(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	if !fired(c.NewTimer(0).C()) {
		t.Fatal("a zero timer did not fire at once")
	}
	if c.Timers() != 0 {
		t.Errorf("armed timers = %d, want 0", c.Timers())
	}
}
