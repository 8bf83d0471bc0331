package scheduler

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s unavailable: %v", name, err)
	}
	return loc
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func TestNextSlot(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		after    time.Time
		want     time.Time
	}{
		{"a five-field schedule gives the next matching minute", "30 2 * * 1", utc(2026, 11, 26, 0, 0), utc(2026, 11, 30, 2, 30)},
		{"a descriptor is accepted", "@daily", utc(2026, 11, 26, 13, 0), utc(2026, 11, 27, 0, 0)},
		{"the result is strictly after the given time", "0 * * * *", utc(2026, 11, 26, 13, 0), utc(2026, 11, 26, 14, 0)},
		{"CRON_TZ= places the slot on that zone's wall clock", "CRON_TZ=Europe/Paris 0 9 * * *", utc(2026, 11, 26, 0, 0), utc(2026, 11, 26, 8, 0)},
		{"TZ= is accepted too", "TZ=America/New_York 0 9 * * *", utc(2026, 11, 26, 0, 0), utc(2026, 11, 26, 14, 0)},
		{"@every is a constant delay", "@every 90m", utc(2026, 11, 26, 0, 0), utc(2026, 11, 26, 1, 30)},
		{"a slot in the hour skipped by spring forward runs once, normalised to 03:30 CEST", "CRON_TZ=Europe/Paris 30 2 * * *", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 30)},
		{"the day after spring forward is back to 02:30 CEST", "CRON_TZ=Europe/Paris 30 2 * * *", utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)},
		{"the first 02:30 of a fall-back night is the slot", "CRON_TZ=Europe/Paris 30 2 * * *", utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 30)},
		{"the repeated 02:30 of a fall-back night is skipped", "CRON_TZ=Europe/Paris 30 2 * * *", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)},
	}
	mustLoc(t, "Europe/Paris")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NextSlot(tt.schedule, tt.after)
			if err != nil {
				t.Fatalf("NextSlot(%q, %s): %v", tt.schedule, tt.after, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("NextSlot(%q, %s) = %s, want %s", tt.schedule, tt.after, got.UTC(), tt.want)
			}
		})
	}
}

func TestNextSlotErrors(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		want     error
	}{
		{"a schedule that never matches has no slot", "0 0 30 2 *", ErrNoSlot},
		{"a six-field schedule is rejected", "0 0 0 * * *", nil},
		{"an unknown descriptor is rejected", "@fortnightly", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NextSlot(tt.schedule, utc(2026, 1, 1, 0, 0))
			if err == nil {
				t.Fatalf("NextSlot(%q) succeeded, want an error", tt.schedule)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("NextSlot(%q) = %v, want %v", tt.schedule, err, tt.want)
			}
		})
	}
}

// TestNextSlotDSTOncePerDay walks a daily 02:30 Paris schedule through both
// 2026 changes and checks every local date gets exactly one slot.
func TestNextSlotDSTOncePerDay(t *testing.T) {
	paris := mustLoc(t, "Europe/Paris")
	for _, span := range []struct {
		name       string
		start, end time.Time
	}{
		{"spring forward week", utc(2026, 3, 25, 0, 0), utc(2026, 4, 2, 0, 0)},
		{"fall back week", utc(2026, 10, 22, 0, 0), utc(2026, 10, 30, 0, 0)},
	} {
		t.Run(span.name, func(t *testing.T) {
			perDay := map[string]int{}
			cur := span.start
			for {
				n, err := NextSlot("CRON_TZ=Europe/Paris 30 2 * * *", cur)
				if err != nil {
					t.Fatal(err)
				}
				if n.After(span.end) {
					break
				}
				perDay[n.In(paris).Format(time.DateOnly)]++
				cur = n
			}
			if len(perDay) != 8 {
				t.Errorf("got slots on %d days, want 8: %v", len(perDay), perDay)
			}
			for day, n := range perDay {
				if n != 1 {
					t.Errorf("%s has %d slots, want 1", day, n)
				}
			}
		})
	}
}

func TestStartAt(t *testing.T) {
	slot := utc(2026, 11, 26, 2, 0)
	window := time.Hour
	t.Run("every start of a seeded source lies inside the window", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range 10000 {
			got := StartAt(slot, window, r.Int64N)
			if got.Before(slot) || !got.Before(slot.Add(window)) {
				t.Fatalf("draw %d: start %s outside [%s, %s)", i, got, slot, slot.Add(window))
			}
		}
	})
	t.Run("the same seed gives the same starts", func(t *testing.T) {
		a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
		for i := range 100 {
			if x, y := StartAt(slot, window, a.Int64N), StartAt(slot, window, b.Int64N); !x.Equal(y) {
				t.Fatalf("draw %d: %s != %s", i, x, y)
			}
		}
	})
	tests := []struct {
		name   string
		window time.Duration
		rnd    func(int64) int64
		want   time.Time
	}{
		{"a zero window starts at the slot", 0, func(n int64) int64 { return n / 2 }, slot},
		{"a nil source starts at the slot", window, nil, slot},
		{"an offset below zero is clamped to the slot", window, func(int64) int64 { return -5 }, slot},
		{"an offset past the window is clamped inside it", window, func(n int64) int64 { return n + 5 }, slot.Add(window - 1)},
		{"the offset is added to the slot", window, func(int64) int64 { return int64(10 * time.Minute) }, slot.Add(10 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StartAt(slot, tt.window, tt.rnd); !got.Equal(tt.want) {
				t.Errorf("StartAt = %s, want %s", got, tt.want)
			}
		})
	}
}

func fixed(off time.Duration) func(int64) int64 {
	return func(n int64) int64 { return min(int64(off), n-1) }
}

