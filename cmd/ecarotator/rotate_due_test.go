package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
)

func TestDueLineNamesEveryOutcome(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		out  daemon.DueOutcome
		err  error
		want string
	}{
		{"not due, with the next time", daemon.DueOutcome{Due: scheduler.Decision{At: at, Reason: scheduler.ReasonScheduled}}, nil, dueNotDue},
		{"due and rotated", daemon.DueOutcome{Due: scheduler.Decision{Due: true}, Verdict: string(rotator.ReasonScheduled), Rotated: true}, nil, dueRotated},
		{"due but the slot was served", daemon.DueOutcome{Due: scheduler.Decision{Due: true}, Verdict: string(rotator.ReasonSlotServed)}, nil, dueSkipped},
		{"another holder has the lease", daemon.DueOutcome{Locked: true}, nil, dueLocked},
		{"the proof failed", daemon.DueOutcome{Rotated: true}, fmt.Errorf("rotate: %w", rotator.ErrVerifyFailed), dueVerifyFailed},
		{"any other failure", daemon.DueOutcome{Rotated: true}, errors.New("vault: sealed"), dueFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := dueLine(tt.out, tt.err)
			if l.Outcome != tt.want {
				t.Errorf("outcome %q, want %q", l.Outcome, tt.want)
			}
			if tt.want == dueNotDue && (l.Next == nil || !l.Next.Equal(at)) {
				t.Errorf("next %v, want %v", l.Next, at)
			}
		})
	}
}

func TestRotateDueFlagsAreChecked(t *testing.T) {
	for _, tt := range []struct{ args, want string }{
		{"rotate --due billing", "takes no app argument"},
		{"rotate --app billing", "--app needs --due"},
		{"rotate --due --dry-run", "does not combine"},
		{"rotate --due --server http://127.0.0.1:1", "does not combine"},
	} {
		code, _, stderr := runCLI(t, nil, strings.Fields(tt.args)...)
		if code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, ExitUsage, tt.want)
		}
	}
}
