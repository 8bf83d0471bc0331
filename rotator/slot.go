package rotator

import (
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// CronParser is the one schedule syntax of ecarotator (config validation,
// plan and the scheduler): 5 fields or @descriptors, with an optional
// CRON_TZ= or TZ= prefix.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ErrNoSlot is returned when a schedule has no further slot (robfig/cron
// gives up after five years, e.g. for "0 0 30 2 *").
var ErrNoSlot = errors.New("schedule has no next slot")

// ParseSchedule parses a schedule in the configuration's syntax.
func ParseSchedule(schedule string) (cron.Schedule, error) {
	s, err := CronParser.Parse(schedule)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", schedule, err)
	}
	return s, nil
}

// NextSlot returns the first slot of schedule strictly after after.
//
// It corrects robfig/cron's handling of daylight-saving changes in the
// schedule's time zone so that a wall-clock slot runs exactly once a day:
// a slot that falls into the hour skipped by a spring-forward change runs at
// the instant time.Date normalises it to (02:30 → 03:30 CEST), and the second
// occurrence of a wall-clock time repeated by a fall-back change is skipped.
func NextSlot(schedule string, after time.Time) (time.Time, error) {
	s, err := ParseSchedule(schedule)
	if err != nil {
		return time.Time{}, err
	}
	return NextSlotOf(s, after)
}

// dstShifts are how far back a repeated wall-clock time is looked for: real
// zones shift their clocks by 30 minutes to 2 hours.
var dstShifts = []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour}

// NextSlotOf is NextSlot on a parsed schedule.
func NextSlotOf(s cron.Schedule, after time.Time) (time.Time, error) {
	spec, ok := s.(*cron.SpecSchedule)
	if !ok { // @every: a constant delay, no wall clock involved
		n := s.Next(after)
		if n.IsZero() {
			return time.Time{}, ErrNoSlot
		}
		return n, nil
	}
	loc := spec.Location
	if loc == nil {
		loc = time.Local
	}
	// A bounded loop: each iteration skips one repeated wall-clock time.
	for range 64 {
		n := spec.Next(after)
		if n.IsZero() {
			return time.Time{}, ErrNoSlot
		}
		if g, ok := gapSlot(spec, loc, after, n); ok {
			return g, nil
		}
		if !repeated(n, loc) {
			return n, nil
		}
		after = n
	}
	return time.Time{}, ErrNoSlot
}

// repeated reports whether n's wall-clock time in loc already occurred
// shortly before n, i.e. n is the second pass through a fall-back hour.
func repeated(n time.Time, loc *time.Location) bool {
	w := n.In(loc)
	for _, d := range dstShifts {
		p := n.Add(-d).In(loc)
		if p.Year() == w.Year() && p.YearDay() == w.YearDay() && p.Hour() == w.Hour() && p.Minute() == w.Minute() && p.Second() == w.Second() {
			return true
		}
	}
	return false
}

// gapSlot finds a slot whose wall-clock time was skipped by a spring-forward
// change between after and n (robfig/cron silently drops it) and returns the
// instant it is normalised to.
func gapSlot(spec *cron.SpecSchedule, loc *time.Location, after, n time.Time) (time.Time, bool) {
	_, offA := after.In(loc).Zone()
	_, offN := n.In(loc).Zone()
	if offN <= offA {
		return time.Time{}, false
	}
	// Find the transition: the first second whose offset is offN.
	lo, hi := after, n
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if _, o := mid.In(loc).Zone(); o == offA {
			lo = mid
		} else {
			hi = mid
		}
	}
	transition := hi.Truncate(time.Second)
	gap := time.Duration(offN-offA) * time.Second
	// Evaluate the schedule on the old offset's wall clock, where the
	// skipped hour still exists.
	old := *spec
	old.Location = time.FixedZone("pre-transition", offA)
	from := transition.Add(-time.Second)
	if from.Before(after) {
		from = after
	}
	c := old.Next(from)
	if c.IsZero() || !c.Before(transition.Add(gap)) || !c.Before(n) || !c.After(after) {
		return time.Time{}, false
	}
	return c.In(n.Location()), true
}
