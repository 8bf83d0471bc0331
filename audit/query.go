package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// Filter selects records; zero fields match everything.
type Filter struct {
	App, Org   string
	Events     []rotator.EventType // any of
	Actor      string              // matches the actor's kind or identity
	Outcome    rotator.Outcome
	RotationID string
	Since      time.Time // inclusive
	Until      time.Time // exclusive
}

// Match reports whether r passes f.
func (f Filter) Match(r *Record) bool {
	switch {
	case f.App != "" && r.App != f.App,
		f.Org != "" && r.Org != f.Org,
		f.Outcome != "" && r.Outcome != f.Outcome,
		f.RotationID != "" && r.RotationID != f.RotationID,
		f.Actor != "" && string(r.Actor.Kind) != f.Actor && r.Actor.Identity != f.Actor,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	if len(f.Events) == 0 {
		return true
	}
	for _, e := range f.Events {
		if r.Type == e {
			return true
		}
	}
	return false
}

// SkippedLine is a line Scan could not parse (see Verify for why).
type SkippedLine struct {
	File string
	Line int
	Err  error
}

// Scan streams the records of the log at path (rotated files first) that
// match f to fn, in order. Unparsable lines go to skip (when non-nil) and
// are otherwise ignored: Scan is for reading, Verify is for trusting.
func Scan(ctx context.Context, logPath string, f Filter, fn func(*Record) error, skip func(SkippedLine)) error {
	files, err := Files(logPath)
	if err != nil {
		return err
	}
	for _, file := range files {
		err := eachLine(file, func(line []byte, p position) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := ParseLine(line)
			if err != nil {
				if skip != nil {
					skip(SkippedLine{File: p.file, Line: p.line, Err: err})
				}
				return nil
			}
			if !f.Match(r) {
				return nil
			}
			return fn(r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// CSVHeader is the column order of WriteCSV.
var CSVHeader = []string{"seq", "time", "event", "app", "org", "eca", "consumer_key", "rotation_id", "step",
	"actor_kind", "actor_identity", "actor_reason", "outcome", "error", "vault_path", "vault_version",
	"fingerprint", "details", "prev_hash", "hash", "mac"}

// CSVWriter writes records as CSV (RFC 4180), details as a JSON object.
type CSVWriter struct{ w *csv.Writer }

// NewCSVWriter writes the header row and returns the writer.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return nil, err
	}
	return &CSVWriter{w: cw}, nil
}

// Write writes one record.
func (c *CSVWriter) Write(r *Record) error {
	details := ""
	if len(r.Details) > 0 {
		b, _ := json.Marshal(r.Details)
		details = string(b)
	}
	vv := ""
	if r.VaultVersion != 0 {
		vv = strconv.Itoa(r.VaultVersion)
	}
	return c.w.Write([]string{strconv.FormatUint(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), string(r.Type),
		r.App, r.Org, r.ECA, csvSafe(r.ConsumerKey), r.RotationID, string(r.Step),
		string(r.Actor.Kind), csvSafe(r.Actor.Identity), csvSafe(r.Actor.Reason), string(r.Outcome), csvSafe(r.Error),
		r.VaultPath, vv, r.Fingerprint, csvSafe(details), r.PrevHash, r.Hash, r.MAC})
}

// Flush flushes the CSV output and reports any write error.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// csvSafe defuses spreadsheet formula injection in free-text cells: a cell
// starting with = + - @ gets a leading apostrophe (OWASP's advice).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Story is everything the trail says about one rotation, in order.
type Story struct {
	RotationID string
	App        string
	Records    []*Record
	Started    time.Time
	Ended      time.Time
	Outcome    string // succeeded, failed, orphaned, or in progress
}

// StoryOf collects the records of one rotation. Rotations have tens of
// events, so holding them is fine.
func StoryOf(ctx context.Context, logPath, rotationID string) (*Story, error) {
	s := &Story{RotationID: rotationID, Outcome: "in progress"}
	err := Scan(ctx, logPath, Filter{RotationID: rotationID}, func(r *Record) error {
		s.Records = append(s.Records, r)
		if s.App == "" {
			s.App = r.App
		}
		if s.Started.IsZero() {
			s.Started = r.Time
		}
		switch r.Type {
		case rotator.EventRotationSucceeded:
			s.Outcome, s.Ended = "succeeded", r.Time
		case rotator.EventRotationFailed:
			s.Outcome, s.Ended = "failed", r.Time
		case rotator.EventRotationOrphaned:
			s.Outcome, s.Ended = "orphaned", r.Time
		}
		return nil
	}, nil)
	return s, err
}

// ReportApp is what the compliance report needs to know about one app.
type ReportApp struct {
	Name     string
	MaxAge   time.Duration
	Disabled bool
}

// AppStatus is one app's line of the compliance report.
type AppStatus struct {
	App           string        `json:"app"`
	LastSuccess   time.Time     `json:"last_success,omitzero"`
	LastRotation  string        `json:"last_rotation_id,omitempty"`
	Age           time.Duration `json:"age_ns"`
	MaxAge        time.Duration `json:"max_age_ns"`
	Failures      int           `json:"failures"`       // rotation.failed and rotation.orphaned
	FailuresSince int           `json:"failures_since"` // … since the last success
	Manual        int           `json:"manual_actions"` // events caused by an operator
	Compliant     bool          `json:"compliant"`
	Disabled      bool          `json:"disabled,omitempty"`
	Reason        string        `json:"reason,omitempty"`
}

// Report is the compliance report.
type Report struct {
	Now          time.Time   `json:"now"`
	Apps         []AppStatus `json:"apps"`
	Compliant    int         `json:"compliant"`
	NonCompliant int         `json:"non_compliant"`
}

// BuildReport reads the log once and, per configured app, finds the last
// successful rotation, its age against max age at now, the failures and
// the manual (operator) actions. An app with no success on record is not
// compliant; disabled apps are listed but not counted.
func BuildReport(ctx context.Context, logPath string, apps []ReportApp, now time.Time) (*Report, error) {
	idx := make(map[string]*AppStatus, len(apps))
	rep := &Report{Now: now.UTC()}
	rep.Apps = make([]AppStatus, len(apps))
	for i, a := range apps {
		rep.Apps[i] = AppStatus{App: a.Name, MaxAge: a.MaxAge, Disabled: a.Disabled}
		idx[a.Name] = &rep.Apps[i]
	}
	err := Scan(ctx, logPath, Filter{}, func(r *Record) error {
		st := idx[r.App]
		if st == nil {
			return nil
		}
		switch r.Type {
		case rotator.EventRotationSucceeded:
			if !r.Time.Before(st.LastSuccess) {
				st.LastSuccess, st.LastRotation, st.FailuresSince = r.Time, r.RotationID, 0
			}
		case rotator.EventRotationFailed, rotator.EventRotationOrphaned:
			st.Failures++
			st.FailuresSince++
		}
		if r.Actor.Kind == rotator.ActorOperator {
			st.Manual++
		}
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	for i := range rep.Apps {
		st := &rep.Apps[i]
		switch {
		case st.LastSuccess.IsZero():
			st.Reason = "no successful rotation on record"
		default:
			st.Age = now.Sub(st.LastSuccess)
			if st.Age > st.MaxAge {
				st.Reason = fmt.Sprintf("last rotated %s ago, max age %s", roundDur(st.Age), roundDur(st.MaxAge))
			} else {
				st.Compliant = true
			}
		}
		if st.Disabled {
			continue
		}
		if st.Compliant {
			rep.Compliant++
		} else {
			rep.NonCompliant++
		}
	}
	return rep, nil
}

func roundDur(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	}
	return d.Round(time.Minute).String()
}
