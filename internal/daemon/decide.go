package daemon

import (
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
)

// Action is what a scheduled run does after looking at Vault.
type Action int

// Actions of a Verdict.
const (
	// ActRotate runs (or resumes) the rotation.
	ActRotate Action = iota
	// ActSkip ends the run without rotating: the slot needs nothing more.
	ActSkip
	// ActWait ends the run and asks the scheduler to come back at Until.
	ActWait
)

// Verdict reasons. They are stable: logs and the status API reuse them.
const (
	VerdictResume      = "ResumeJournal"    // a rotation is in flight: finish it
	VerdictRotate      = "Rotate"           // the slot (or max age) is due
	VerdictServed      = "SlotServed"       // Vault shows a rotation at or after the slot: another replica served it
	VerdictFresh       = "MaxAgeNotReached" // a max-age run found a fresh pair (another replica rotated)
	VerdictOrphaned    = "Orphaned"         // the journal needs an operator
	VerdictBackoff     = "InBackoff"        // the journal's next attempt is later
	VerdictRetiring    = "PreviousRetiring" // the previous pair's overlap has not ended
	VerdictRetireBusy  = "RetireInFlight"   // a retire journal is open
	VerdictUnmanaged   = "NotManaged"       // the path is not ours and adopt is off
	VerdictNoJournal   = "NothingToResume"  // a retry planned to finish a journal found none
	defaultRetireRetry = 5 * time.Second
)

// Input is everything Decide looks at: the scheduler's reason and slot,
// and what Vault holds for the app (read just before, under the slot lease).
type Input struct {
	Now time.Time
	// Reason is why the run serves: the scheduler's reason, or for a retry
	// the reason of the run it retries (Retry only when it retries none).
	Reason scheduler.Reason
	// Slot is the cron slot this run serves (zero for a max-age run, or a
	// retry whose slot is unknown).
	Slot time.Time
	// Schedule is the app's cron expression.
	Schedule string
	// Journal is the app's journal, nil when none.
	Journal *rotator.JournalEntry
	// From the app's KV path.
	RotatedAt          time.Time
	PreviousValidUntil time.Time
	Managed            bool // managed-by marker and a current pair
	// From the app's configuration.
	MaxAge time.Duration
	Adopt  bool
}

// Verdict is Decide's answer.
type Verdict struct {
	Action Action
	Reason string
	Until  time.Time // ActWait: when to look again (zero: the daemon's long retry)
}

// Decide is the daemon's "rotate now?" for one scheduled run, a pure
// function of its input. It is what makes a slot rotate exactly once across
// replicas: a run re-reads Vault under the slot lease, and a rotation whose
// rotated_at is at or after the slot means another replica already served
// it. Its checks, in order: an open journal (resume it, unless orphaned or
// backing off), a bare retry with no journal left, the slot already served, a max-age run that finds a fresh
// pair, an unmanaged path, the previous pair's overlap, then rotate.
func Decide(in Input) Verdict {
	if j := in.Journal; j != nil {
		switch {
		case j.Step == rotator.StepRetire:
			return Verdict{Action: ActWait, Reason: VerdictRetireBusy, Until: in.Now.Add(defaultRetireRetry)}
		case j.Orphaned:
			return Verdict{Action: ActWait, Reason: VerdictOrphaned}
		case in.Now.Before(j.NextAttemptAt):
			return Verdict{Action: ActWait, Reason: VerdictBackoff, Until: j.NextAttemptAt}
		default:
			return Verdict{Action: ActRotate, Reason: VerdictResume}
		}
	}
	if in.Reason == scheduler.ReasonRetry && in.Slot.IsZero() {
		// Neither a slot nor max age: the run was planned to finish a
		// journal that another replica (or an earlier run) has finished.
		return Verdict{Action: ActSkip, Reason: VerdictNoJournal}
	}
	if !in.Slot.IsZero() && !in.RotatedAt.IsZero() && served(in.Schedule, in.RotatedAt, in.Slot) {
		return Verdict{Action: ActSkip, Reason: VerdictServed}
	}
	if in.Reason == scheduler.ReasonMaxAge && in.MaxAge > 0 && !in.RotatedAt.IsZero() && in.Now.Before(in.RotatedAt.Add(in.MaxAge)) {
		return Verdict{Action: ActSkip, Reason: VerdictFresh}
	}
	if !in.Managed && !in.Adopt {
		return Verdict{Action: ActWait, Reason: VerdictUnmanaged}
	}
	maxAgeExceeded := in.MaxAge > 0 && !in.RotatedAt.IsZero() && !in.Now.Before(in.RotatedAt.Add(in.MaxAge))
	if !maxAgeExceeded && !in.PreviousValidUntil.IsZero() && in.Now.Before(in.PreviousValidUntil) {
		// A new rotation would delete the Rotated slot the previous pair
		// lives in and cut its overlap short; the retire job runs first.
		// The wait never outlasts max age: the safety net beats an
		// unfinished overlap (review L2).
		until := in.PreviousValidUntil
		if in.MaxAge > 0 && !in.RotatedAt.IsZero() && in.RotatedAt.Add(in.MaxAge).Before(until) {
			until = in.RotatedAt.Add(in.MaxAge)
		}
		return Verdict{Action: ActWait, Reason: VerdictRetiring, Until: until}
	}
	return Verdict{Action: ActRotate, Reason: VerdictRotate}
}

// served reports whether a rotation at rotatedAt already serves slot: the
// schedule's first slot after the rotation is later than slot. For cron
// expressions that is "rotated at or after the slot"; for "@every P",
// whose slots are relative to whoever computed them, it is "rotated less
// than P before the slot", so replicas that planned from different
// references still never rotate twice within one period.
func served(schedule string, rotatedAt, slot time.Time) bool {
	if !rotatedAt.Before(slot) {
		return true
	}
	next, err := scheduler.NextSlot(schedule, rotatedAt)
	return err == nil && next.After(slot)
}
