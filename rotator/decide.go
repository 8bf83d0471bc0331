package rotator

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Reason says why an app rotates, waits or is skipped. It is the one
// reason type of the project: `plan`, `status` (local and remote), the
// scheduler, the daemon's runs and the engine all use these constants, and
// logs, metrics and audit details reuse their stable values.
type Reason string

// Reasons of the decision chains (Decide), in the order PlanChain checks
// them.
const (
	ReasonOrphaned   Reason = "Orphaned"         // an operator must ClearOrphan first
	ReasonBackoff    Reason = "InBackoff"        // the last attempt failed; NextAttemptAt not reached
	ReasonInFlight   Reason = "InFlight"         // a journal exists: resume it
	ReasonNotManaged Reason = "NotManaged"       // path lacks the marker or credentials; adopt not allowed
	ReasonAdopt      Reason = "Adopt"            // path will be adopted, then rotated
	ReasonMaxAge     Reason = "MaxAgeExceeded"   // the current pair is older than MaxAge
	ReasonRetiring   Reason = "PreviousRetiring" // the previous pair's overlap has not ended
	ReasonScheduled  Reason = "ScheduledSlotDue" // a cron slot since the last rotation has started
	ReasonNotDue     Reason = "NotDue"           // nothing to do yet
)

// Reasons that only a scheduled run (ScheduledRunChain) gives.
const (
	ReasonRetireInFlight  Reason = "RetireInFlight"   // a retire journal is open
	ReasonNothingToResume Reason = "NothingToResume"  // a retry planned to finish a journal found none
	ReasonSlotServed      Reason = "SlotServed"       // Vault shows a rotation that serves the run's slot
	ReasonFresh           Reason = "MaxAgeNotReached" // a max-age run found a fresh pair
)

// Reasons of a planned run (NextRun): why the run at Next starts then.
const (
	// ReasonSlot: the start (slot + the app's stable offset) of a cron slot.
	ReasonSlot Reason = "Scheduled"
	// ReasonCatchUp: a slot passed while nothing ran (daemon down, app not
	// loaded) and its window is still open; it runs once.
	ReasonCatchUp Reason = "CatchUp"
	// ReasonMissedSkipped: slots were missed and their windows closed; max
	// age is not exceeded, so the app waits for its next slot.
	ReasonMissedSkipped Reason = "MissedSlotSkipped"
	// ReasonRetry: a previous run asked to be run again at a given time.
	ReasonRetry Reason = "Retry"
	// ReasonRetire: the previous pair's overlap ends; retire it.
	ReasonRetire Reason = "Retire"
	// ReasonAPIBudget: the Dev Hub's API usage is above its threshold.
	ReasonAPIBudget Reason = "APIBudgetExceeded"
	// ReasonInvalidSchedule: the cron expression does not parse, or has no
	// further slot.
	ReasonInvalidSchedule Reason = "InvalidSchedule"
)

// Input is everything a decision looks at. The caller gathers it — from
// the journal (SetJournal), the KV path (SetStored), the app's
// configuration and, for a scheduled run, the run itself — and the
// decision does no I/O and never reads the wall clock.
type Input struct {
	Now time.Time
	App string // the app name: it places the run inside the window (SlotStart)

	// From the app's configuration.
	Schedule string        // cron expression; empty: max age only
	Window   time.Duration // runs start inside [slot, slot+Window)
	MaxAge   time.Duration // 0 disables the safety net
	Adopt    bool

	// From the journal.
	Orphaned       bool
	OrphanReason   string
	InFlight       bool // a rotation journal is open
	RetireInFlight bool // a retire journal is open
	NextAttemptAt  time.Time

	// From the store.
	Managed            bool
	HasCurrent         bool
	LastRotated        time.Time // RotatedAt, or when the path was adopted; zero when unknown
	PreviousValidUntil time.Time // zero outside an overlap

	// LastSlot is the latest slot already run or deliberately skipped (the
	// scheduler's memory); zero for callers without one, which is the same
	// answer whenever the last run rotated (its slot is not after
	// LastRotated).
	LastSlot time.Time

	// A scheduled run only: why the scheduler started it and the slot it
	// serves (zero for a max-age run or a bare retry).
	RunReason Reason
	Slot      time.Time
}

// NewInput starts an Input for app at now from its configuration; the
// caller adds the journal and the store (SetJournal, SetStored).
func NewInput(app App, now time.Time) Input {
	return Input{Now: now, App: app.Name, Schedule: app.Schedule, Window: app.Window, MaxAge: app.MaxAge, Adopt: app.Adopt}
}

// SetJournal fills the journal's part of in.
func (in *Input) SetJournal(j JournalEntry) {
	in.RetireInFlight = j.Step == StepRetire
	in.InFlight = !in.RetireInFlight
	in.Orphaned, in.OrphanReason, in.NextAttemptAt = j.Orphaned, j.Extra[ExtraOrphanReason], j.NextAttemptAt
}

