package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

// States shown on the overview, each with a colour class and a word.
const (
	StateOK        = "ok"
	StateRotating  = "rotating"
	StateOverdue   = "overdue"
	StateFailing   = "failing"
	StateOrphaned  = "orphaned"
	StateNoHistory = "never rotated"
)

// appRow is one line of the overview.
type appRow struct {
	server.AppDetail
	State, StateClass string
	Age, MaxAgeText   string
	AgePct            int // age as a percentage of max age, capped at 100
	LastOutcome       string
	LastOutcomeAt     time.Time
}

// outcomeEvents end a rotation.
var outcomeEvents = []rotator.EventType{rotator.EventRotationSucceeded, rotator.EventRotationFailed, rotator.EventRotationOrphaned}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, q *request) {
	last := map[string]*audit.Record{}
	err := c.scan(r.Context(), q, audit.Filter{Events: outcomeEvents}, func(rec *audit.Record) error {
		last[rec.App] = rec
		return nil
	})
	if err != nil {
		c.o.Logger.Warn("console: read audit trail", zap.Error(err))
	}
	now := c.o.Now()
	rows := make([]appRow, 0, len(q.names))
	for _, name := range q.names {
		d, err := c.o.Status.App(r.Context(), name)
		if err != nil {
			c.o.Logger.Warn("console: app status", zap.String("app", name), zap.Error(err))
			d = server.AppDetail{AppStatus: server.AppStatus{Name: name, LastError: "status unavailable"}}
		}
		row := appRow{AppDetail: d}
		if rec := last[name]; rec != nil {
			row.LastOutcome, row.LastOutcomeAt = string(rec.Type)+" ("+string(rec.Outcome)+")", rec.Time
		}
		maxAge, _ := time.ParseDuration(d.MaxAge)
		row.MaxAgeText = d.MaxAge
		if maxAge > 0 {
			row.MaxAgeText = humanDur(maxAge)
		}
		if !d.LastRotation.IsZero() {
			age := now.Sub(d.LastRotation)
			row.Age = humanDur(age)
			if maxAge > 0 {
				row.AgePct = int(min(100, max(0, age*100/maxAge)))
			}
		}
		row.State = state(d, now, maxAge)
		row.StateClass = "st-" + strings.ReplaceAll(row.State, " ", "-")
		rows = append(rows, row)
	}
	c.render(w, http.StatusOK, "overview", c.view(q, "Apps", "overview", map[string]any{"Apps": rows, "Now": now}))
}

// state names an app's condition for the overview. It only describes
// what status reports; when to rotate is the scheduler's decision.
func state(d server.AppDetail, now time.Time, maxAge time.Duration) string {
	switch {
	case d.Orphaned:
		return StateOrphaned
	case d.InFlight:
		return StateRotating
	case d.LastError != "":
		return StateFailing
	case d.LastRotation.IsZero():
		return StateNoHistory
	case maxAge > 0 && now.Sub(d.LastRotation) > maxAge:
		return StateOverdue
	}
	return StateOK
}

// timeline is the inline SVG of an app's history.
type timeline struct {
	Width, Height int
	From, To      time.Time
	Marks         []mark
}

type mark struct {
	X     int
	Class string
	Label string
	Row   int // 0: rotations, 1: Vault versions
}

const (
	tlWidth = 900
	tlPad   = 20
)