func TestDue(t *testing.T) {
	// Weekly on Monday 02:00 UTC; 2026-11-23 and 2026-11-30 are Mondays.
	const weekly = "0 2 * * 1"
	mon := utc(2026, 11, 23, 2, 0)
	next := utc(2026, 11, 30, 2, 0)
	tests := []struct {
		name string
		in   DueInput
		want Decision
	}{
		{
			name: "before the slot the run is planned inside the next window",
			in:   DueInput{Now: mon.Add(-time.Hour), Schedule: weekly, Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-7 * 24 * time.Hour), Rand: fixed(20 * time.Minute)},
			want: Decision{At: mon.Add(20 * time.Minute), Reason: ReasonScheduled, Slot: mon},
		},
		{
			name: "after downtime a missed slot whose window is open runs once, now",
			in:   DueInput{Now: mon.Add(10 * time.Minute), Schedule: weekly, Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-7 * 24 * time.Hour), Rand: fixed(0)},
			want: Decision{Due: true, At: mon.Add(10 * time.Minute), Reason: ReasonCatchUp, Slot: mon},
		},
		{
			name: "catch-up jitter spreads over what is left of the window",
			in:   DueInput{Now: mon.Add(10 * time.Minute), Schedule: weekly, Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-7 * 24 * time.Hour), Rand: fixed(time.Hour)},
			want: Decision{At: mon.Add(time.Hour - 1), Reason: ReasonCatchUp, Slot: mon},
		},
		{
			name: "a missed slot whose window closed waits for the next slot when max age is not exceeded",
			in:   DueInput{Now: mon.Add(5 * time.Hour), Schedule: weekly, Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-7 * 24 * time.Hour), Rand: fixed(0)},
			want: Decision{At: next, Reason: ReasonScheduled, Slot: next, Skipped: mon},
		},
		{
			name: "several missed slots give one catch-up run for the latest",
			in:   DueInput{Now: utc(2026, 11, 26, 2, 30), Schedule: "0 2 * * *", Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: utc(2026, 11, 20, 2, 0), Rand: fixed(0)},
			want: Decision{Due: true, At: utc(2026, 11, 26, 2, 30), Reason: ReasonCatchUp, Slot: utc(2026, 11, 26, 2, 0), Skipped: utc(2026, 11, 25, 2, 0)},
		},
		{
			name: "a missed slot whose window closed runs at once when max age is exceeded",
			in:   DueInput{Now: mon.Add(5 * time.Hour), Schedule: weekly, Window: time.Hour, MaxAge: 7 * 24 * time.Hour, LastRotation: mon.Add(-7 * 24 * time.Hour), Rand: fixed(0)},
			want: Decision{Due: true, At: mon.Add(5 * time.Hour), Reason: ReasonMaxAge},
		},
		{
			name: "max age beats a far slot",
			in:   DueInput{Now: mon.Add(time.Hour), Schedule: "@yearly", MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-31 * 24 * time.Hour)},
			want: Decision{Due: true, At: mon.Add(time.Hour), Reason: ReasonMaxAge},
		},
		{
			name: "the max-age deadline is planned when it comes before the next slot",
			in:   DueInput{Now: mon.Add(time.Hour), Schedule: "@yearly", MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-20 * 24 * time.Hour)},
			want: Decision{At: mon.Add(10 * 24 * time.Hour), Reason: ReasonMaxAge},
		},
		{
			name: "a slot already run is not run again",
			in:   DueInput{Now: mon.Add(10 * time.Minute), Schedule: weekly, Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-7 * 24 * time.Hour), LastSlot: mon, Rand: fixed(0)},
			want: Decision{At: next, Reason: ReasonScheduled, Slot: next},
		},
		{
			name: "a rotation after the slot (rotate now) serves it",
			in:   DueInput{Now: mon.Add(30 * time.Minute), Schedule: weekly, Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(5 * time.Minute), Rand: fixed(0)},
			want: Decision{At: next, Reason: ReasonScheduled, Slot: next},
		},
		{
			name: "unknown history waits for the next slot",
			in:   DueInput{Now: mon.Add(10 * time.Minute), Schedule: weekly, Window: time.Hour, MaxAge: 30 * 24 * time.Hour, Rand: fixed(0)},
			want: Decision{At: next, Reason: ReasonScheduled, Slot: next},
		},
		{
			name: "a schedule with no further slot still plans the max-age deadline",
			in:   DueInput{Now: mon, Schedule: "0 0 30 2 *", MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-20 * 24 * time.Hour)},
			want: Decision{At: mon.Add(10 * 24 * time.Hour), Reason: ReasonMaxAge},
		},
		{
			name: "an invalid schedule never runs",
			in:   DueInput{Now: mon, Schedule: "not cron"},
			want: Decision{Reason: ReasonInvalidSchedule},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Due(tt.in)
			got.Message = ""
			if got != tt.want {
				t.Errorf("Due =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// TestDueCatchUpRunsOnce replays what the loop does after a long downtime:
// run when due, record the slot, ask again. Only one run may come out.
func TestDueCatchUpRunsOnce(t *testing.T) {
	in := DueInput{
		Now: utc(2026, 11, 26, 2, 15), Schedule: "*/5 * * * *", Window: time.Hour,
		MaxAge: 30 * 24 * time.Hour, LastRotation: utc(2026, 11, 24, 0, 0), Rand: fixed(0),
	}
	runs := 0
	for range 50 {
		d := Due(in)
		if !d.Due {
			break
		}
		runs++
		in.LastSlot, in.LastRotation = d.Slot, in.Now
	}
	if runs != 1 {
		t.Errorf("got %d catch-up runs, want 1", runs)
	}
}