// SetStored fills the store's part of in. A managed path without a
// rotated_at (adopted by hand) counts from its last update.
func (in *Input) SetStored(st StoredCredentials, meta StoreMeta) {
	in.Managed, in.HasCurrent = meta.Managed, !st.Current.IsZero()
	in.LastRotated, in.PreviousValidUntil = st.RotatedAt, st.PreviousValidUntil
	if in.LastRotated.IsZero() && in.Managed && in.HasCurrent {
		in.LastRotated = meta.UpdatedAt
	}
}

func (in Input) nextRunInput() NextRunInput {
	return NextRunInput{Now: in.Now, App: in.App, Schedule: in.Schedule, Window: in.Window, MaxAge: in.MaxAge, LastRotation: in.LastRotated, LastSlot: in.LastSlot}
}

// Decision is the answer of a chain.
type Decision struct {
	Reason  Reason
	Message string
	Rotate  bool
	// Next is when the app's next run starts, as the scheduler plans it:
	// the slot's start (slot + stable offset), the max-age deadline, the
	// end of a backoff or of an overlap. It may lie in the past when the
	// run is due. Zero when nothing is planned (orphaned, unmanaged,
	// invalid schedule).
	Next time.Time
	// NextReason is the reason the run at Next carries.
	NextReason Reason
	// Slot is the cron slot the run at Next serves (zero for max age).
	Slot time.Time
}

// Skip reports whether a scheduled run's decision means "nothing to do for
// this run": the slot is served, or there is nothing left to resume. The
// scheduler then plans the next slot, where a wait keeps the run's slot.
func (d Decision) Skip() bool {
	return d.Reason == ReasonSlotServed || d.Reason == ReasonFresh || d.Reason == ReasonNothingToResume
}

// Check is one link of a chain: ok=false passes to the next link.
type Check func(in Input) (d Decision, ok bool)

// Chain is an ordered list of checks in cert-manager's style: the first
// check with an opinion decides.
type Chain []Check

// Decide runs the chain. The answer always carries the planned next run
// (Next, NextReason, Slot) unless the deciding check set its own Next.
func (c Chain) Decide(in Input) Decision {
	d := Decision{Reason: ReasonNotDue, Message: "no scheduled slot is due"}
	for _, check := range c {
		if got, ok := check(in); ok {
			d = got
			break
		}
	}
	if d.Next.IsZero() && d.NextReason == "" && d.Reason != ReasonOrphaned && d.Reason != ReasonNotManaged {
		run := PlanNextRun(in.nextRunInput())
		d.Next, d.NextReason, d.Slot = run.At, run.Reason, run.Slot
		if d.Reason == ReasonNotDue && run.Message != "" {
			d.Message = run.Message
		}
	}
	return d
}

// PlanChain answers "would the app rotate now, and when next?" for `plan`
// and `status`. A safety stop (orphaned, backoff) beats every reason to
// rotate, max age beats an unfinished overlap, and the schedule comes last.
var PlanChain = Chain{checkOrphaned, checkBackoff, checkInFlight, checkManaged, checkMaxAge, checkRetiring, checkScheduled}

// ScheduledRunChain answers "does this scheduled run rotate?" under the
// app's lease, after the journal and Vault were read. It is what makes a
// slot rotate exactly once across replicas: a rotation whose rotated_at
// serves the run's slot means another replica already served it.
var ScheduledRunChain = Chain{checkRetireInFlight, checkOrphaned, checkBackoff, checkInFlight, checkNothingToResume,
	checkSlotServed, checkFresh, checkManaged, checkRetiringCapped, checkRun}

// ShouldRotate is PlanChain.Decide.
func ShouldRotate(in Input) Decision { return PlanChain.Decide(in) }

func checkOrphaned(in Input) (Decision, bool) {
	if !in.Orphaned {
		return Decision{}, false
	}
	msg := "orphaned: an operator must clear it"
	if in.OrphanReason != "" {
		msg += " (" + in.OrphanReason + ")"
	}
	return Decision{Reason: ReasonOrphaned, Message: msg}, true
}

func checkBackoff(in Input) (Decision, bool) {
	if in.NextAttemptAt.IsZero() || !in.Now.Before(in.NextAttemptAt) {
		return Decision{}, false
	}
	return Decision{Reason: ReasonBackoff, Message: "backing off after a failed attempt", Next: in.NextAttemptAt, NextReason: ReasonRetry}, true
}

func checkInFlight(in Input) (Decision, bool) {
	if !in.InFlight {
		return Decision{}, false
	}
	return Decision{Reason: ReasonInFlight, Message: "resume the rotation in the journal", Rotate: true, Next: in.Now, NextReason: ReasonRetry}, true
}