func buildTimeline(events []*audit.Record, versions []rotator.VersionInfo, now time.Time) timeline {
	tl := timeline{Width: tlWidth, Height: 100, To: now}
	var times []time.Time
	for _, e := range events {
		if slices.Contains(outcomeEvents, e.Type) {
			times = append(times, e.Time)
		}
	}
	for _, v := range versions {
		times = append(times, v.CreatedAt)
	}
	if len(times) == 0 {
		return tl
	}
	tl.From = slices.MinFunc(times, time.Time.Compare)
	if t := slices.MaxFunc(times, time.Time.Compare); t.After(tl.To) {
		tl.To = t
	}
	span := tl.To.Sub(tl.From)
	x := func(t time.Time) int {
		if span <= 0 {
			return tlWidth / 2
		}
		return tlPad + int(float64(tlWidth-2*tlPad)*float64(t.Sub(tl.From))/float64(span))
	}
	for _, e := range events {
		if !slices.Contains(outcomeEvents, e.Type) {
			continue
		}
		cls := "tl-ok"
		if e.Type != rotator.EventRotationSucceeded {
			cls = "tl-bad"
		}
		tl.Marks = append(tl.Marks, mark{X: x(e.Time), Class: cls, Label: fmt.Sprintf("%s %s", e.Time.UTC().Format(time.RFC3339), e.Type)})
	}
	for _, v := range versions {
		tl.Marks = append(tl.Marks, mark{X: x(v.CreatedAt), Class: "tl-ver", Row: 1,
			Label: fmt.Sprintf("Vault version %d written %s", v.Version, v.CreatedAt.UTC().Format(time.RFC3339))})
	}
	return tl
}

type versionRow struct {
	rotator.VersionInfo
	State string
}

func (c *Console) app(w http.ResponseWriter, r *http.Request, q *request) {
	name := r.PathValue("name")
	if !q.allowed[name] {
		// Unknown and unreadable apps look the same.
		c.errorPage(w, r, q.sess, http.StatusNotFound, "No such app, or your token may not read it.")
		return
	}
	d, err := c.o.Status.App(r.Context(), name)
	if err != nil {
		c.o.Logger.Warn("console: app status", zap.String("app", name), zap.Error(err))
		c.errorPage(w, r, q.sess, http.StatusServiceUnavailable, "The app's status cannot be read right now; try again.")
		return
	}
	var versions []rotator.VersionInfo
	if c.o.Versions != nil {
		if versions, err = c.o.Versions(r.Context(), name); err != nil && !errors.Is(err, rotator.ErrNotFound) {
			c.o.Logger.Warn("console: vault versions", zap.String("app", name), zap.Error(err))
		}
	}
	var events []*audit.Record
	if err := c.scan(r.Context(), q, audit.Filter{App: name}, func(rec *audit.Record) error {
		events = append(events, rec)
		return nil
	}); err != nil {
		c.o.Logger.Warn("console: read audit trail", zap.Error(err))
	}
	vrows := make([]versionRow, 0, len(versions))
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		st := "live"
		switch {
		case v.Destroyed:
			st = "destroyed"
		case v.Deleted:
			st = "deleted"
		}
		vrows = append(vrows, versionRow{VersionInfo: v, State: st})
	}
	tl := buildTimeline(events, versions, c.o.Now())
	shown := events
	if len(shown) > c.o.MaxRows {
		shown = shown[len(shown)-c.o.MaxRows:]
	}
	slices.Reverse(shown)
	c.render(w, http.StatusOK, "app", c.view(q, "App "+name, "overview", map[string]any{
		"App": d, "Versions": vrows, "Events": shown, "Timeline": tl, "Total": len(events),
	}))
}

// trailQuery is the audit page's filter as the user typed it.
type trailQuery struct {
	App, Event, Actor, Since, Until string
}

func (t trailQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"app": t.App, "event": t.Event, "actor": t.Actor, "since": t.Since, "until": t.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// maxFilterLen bounds each filter field.
const maxFilterLen = 256

// parseTrail reads the filter; problems are returned as sentences.
func parseTrail(r *http.Request) (trailQuery, audit.Filter, []string) {
	qv := r.URL.Query()
	t := trailQuery{App: qv.Get("app"), Event: qv.Get("event"), Actor: qv.Get("actor"), Since: qv.Get("since"), Until: qv.Get("until")}
	var f audit.Filter
	var problems []string
	for _, s := range []*string{&t.App, &t.Event, &t.Actor, &t.Since, &t.Until} {
		*s = strings.TrimSpace(*s)
		if len(*s) > maxFilterLen || server.HasControl(*s) {
			*s = ""
			problems = append(problems, "a filter field was too long or held control characters and was ignored")
		}
	}
	f.App, f.Actor = t.App, t.Actor
	if t.Event != "" {
		f.Events = []rotator.EventType{rotator.EventType(t.Event)}
	}
	var err error
	if f.Since, err = parseWhen(t.Since); err != nil {
		problems = append(problems, "from: "+err.Error())
	}
	if f.Until, err = parseWhen(t.Until); err != nil {
		problems = append(problems, "until: "+err.Error())
	}
	return t, f, problems
}

// parseWhen accepts a date, a datetime-local value or RFC 3339 (UTC when
// no zone is given).
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a date (use YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339)")
}

