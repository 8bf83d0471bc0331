package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
)

// Outcomes of one app in a `rotate --due` summary.
const (
	dueRotated      = "rotated"       // the engine rotated (or resumed) the app
	dueNotDue       = "not_due"       // nothing to do now
	dueSkipped      = "skipped"       // due, but the daemon's decision said no (served, waiting, ...)
	dueLocked       = "locked"        // another holder (a daemon) is rotating it now
	dueFailed       = "failed"        // the rotation failed
	dueVerifyFailed = "verify_failed" // the new pair did not verify
)

// dueApp is one app's line of the summary.
type dueApp struct {
	App          string           `json:"app"`
	Outcome      string           `json:"outcome"`
	Reason       string           `json:"reason,omitempty"`  // the scheduler's reason (MaxAgeExceeded, CatchUp, ...)
	Verdict      string           `json:"verdict,omitempty"` // the daemon's verdict (Rotate, SlotServed, ...)
	Next         *time.Time       `json:"next,omitempty"`    // when it is next due (not_due)
	Message      string           `json:"message,omitempty"`
	Error        string           `json:"error,omitempty"`
	ConsumerKey  string           `json:"consumer_key,omitempty"`
	VaultVersion int              `json:"vault_version,omitempty"`
	RotationID   string           `json:"rotation_id,omitempty"`
	Step         rotator.Step     `json:"step,omitempty"`
	Strategy     rotator.Strategy `json:"strategy,omitempty"`
}

// dueSummary is the JSON summary of `rotate --due`.
type dueSummary struct {
	Apps         []dueApp `json:"apps"`
	Due          int      `json:"due"`
	Rotated      int      `json:"rotated"`
	Failed       int      `json:"failed"`
	VerifyFailed int      `json:"verify_failed"`
	ExitCode     int      `json:"exit_code"`
}

// rotateDue is `rotate --due`: every due app, in config order, one at a
// time, by the daemon's decision (daemon.RotateDue).
func (c *cli) rotateDue(ctx context.Context, only []string, reason string, asJSON bool) error {
	cfg, log, err := c.setup(false)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	for _, a := range only {
		if _, ok := cfg.AppByName(a); !ok {
			return usageError{fmt.Errorf("unknown app %q (configured: %s)", a, appNames(cfg))}
		}
	}
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s:%d", host, os.Getpid())
	rt, err := wire.New(ctx, cfg, log, wire.RuntimeOptions{Hook: crashHook, Holder: holder})
	if err != nil {
		return err
	}
	defer rt.Close()
	if reason == "" {
		reason = "rotate --due"
	}
	actor := rotator.Actor{Kind: rotator.ActorScheduler, Reason: reason}
	if id, err := rt.Vault.TokenIdentity(ctx, rt.Cfg.Vault.Auth.Token); err == nil {
		actor.Identity = id
	}
	progress := io.Discard
	if isTerminal(c.stderr) {
		progress = c.stderr
	}

	var sum dueSummary
	var errs []error
	for _, app := range rt.Apps() {
		if len(only) > 0 && !contains(only, app.Name) {
			continue
		}
		fmt.Fprintf(progress, "%s: checking\n", app.Name)
		out, err := daemon.RotateDue(ctx, rt, app, time.Now(), actor)
		line := dueLine(out, err)
		if out.Due.Due || out.Rotated {
			sum.Due++
		}
		switch line.Outcome {
		case dueRotated:
			sum.Rotated++
		case dueFailed:
			sum.Failed++
			errs = append(errs, fmt.Errorf("%s: %w", app.Name, err))
		case dueVerifyFailed:
			sum.VerifyFailed++
			errs = append(errs, fmt.Errorf("%s: %w", app.Name, err))
		}
		fmt.Fprintf(progress, "%s: %s\n", app.Name, strings.ReplaceAll(line.Outcome, "_", " "))
		sum.Apps = append(sum.Apps, line)
		if ctx.Err() != nil {
			break
		}
	}
	var result error
	switch {
	case sum.VerifyFailed > 0:
		sum.ExitCode, result = ExitVerification, verifyError{errors.Join(errs...)}
	case len(errs) > 0 || ctx.Err() != nil:
		sum.ExitCode, result = ExitRuntime, errors.Join(append(errs, ctx.Err())...)
	}
	if asJSON {
		_ = writeJSON(c.stdout, sum)
	} else {
		printDue(c.stdout, sum)
	}
	return result
}

// dueLine turns one app's outcome into its summary line.
func dueLine(out daemon.DueOutcome, err error) dueApp {
	l := dueApp{App: out.App, Reason: string(out.Due.Reason), Verdict: out.Verdict, Message: out.Due.Message}
	r := out.Result
	l.ConsumerKey, l.VaultVersion, l.RotationID, l.Step, l.Strategy = r.ConsumerKey, r.VaultVersion, r.RotationID, r.Step, r.Strategy
	switch {
	case errors.Is(err, rotator.ErrVerifyFailed):
		l.Outcome, l.Error = dueVerifyFailed, err.Error()
	case err != nil:
		l.Outcome, l.Error = dueFailed, err.Error()
	case out.Locked:
		l.Outcome = dueLocked
	case out.Rotated:
		l.Outcome = dueRotated
	case out.Verdict != "":
		l.Outcome = dueSkipped
	default:
		l.Outcome = dueNotDue
		if !out.Due.At.IsZero() {
			at := out.Due.At.UTC()
			l.Next = &at
		}
	}
	return l
}

func printDue(w io.Writer, s dueSummary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tOUTCOME\tREASON\tVERDICT\tNEXT\tDETAIL")
	for _, a := range s.Apps {
		next := "-"
		if a.Next != nil {
			next = a.Next.Format(time.RFC3339)
		}
		detail := a.Error
		if detail == "" && a.ConsumerKey != "" {
			detail = fmt.Sprintf("consumer key %s, vault version %d", a.ConsumerKey, a.VaultVersion)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.App, a.Outcome, dash(a.Reason), dash(a.Verdict), next, dash(detail))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d due, %d rotated, %d failed, %d verification failed\n", s.Due, s.Rotated, s.Failed, s.VerifyFailed)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// isTerminal reports whether w is a character device (a TTY).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
