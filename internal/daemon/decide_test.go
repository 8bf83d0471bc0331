package daemon

import (
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	slot := now.Add(-10 * time.Second)
	tests := []struct {
		name string
		in   Input
		want Verdict
	}{
		{
			name: "a due slot of a managed app rotates",
			in:   Input{Now: now, Reason: scheduler.ReasonScheduled, Schedule: "@hourly", Slot: slot, RotatedAt: slot.Add(-time.Hour), Managed: true},
			want: Verdict{Action: ActRotate, Reason: VerdictRotate},
		},
		{
			name: "a rotation at the slot time means another replica served it",
			in:   Input{Now: now, Reason: scheduler.ReasonScheduled, Slot: slot, RotatedAt: slot, Managed: true},
			want: Verdict{Action: ActSkip, Reason: VerdictServed},
		},
		{
			name: "a rotation after the slot time means another replica served it",
			in:   Input{Now: now, Reason: scheduler.ReasonScheduled, Slot: slot, RotatedAt: slot.Add(3 * time.Second), Managed: true},
			want: Verdict{Action: ActSkip, Reason: VerdictServed},
		},
		{
			name: "an @every slot less than one period after the last rotation is served",
			in:   Input{Now: now, Reason: scheduler.ReasonScheduled, Schedule: "@every 40s", Slot: slot, RotatedAt: slot.Add(-30 * time.Second), Managed: true},
			want: Verdict{Action: ActSkip, Reason: VerdictServed},
		},
		{
			name: "an @every slot one period after the last rotation rotates",
			in:   Input{Now: now, Reason: scheduler.ReasonScheduled, Schedule: "@every 40s", Slot: slot, RotatedAt: slot.Add(-40 * time.Second), Managed: true},
			want: Verdict{Action: ActRotate, Reason: VerdictRotate},
		},
		{
			name: "a cron slot after an earlier rotation rotates",
			in:   Input{Now: now, Reason: scheduler.ReasonScheduled, Schedule: "* * * * *", Slot: now.Truncate(time.Minute), RotatedAt: now.Truncate(time.Minute).Add(-time.Second), Managed: true},
			want: Verdict{Action: ActRotate, Reason: VerdictRotate},
		},
		{
			name: "a retry planned for a journal that is gone skips",
			in:   Input{Now: now, Reason: scheduler.ReasonRetry, RotatedAt: now.Add(-time.Second), Managed: true},
			want: Verdict{Action: ActSkip, Reason: VerdictNoJournal},
		},
		{
			name: "a retry planned for a journal resumes it",
			in:   Input{Now: now, Reason: scheduler.ReasonRetry, Managed: true, Journal: &rotator.JournalEntry{Step: rotator.StepStage}},
			want: Verdict{Action: ActRotate, Reason: VerdictResume},
		},
		{
			name: "an open journal is resumed even when the slot looks served",
			in: Input{Now: now, Reason: scheduler.ReasonRetry, Slot: slot, RotatedAt: slot.Add(time.Second), Managed: true,
				Journal: &rotator.JournalEntry{Step: rotator.StepCommit, Done: true}},
			want: Verdict{Action: ActRotate, Reason: VerdictResume},
		},
		{
			name: "an orphaned journal waits for an operator",
			in:   Input{Now: now, Slot: slot, Managed: true, Journal: &rotator.JournalEntry{Step: rotator.StepVerify, Orphaned: true}},
			want: Verdict{Action: ActWait, Reason: VerdictOrphaned},
		},
		{
			name: "a journal in backoff waits until its next attempt",
			in:   Input{Now: now, Slot: slot, Managed: true, Journal: &rotator.JournalEntry{Step: rotator.StepVerify, NextAttemptAt: now.Add(time.Minute)}},
			want: Verdict{Action: ActWait, Reason: VerdictBackoff, Until: now.Add(time.Minute)},
		},
		{
			name: "a retire journal makes the rotation look again soon",
			in:   Input{Now: now, Slot: slot, Managed: true, Journal: &rotator.JournalEntry{Step: rotator.StepRetire}},
			want: Verdict{Action: ActWait, Reason: VerdictRetireBusy, Until: now.Add(defaultRetireRetry)},
		},
		{
			name: "a max-age run that finds a fresh pair skips",
			in:   Input{Now: now, Reason: scheduler.ReasonMaxAge, MaxAge: time.Hour, RotatedAt: now.Add(-time.Minute), Managed: true},
			want: Verdict{Action: ActSkip, Reason: VerdictFresh},
		},
		{
			name: "a max-age run on an old pair rotates even inside the overlap",
			in: Input{Now: now, Reason: scheduler.ReasonMaxAge, MaxAge: time.Hour, RotatedAt: now.Add(-2 * time.Hour),
				PreviousValidUntil: now.Add(time.Hour), Managed: true},
			want: Verdict{Action: ActRotate, Reason: VerdictRotate},
		},
		{
			name: "a slot inside the previous pair's overlap waits for the overlap to end",
			in: Input{Now: now, Reason: scheduler.ReasonScheduled, Slot: slot, RotatedAt: slot.Add(-time.Hour),
				PreviousValidUntil: now.Add(5 * time.Minute), Managed: true, MaxAge: 24 * time.Hour},
			want: Verdict{Action: ActWait, Reason: VerdictRetiring, Until: now.Add(5 * time.Minute)},
		},
		{
			name: "the overlap wait ends at max age when that comes first (L2)",
			in: Input{Now: now, Reason: scheduler.ReasonScheduled, Slot: slot, RotatedAt: now.Add(-30 * time.Minute),
				PreviousValidUntil: now.Add(30 * 24 * time.Hour), Managed: true, MaxAge: time.Hour},
			want: Verdict{Action: ActWait, Reason: VerdictRetiring, Until: now.Add(30 * time.Minute)},
		},
		{
			name: "an unmanaged path without adopt waits",
			in:   Input{Now: now, Reason: scheduler.ReasonScheduled, Slot: slot},
			want: Verdict{Action: ActWait, Reason: VerdictUnmanaged},
		},
		{
			name: "an unmanaged path with adopt rotates",
			in:   Input{Now: now, Reason: scheduler.ReasonScheduled, Slot: slot, Adopt: true},
			want: Verdict{Action: ActRotate, Reason: VerdictRotate},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.in); got != tt.want {
				t.Errorf("Decide() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := backoff(5*time.Second, 30*time.Second)
	for attempt, want := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 4: 30 * time.Second, 9: 30 * time.Second} {
		if got := b(attempt); got != want {
			t.Errorf("backoff(%d) = %s, want %s", attempt, got, want)
		}
	}
}