// verification is the audit page's verification box.
type verification struct {
	Class, Word string
	Lines       []string
}

func (c *Console) verify(ctx context.Context, token rotator.Secret) verification {
	if c.o.Verify == nil {
		return verification{Class: "st-never-rotated", Word: "not checked", Lines: []string{"The daemon has no verifier configured."}}
	}
	res, err := c.o.Verify(ctx, token)
	if te, ok := errors.AsType[*audit.TamperError](err); ok {
		return verification{Class: "st-failing", Word: "FAILED", Lines: []string{
			fmt.Sprintf("problem: %s at line %d (seq %d)", te.Kind, te.Line, te.Seq)}}
	}
	if err != nil {
		c.o.Logger.Warn("console: verify audit trail", zap.Error(err))
		return verification{Class: "st-overdue", Word: "could not verify", Lines: []string{"Vault or the log could not be read to verify the trail; see the daemon log."}}
	}
	v := verification{Class: "st-ok", Word: "verified"}
	v.Lines = append(v.Lines, fmt.Sprintf("%d records, hash chain intact, last seq %d", res.Records, res.LastSeq))
	if res.MACChecked {
		v.Lines = append(v.Lines, "every record MAC checked (transit/verify)")
	} else {
		v.Lines = append(v.Lines, "record MACs not checked")
	}
	if res.SigMode != "" {
		v.Lines = append(v.Lines, fmt.Sprintf("%d head signatures valid (%s), signed up to seq %d, %d records after it", res.Signatures, res.SigMode, res.SignedSeq, res.Unsigned))
	} else {
		v.Lines = append(v.Lines, "head signatures not checked")
	}
	if res.Anchor != nil {
		v.Lines = append(v.Lines, fmt.Sprintf("anchored head reached: %s seq %d hash %s", res.Anchor.ID, res.Anchor.Seq, short(res.Anchor.Hash)))
	} else {
		v.Lines = append(v.Lines, "no anchor checked")
	}
	return v
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

func (c *Console) trail(w http.ResponseWriter, r *http.Request, q *request) {
	tq, f, problems := parseTrail(r)
	var rows []*audit.Record
	total := 0
	events := map[string]bool{}
	if err := c.scan(r.Context(), q, audit.Filter{}, func(rec *audit.Record) error {
		events[string(rec.Type)] = true
		if !f.Match(rec) {
			return nil
		}
		total++
		rows = append(rows, rec)
		if len(rows) > c.o.MaxRows {
			rows = rows[1:]
		}
		return nil
	}); err != nil {
		c.o.Logger.Warn("console: read audit trail", zap.Error(err))
		problems = append(problems, "the audit log could not be read completely")
	}
	slices.Reverse(rows)
	evs := make([]string, 0, len(events))
	for e := range events {
		evs = append(evs, e)
	}
	slices.Sort(evs)
	qs := tq.values()
	csvQ, jsonQ := url.Values{}, url.Values{}
	for k, v := range qs {
		csvQ[k], jsonQ[k] = v, v
	}
	csvQ.Set("format", "csv")
	jsonQ.Set("format", "json")
	c.render(w, http.StatusOK, "audit", c.view(q, "Audit trail", "audit", map[string]any{
		"Q": tq, "Rows": rows, "Total": total, "Shown": len(rows), "Problems": problems,
		"Apps": q.names, "Events": evs, "Verify": c.verify(r.Context(), q.sess.token),
		"CSV": "/ui/audit/export?" + csvQ.Encode(), "JSON": "/ui/audit/export?" + jsonQ.Encode(),
	}))
}

// export downloads the filtered trail as the audit package writes it
// (CSV) or as a JSON array of the stored records (like `audit export`).
func (c *Console) export(w http.ResponseWriter, r *http.Request, q *request) {
	_, f, problems := parseTrail(r)
	if len(problems) > 0 {
		c.errorPage(w, r, q.sess, http.StatusBadRequest, "The filter is not valid: "+strings.Join(problems, "; "))
		return
	}
	format := r.URL.Query().Get("format")
	stamp := c.o.Now().UTC().Format("20060102T150405Z")
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="ecarotator-audit-`+stamp+`.csv"`)
		cw, err := audit.NewCSVWriter(w)
		if err != nil {
			return
		}
		err = c.scan(r.Context(), q, f, cw.Write)
		if err == nil {
			err = cw.Flush()
		}
		if err != nil {
			c.o.Logger.Warn("console: export", zap.Error(err))
		}
	case "json":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="ecarotator-audit-`+stamp+`.json"`)
		sep := "[\n"
		err := c.scan(r.Context(), q, f, func(rec *audit.Record) error {
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprint(w, sep); err != nil {
				return err
			}
			sep = ",\n"
			_, err = w.Write(b)
			return err
		})
		if sep == "[\n" {
			fmt.Fprint(w, "[")
		}
		fmt.Fprint(w, "\n]\n")
		if err != nil {
			c.o.Logger.Warn("console: export", zap.Error(err))
		}
	default:
		c.errorPage(w, r, q.sess, http.StatusBadRequest, "Export format must be csv or json.")
	}
}

