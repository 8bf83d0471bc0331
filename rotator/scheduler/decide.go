// Package scheduler decides when each app rotates and runs the loop that
// starts those rotations.
//
// The decisions are pure functions of their inputs (NextSlot, StartAt, Due):
// they take the current time and a randomness source as arguments and never
// read the wall clock. The Scheduler loop around them owns the timers, the
// per-Dev-Hub concurrency limits, the API-budget deferrals, retries,
// retirements and graceful shutdown; it reaches the clock only through the
// injected Clock.
//
// Following cert-manager, this package decides *when*; rotator.ShouldRotate
// (called by the engine inside the run callback) decides *whether*.
package scheduler

import (
	"fmt"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/robfig/cron/v3"
)

// Reason says why an app runs (or waits). The constants are stable: the run
// callback receives them, and logs, metrics and audit details reuse them.
type Reason string

// Reasons for a decision or a run.
const (
	// ReasonScheduled: a cron slot's start (slot + jitter) has arrived.
	ReasonScheduled Reason = "Scheduled"
	// ReasonCatchUp: a slot passed while the daemon was down (or before the
	// app was loaded) and its window is still open; it runs once, inside
	// what is left of the window.
	ReasonCatchUp Reason = "CatchUp"
	// ReasonMaxAge: the last rotation is older than the app's max age.
	ReasonMaxAge Reason = "MaxAgeExceeded"
	// ReasonMissedSkipped: slots were missed and their windows have closed;
	// max age is not exceeded, so the app waits for its next slot.
	ReasonMissedSkipped Reason = "MissedSlotSkipped"
	// ReasonRetry: a previous run asked to be retried at a given time.
	ReasonRetry Reason = "Retry"
	// ReasonRetire: the previous credential's overlap ends; retire it.
	ReasonRetire Reason = "Retire"
	// ReasonAPIBudget: the Dev Hub's API usage is above its threshold; the
	// run is deferred.
	ReasonAPIBudget Reason = "APIBudgetExceeded"
	// ReasonInvalidSchedule: the cron expression does not parse.
	ReasonInvalidSchedule Reason = "InvalidSchedule"
)

// ErrNoSlot is returned when a schedule has no further slot (robfig/cron
// gives up after five years, e.g. for "0 0 30 2 *").
var ErrNoSlot = rotator.ErrNoSlot

// Parse parses a schedule in the configuration's syntax.
func Parse(schedule string) (cron.Schedule, error) { return rotator.ParseSchedule(schedule) }

// NextSlot returns the first slot of schedule strictly after after, with
// daylight-saving changes handled (see rotator.NextSlot).
func NextSlot(schedule string, after time.Time) (time.Time, error) {
	return rotator.NextSlot(schedule, after)
}

// next is NextSlot on a parsed schedule.
func next(s cron.Schedule, after time.Time) (time.Time, error) { return rotator.NextSlotOf(s, after) }

// StartAt returns the start of the run for slot: slot plus a random offset in
// [0, window). rnd(n) must return a value in [0, n) (math/rand/v2's Int64N);
// out-of-range values are clamped. A nil rnd or a non-positive window gives
// slot itself.
func StartAt(slot time.Time, window time.Duration, rnd func(n int64) int64) time.Time {
	if window <= 0 || rnd == nil {
		return slot
	}
	off := rnd(int64(window))
	if off < 0 {
		off = 0
	}
	if off >= int64(window) {
		off = int64(window) - 1
	}
	return slot.Add(time.Duration(off))
}

// DueInput is everything Due looks at.
type DueInput struct {
	Now      time.Time
	Schedule string        // robfig/cron expression
	Window   time.Duration // runs start inside [slot, slot+Window)
	MaxAge   time.Duration // 0 disables the safety net
	// LastRotation is when the current pair was made (zero when unknown:
	// then max age cannot be judged and only slots after Now count).
	LastRotation time.Time
	// LastSlot is the latest slot already run (or deliberately skipped).
	LastSlot time.Time
	// Rand places the start inside the window (see StartAt); nil means no
	// jitter.
	Rand func(n int64) int64
}

// Decision is Due's answer.
type Decision struct {
	// Due is true when the app should run now (At == Now).
	Due bool
	// At is when the app runs: Now when Due, else the planned start.
	At time.Time
	// Reason is why the app runs at At.
	Reason Reason
	// Slot is the cron slot the run serves (zero for a max-age run that
	// comes before the slot, and for an invalid schedule).
	Slot time.Time
	// Skipped is the latest missed slot whose window had closed (zero when
	// none was missed).
	Skipped time.Time
	// Message explains the decision in a sentence.
	Message string
}