func checkManaged(in Input) (Decision, bool) {
	if in.Managed && in.HasCurrent {
		return Decision{}, false
	}
	if in.Adopt {
		return Decision{Reason: ReasonAdopt, Message: "adopt the path from Salesforce's current pair, then rotate", Rotate: true}, true
	}
	return Decision{Reason: ReasonNotManaged, Message: "vault path is not managed by ecarotator (set adopt to take it over)"}, true
}

func maxAgeExceeded(in Input) bool {
	return in.MaxAge > 0 && (in.LastRotated.IsZero() || !in.Now.Before(in.LastRotated.Add(in.MaxAge)))
}

func checkMaxAge(in Input) (Decision, bool) {
	if !maxAgeExceeded(in) {
		return Decision{}, false
	}
	if in.LastRotated.IsZero() {
		return Decision{Reason: ReasonMaxAge, Message: "age of the current pair is unknown", Rotate: true}, true
	}
	age := in.Now.Sub(in.LastRotated)
	return Decision{Reason: ReasonMaxAge, Message: fmt.Sprintf("current pair is %s old (max age %s)", age.Round(time.Second), in.MaxAge), Rotate: true}, true
}

func checkRetiring(in Input) (Decision, bool) {
	if in.PreviousValidUntil.IsZero() || !in.Now.Before(in.PreviousValidUntil) {
		return Decision{}, false
	}
	// A new rotation would delete the Rotated slot the previous pair lives
	// in, cutting its overlap short. A due slot waits for the overlap, as
	// the daemon's run does; before that the plan stands.
	if run := PlanNextRun(in.nextRunInput()); !run.Due {
		return Decision{}, false
	}
	return checkRetiringCapped(in)
}

// checkRetiringCapped is checkRetiring for a run that is already due: it
// waits for the overlap, but never beyond max age (the safety net beats an
// unfinished overlap).
func checkRetiringCapped(in Input) (Decision, bool) {
	if maxAgeExceeded(in) || in.PreviousValidUntil.IsZero() || !in.Now.Before(in.PreviousValidUntil) {
		return Decision{}, false
	}
	until := in.PreviousValidUntil
	if in.MaxAge > 0 && !in.LastRotated.IsZero() && in.LastRotated.Add(in.MaxAge).Before(until) {
		until = in.LastRotated.Add(in.MaxAge)
	}
	return Decision{Reason: ReasonRetiring, Message: "previous pair is still inside its overlap", Next: until, NextReason: ReasonRetry}, true
}

func checkScheduled(in Input) (Decision, bool) {
	run := PlanNextRun(in.nextRunInput())
	if !run.Due {
		return Decision{}, false
	}
	msg := "scheduled slot " + run.Slot.UTC().Format(time.RFC3339) + " is due"
	if run.Reason == ReasonMaxAge {
		msg = run.Message
	}
	return Decision{Reason: ReasonScheduled, Message: msg, Rotate: true, Next: run.At, NextReason: run.Reason, Slot: run.Slot}, true
}

func checkRetireInFlight(in Input) (Decision, bool) {
	if !in.RetireInFlight {
		return Decision{}, false
	}
	return Decision{Reason: ReasonRetireInFlight, Message: "a retire is in flight", Next: in.Now.Add(retireBusyRetry), NextReason: ReasonRetry}, true
}

// retireBusyRetry is how soon a run that met an open retire looks again.
const retireBusyRetry = 5 * time.Second

func checkNothingToResume(in Input) (Decision, bool) {
	if in.RunReason != ReasonRetry || !in.Slot.IsZero() {
		return Decision{}, false
	}
	// Neither a slot nor max age: the run was planned to finish a journal
	// that another replica (or an earlier run) has finished.
	return Decision{Reason: ReasonNothingToResume, Message: "the journal this retry was to finish is gone"}, true
}

func checkSlotServed(in Input) (Decision, bool) {
	if in.Slot.IsZero() || in.LastRotated.IsZero() || !Serves(in.Schedule, in.LastRotated, in.Slot) {
		return Decision{}, false
	}
	return Decision{Reason: ReasonSlotServed, Message: "a rotation at " + in.LastRotated.UTC().Format(time.RFC3339) + " serves slot " + in.Slot.UTC().Format(time.RFC3339)}, true
}

func checkFresh(in Input) (Decision, bool) {
	if in.RunReason != ReasonMaxAge || in.MaxAge <= 0 || in.LastRotated.IsZero() || !in.Now.Before(in.LastRotated.Add(in.MaxAge)) {
		return Decision{}, false
	}
	return Decision{Reason: ReasonFresh, Message: "the current pair is younger than max age"}, true
}

