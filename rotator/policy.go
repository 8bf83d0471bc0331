package rotator

import (
	"fmt"
	"hash/fnv"
	"time"
)

// Reason is why ShouldRotate decided what it decided. The constants are
// stable: logs, metrics, audit details and `plan` output reuse them.
type Reason string

// Decision reasons, in the order ShouldRotate checks them.
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

// Decision is the outcome of a policy check.
type Decision struct {
	Reason  Reason
	Message string
	Rotate  bool
	// Next is when the app is next expected to become due (zero if unknown
	// or already due).
	Next time.Time
}

// PolicyInput is everything ShouldRotate looks at. The caller gathers it
// (from the journal, the store's metadata and the schedule); ShouldRotate
// itself does no I/O and never reads the wall clock.
type PolicyInput struct {
	Now time.Time

	// From the journal.
	Orphaned      bool
	OrphanReason  string
	InFlight      bool
	NextAttemptAt time.Time

	// From the store.
	Managed            bool
	HasCurrent         bool
	Adopt              bool
	LastRotated        time.Time // RotatedAt, or when the path was adopted; zero when unknown
	PreviousValidUntil time.Time // zero outside an overlap

	// From the app.
	MaxAge    time.Duration
	SlotStart time.Time // start (slot + jitter) of the first scheduled slot after LastRotated; zero when none
}

// check is one link of the decision chain: ok=false passes to the next link.
type check func(in PolicyInput) (Decision, bool)

// policyChain is ordered: a safety stop (orphaned, backoff) beats every
// reason to rotate, max age beats an unfinished overlap, and the schedule
// comes last.
var policyChain = []check{
	checkOrphaned,
	checkBackoff,
	checkInFlight,
	checkManaged,
	checkMaxAge,
	checkRetiring,
	checkScheduled,
}

// ShouldRotate decides whether an app rotates now. It is a pure function of
// its input: the first check of the chain that has an opinion wins.
func ShouldRotate(in PolicyInput) Decision {
	for _, c := range policyChain {
		if d, ok := c(in); ok {
			return d
		}
	}
	return Decision{Reason: ReasonNotDue, Message: "no scheduled slot is due", Next: in.SlotStart}
}

func checkOrphaned(in PolicyInput) (Decision, bool) {
	if !in.Orphaned {
		return Decision{}, false
	}
	msg := "orphaned: an operator must clear it"
	if in.OrphanReason != "" {
		msg += " (" + in.OrphanReason + ")"
	}
	return Decision{Reason: ReasonOrphaned, Message: msg}, true
}

func checkBackoff(in PolicyInput) (Decision, bool) {
	if in.NextAttemptAt.IsZero() || !in.Now.Before(in.NextAttemptAt) {
		return Decision{}, false
	}
	return Decision{Reason: ReasonBackoff, Message: "backing off after a failed attempt", Next: in.NextAttemptAt}, true
}

func checkInFlight(in PolicyInput) (Decision, bool) {
	if !in.InFlight {
		return Decision{}, false
	}
	return Decision{Reason: ReasonInFlight, Message: "resume the rotation in the journal", Rotate: true}, true
}

func checkManaged(in PolicyInput) (Decision, bool) {
	if in.Managed && in.HasCurrent {
		return Decision{}, false
	}
	if in.Adopt {
		return Decision{Reason: ReasonAdopt, Message: "adopt the path from Salesforce's current pair, then rotate", Rotate: true}, true
	}
	return Decision{Reason: ReasonNotManaged, Message: "vault path is not managed by ecarotator (set adopt to take it over)"}, true
}

func checkMaxAge(in PolicyInput) (Decision, bool) {
	if in.MaxAge <= 0 {
		return Decision{}, false
	}
	if in.LastRotated.IsZero() {
		return Decision{Reason: ReasonMaxAge, Message: "age of the current pair is unknown", Rotate: true}, true
	}
	if age := in.Now.Sub(in.LastRotated); age >= in.MaxAge {
		return Decision{Reason: ReasonMaxAge, Message: fmt.Sprintf("current pair is %s old (max age %s)", age.Round(time.Second), in.MaxAge), Rotate: true}, true
	}
	return Decision{}, false
}

func checkRetiring(in PolicyInput) (Decision, bool) {
	if in.PreviousValidUntil.IsZero() || !in.Now.Before(in.PreviousValidUntil) {
		return Decision{}, false
	}
	// A new rotation would delete the Rotated slot the previous pair lives
	// in, cutting its overlap short.
	return Decision{Reason: ReasonRetiring, Message: "previous pair is still inside its overlap", Next: in.PreviousValidUntil}, true
}

func checkScheduled(in PolicyInput) (Decision, bool) {
	if in.SlotStart.IsZero() || in.Now.Before(in.SlotStart) {
		return Decision{}, false
	}
	return Decision{Reason: ReasonScheduled, Message: "scheduled slot " + in.SlotStart.UTC().Format(time.RFC3339) + " is due", Rotate: true}, true
}

// SlotStart is when an app's run for slot starts: a stable offset inside
// [slot, slot+window). It is derived from the app name and the slot rather
// than drawn at random so every replica computes the same start and a
// restart does not move it.
func SlotStart(app string, slot time.Time, window time.Duration) time.Time {
	if window <= 0 || slot.IsZero() {
		return slot
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(app))
	_, _ = h.Write([]byte(slot.UTC().Format(time.RFC3339)))
	return slot.Add(time.Duration(h.Sum64() % uint64(window)))
}

// PreviousValidUntil is how long the previous pair stays in Vault after a
// rotation at rotatedAt. stagedExpires is the Rotated slot's expiration as
// Salesforce reports it (zero when unknown). The zero time means "drop the
// previous pair now" (immediate). The result never outlives the Rotated
// slot, because Salesforce stops accepting the pair then.
func PreviousValidUntil(o Overlap, rotatedAt, stagedExpires time.Time) time.Time {
	lapse := stagedExpires
	if lapse.IsZero() {
		lapse = rotatedAt.Add(SalesforceOverlap)
	}
	switch o.Policy {
	case OverlapImmediate:
		return time.Time{}
	case OverlapAfter:
		if t := rotatedAt.Add(o.After); t.Before(lapse) {
			return t
		}
		return lapse
	default:
		return lapse
	}
}

// Backoff is exponential backoff with jitter. Rand returns a float in [0,1)
// and is injected so tests get exact waits; production passes a
// math/rand/v2 source (jitter is not a secret).
type Backoff struct {
	Base     time.Duration // wait before the first retry, before jitter
	Max      time.Duration // cap on the un-jittered wait
	Attempts int           // retries allowed; attempt > Attempts gives retry=false
	Rand     func() float64
}

// NextAttempt returns whether attempt (1-based) may be retried and how long
// to wait first: Base·2^(attempt-1) capped at Max, then "equal jitter" (half
// fixed, half random) so replicas that failed together spread out without
// ever retrying immediately.
func (b Backoff) NextAttempt(attempt int) (retry bool, wait time.Duration) {
	if attempt < 1 {
		attempt = 1
	}
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	r := 0.0
	if b.Rand != nil {
		r = b.Rand()
	}
	wait = d/2 + time.Duration(r*float64(d/2))
	return attempt <= b.Attempts, wait
}