// skipLookback bounds how far back Due looks for a skipped slot to report.
const skipLookback = 400 * 24 * time.Hour

// Due decides when an app next runs, in this order:
//
//  1. max age: the last rotation is at least MaxAge old → due now;
//  2. catch-up: a slot after the last run (or rotation) has passed and its
//     window is still open → one run, at a random point of what is left of
//     the window (never one run per missed slot);
//  3. otherwise the next slot's start, or the max-age deadline if earlier;
//     missed slots whose windows have closed are skipped (reported in
//     Skipped) because max age is not exceeded.
func Due(in DueInput) Decision {
	s, err := Parse(in.Schedule)
	if err != nil {
		return Decision{Reason: ReasonInvalidSchedule, Message: err.Error()}
	}
	now := in.Now
	var maxAgeAt time.Time
	if in.MaxAge > 0 && !in.LastRotation.IsZero() {
		maxAgeAt = in.LastRotation.Add(in.MaxAge)
		if !now.Before(maxAgeAt) {
			return Decision{Due: true, At: now, Reason: ReasonMaxAge,
				Message: fmt.Sprintf("last rotation %s is older than max age %s", in.LastRotation.UTC().Format(time.RFC3339), in.MaxAge)}
		}
	}

	ref := in.LastSlot
	if in.LastRotation.After(ref) {
		ref = in.LastRotation
	}
	if ref.IsZero() || ref.After(now) {
		ref = now
	}
	var skipped time.Time
	// Slots at or before now-Window have closed windows; only the latest
	// of them is worth reporting, and only if one exists after ref.
	open := now.Add(-in.Window)
	if ref.Before(open) {
		from := ref
		if floor := open.Add(-skipLookback); from.Before(floor) {
			from = floor // bounds the walk after a very long downtime
		}
		if first, err := next(s, from); err == nil && !first.After(open) {
			skipped = latestUpTo(s, first, open)
		}
		ref = open
	}
	slot, err := next(s, ref)
	if err != nil {
		if !maxAgeAt.IsZero() { // no slot left, but the safety net still holds
			return Decision{At: maxAgeAt, Reason: ReasonMaxAge, Skipped: skipped, Message: "no further slot (" + err.Error() + "); max age deadline planned"}
		}
		return Decision{Reason: ReasonInvalidSchedule, Skipped: skipped, Message: err.Error()}
	}
	if !slot.After(now) {
		// At least one slot with an open window: run the latest once.
		slot = latestUpTo(s, slot, now)
		begin, reason := slot, ReasonScheduled
		if slot.Before(now) {
			begin, reason = now, ReasonCatchUp
		}
		at := StartAt(begin, slot.Add(in.Window).Sub(begin), in.Rand)
		d := Decision{Due: !at.After(now), At: at, Reason: reason, Slot: slot, Skipped: skipped,
			Message: "slot " + slot.UTC().Format(time.RFC3339) + " is inside its window"}
		if d.Due {
			d.At = now
		}
		return d
	}
	at := StartAt(slot, in.Window, in.Rand)
	d := Decision{At: at, Reason: ReasonScheduled, Slot: slot, Skipped: skipped,
		Message: "next slot " + slot.UTC().Format(time.RFC3339)}
	if !skipped.IsZero() {
		d.Message = "missed slot " + skipped.UTC().Format(time.RFC3339) + " skipped (window closed, max age not exceeded); " + d.Message
	}
	if !maxAgeAt.IsZero() && maxAgeAt.Before(at) {
		d.At, d.Reason, d.Slot = maxAgeAt, ReasonMaxAge, time.Time{}
		d.Message = "max age reached before the next slot " + slot.UTC().Format(time.RFC3339)
	}
	return d
}

// latestUpTo returns the last slot in [first, limit], given that first is a
// slot not after limit. The walk is bounded by the caller: limit-first is at
// most one window, or the loop stops at the first error.
func latestUpTo(s cron.Schedule, first, limit time.Time) time.Time {
	cur := first
	for range 1 << 20 {
		n, err := next(s, cur)
		if err != nil || n.After(limit) {
			return cur
		}
		cur = n
	}
	return cur
}