func checkRun(in Input) (Decision, bool) {
	reason := ReasonScheduled
	if maxAgeExceeded(in) {
		reason = ReasonMaxAge
	}
	return Decision{Reason: reason, Message: "the run is due", Rotate: true}, true
}

// Serves reports whether a rotation at rotatedAt already serves slot: the
// schedule's first slot after the rotation is later than slot. For cron
// expressions that is "rotated at or after the slot"; for "@every P",
// whose slots are relative to whoever computed them, it is "rotated less
// than P before the slot", so replicas that planned from different
// references still never rotate twice within one period.
func Serves(schedule string, rotatedAt, slot time.Time) bool {
	if !rotatedAt.Before(slot) {
		return true
	}
	next, err := NextSlot(schedule, rotatedAt)
	return err == nil && next.After(slot)
}

// NextRunInput is everything NextRun looks at.
type NextRunInput struct {
	Now      time.Time
	App      string        // places the start inside the window (SlotStart)
	Schedule string        // robfig/cron expression
	Window   time.Duration // runs start inside [slot, slot+Window)
	MaxAge   time.Duration // 0 disables the safety net
	// LastRotation is when the current pair was made (zero when unknown:
	// then max age cannot be judged and only slots after Now count).
	LastRotation time.Time
	// LastSlot is the latest slot already run (or deliberately skipped).
	LastSlot time.Time
}

// NextRun is the planned next run of an app.
type NextRun struct {
	// Due is true when the run's start has come (At is not after Now).
	Due bool
	// At is when the run starts: the slot's start (SlotStart), or the
	// max-age deadline. It is the same for every caller and replica, also
	// once it has passed.
	At time.Time
	// Reason is why the app runs at At.
	Reason Reason
	// Slot is the cron slot the run serves (zero for a max-age run that
	// comes before the slot, and for an invalid schedule).
	Slot time.Time
	// Skipped is the latest missed slot whose window had closed (zero when
	// none was missed).
	Skipped time.Time
	// Message explains the plan in a sentence.
	Message string
}

// skipLookback bounds how far back NextRun looks for a skipped slot.
const skipLookback = 400 * 24 * time.Hour

// NextRun plans an app's next run, in this order:
//
//  1. max age: the last rotation is at least MaxAge old → due since the
//     deadline;
//  2. catch-up: a slot after the last run (or rotation) has passed and its
//     window is still open → one run (never one per missed slot), at the
//     slot's start, or now when that start has passed;
//  3. otherwise the next slot's start, or the max-age deadline if earlier;
//     missed slots whose windows have closed are skipped (reported in
//     Skipped) because max age is not exceeded.
//
// The one jitter rule: a slot's run starts at SlotStart(app, slot, window),
// a stable hash offset, so `plan`, `status` and every replica of the daemon
// compute the same time.
func PlanNextRun(in NextRunInput) NextRun {
	s, err := ParseSchedule(in.Schedule)
	if err != nil {
		return NextRun{Reason: ReasonInvalidSchedule, Message: err.Error()}
	}
	now := in.Now
	var maxAgeAt time.Time
	if in.MaxAge > 0 && !in.LastRotation.IsZero() {
		maxAgeAt = in.LastRotation.Add(in.MaxAge)
		if !now.Before(maxAgeAt) {
			return NextRun{Due: true, At: maxAgeAt, Reason: ReasonMaxAge,
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
		if first, err := NextSlotOf(s, from); err == nil && !first.After(open) {
			skipped = latestUpTo(s, first, open)
		}
		ref = open
	}
	slot, err := NextSlotOf(s, ref)
	if err != nil {
		if !maxAgeAt.IsZero() { // no slot left, but the safety net still holds
			return NextRun{At: maxAgeAt, Reason: ReasonMaxAge, Skipped: skipped, Message: "no further slot (" + err.Error() + "); max age deadline planned"}
		}
		return NextRun{Reason: ReasonInvalidSchedule, Skipped: skipped, Message: err.Error()}
	}
	if !slot.After(now) {
		// At least one slot with an open window: run the latest once.
		slot = latestUpTo(s, slot, now)
		at, reason := SlotStart(in.App, slot, in.Window), ReasonSlot
		if at.Before(now) {
			reason = ReasonCatchUp
		}
		return NextRun{Due: !at.After(now), At: at, Reason: reason, Slot: slot, Skipped: skipped,
			Message: "slot " + slot.UTC().Format(time.RFC3339) + " is inside its window"}
	}
	at := SlotStart(in.App, slot, in.Window)
	d := NextRun{At: at, Reason: ReasonSlot, Slot: slot, Skipped: skipped, Message: "next slot " + slot.UTC().Format(time.RFC3339)}
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
		n, err := NextSlotOf(s, cur)
		if err != nil || n.After(limit) {
			return cur
		}
		cur = n
	}
	return cur
}