// approval is a pending two-person approval, as the trail tells it.
type approval struct {
	ID, Action, App, Requester, Reason string
	Requested, Expires                 time.Time
}

// approvals lists the revocations waiting for a second operator: an
// approval.requested record with no granted approval.granted after it,
// not yet expired. The trail is the auditor's source of truth.
func (c *Console) approvals(w http.ResponseWriter, r *http.Request, q *request) {
	open := map[string]*approval{}
	var order []string
	err := c.scan(r.Context(), q, audit.Filter{Events: []rotator.EventType{rotator.EventApprovalRequested, rotator.EventApprovalGranted}}, func(rec *audit.Record) error {
		id := rec.Details["approval_id"]
		if id == "" || rec.Outcome != rotator.OutcomeOK {
			return nil
		}
		if rec.Type == rotator.EventApprovalGranted {
			delete(open, id)
			return nil
		}
		exp, _ := time.Parse(time.RFC3339, rec.Details["expires"])
		open[id] = &approval{ID: id, Action: rec.Details["action"], App: rec.App, Requester: rec.Details["requester"],
			Reason: rec.Details["request_reason"], Requested: rec.Time, Expires: exp}
		order = append(order, id)
		return nil
	})
	if err != nil {
		c.o.Logger.Warn("console: read audit trail", zap.Error(err))
	}
	now := c.o.Now()
	var pending []*approval
	for _, id := range order {
		if a, ok := open[id]; ok && now.Before(a.Expires) {
			pending = append(pending, a)
			delete(open, id)
		}
	}
	c.render(w, http.StatusOK, "approvals", c.view(q, "Pending approvals", "approvals", map[string]any{"Pending": pending}))
}

// scan reads the trail with f, keeping only records of apps the caller
// may read (and the daemon-wide records that name no app).
func (c *Console) scan(ctx context.Context, q *request, f audit.Filter, fn func(*audit.Record) error) error {
	return audit.Scan(ctx, c.o.AuditFile, f, func(rec *audit.Record) error {
		if rec.App != "" && !q.allowed[rec.App] {
			return nil
		}
		return fn(rec)
	}, nil)
}
