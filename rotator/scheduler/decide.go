// Package scheduler decides when each app rotates and runs the loop that
// starts those rotations.
//
// The decisions are pure functions of their inputs (NextSlot, Due, both
// rotator's): they take the current time as an argument and never read the
// wall clock. The Scheduler loop around them owns the timers, the
// per-Dev-Hub concurrency limits, the API-budget deferrals, retries,
// retirements and graceful shutdown; it reaches the clock only through the
// injected Clock.
//
// Following cert-manager, rotator decides *whether* and *when* (one
// decision, rotator.Chain and rotator.PlanNextRun); this package decides
// *how*: it runs the loop.
package scheduler

import (
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/robfig/cron/v3"
)

// Reason says why an app runs (or waits): rotator's one reason type, so
// the scheduler, the daemon, `plan` and `status` speak the same words.
type Reason = rotator.Reason

// Reasons for a decision or a run (rotator's constants under their
// scheduler names).
const (
	ReasonScheduled       = rotator.ReasonSlot
	ReasonCatchUp         = rotator.ReasonCatchUp
	ReasonMaxAge          = rotator.ReasonMaxAge
	ReasonMissedSkipped   = rotator.ReasonMissedSkipped
	ReasonRetry           = rotator.ReasonRetry
	ReasonRetire          = rotator.ReasonRetire
	ReasonAPIBudget       = rotator.ReasonAPIBudget
	ReasonInvalidSchedule = rotator.ReasonInvalidSchedule
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

// DueInput is everything Due looks at (rotator.NextRunInput).
type DueInput = rotator.NextRunInput

// Decision is Due's answer (rotator.NextRun).
type Decision = rotator.NextRun

// Due decides when an app next runs: rotator.PlanNextRun, the one rule
// `plan` and `status` use too, with the app's stable offset inside the
// window as the only jitter.
func Due(in DueInput) Decision { return rotator.PlanNextRun(in) }
