package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"time"

	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
	"go.uber.org/zap"
)

// api is the daemon seen by the HTTP server: server.Status and
// server.Controller.
type api Daemon

var (
	_ server.Status      = (*api)(nil)
	_ server.NamedStatus = (*api)(nil)
	_ server.Controller  = (*api)(nil)
)

// Apps implements server.Status from the daemon's memory (no Vault read):
// the scheduler's view of every app joined with what the start-up seed and
// the engine's results left in memory.
func (a *api) Apps(ctx context.Context) ([]server.AppStatus, error) {
	d := (*Daemon)(a)
	apps := d.appList()
	out := make([]server.AppStatus, len(apps))
	for i, app := range apps {
		out[i] = d.line(app)
	}
	return out, nil
}

// AppsNamed implements server.NamedStatus: the lines of the named apps
// only (one page of the listing), from memory.
func (a *api) AppsNamed(_ context.Context, names []string) ([]server.AppStatus, error) {
	d := (*Daemon)(a)
	out := make([]server.AppStatus, 0, len(names))
	for _, n := range names {
		if app, ok := d.app(n); ok {
			out = append(out, d.line(app))
		}
	}
	return out, nil
}

// historyTTL is how long an app's Vault version history is served again
// by GET /api/v1/apps/{name}; the daemon's own writes drop it at once.
const historyTTL = 30 * time.Second

type historyEntry struct {
	at      time.Time
	version int
	details map[string]string
}

// App implements server.Status for one app: its line from memory, and its
// Vault version history (one Vault read per app per historyTTL, or after
// the daemon wrote the path).
func (a *api) App(ctx context.Context, name string) (server.AppDetail, error) {
	d := (*Daemon)(a)
	app, ok := d.app(name)
	if !ok {
		return server.AppDetail{}, fmt.Errorf("app %s: %w", name, rotator.ErrNotFound)
	}
	det := d.status(app)
	if h := d.history(ctx, app, det.VaultVersion); len(h) > 0 {
		det.Details = make(map[string]string, len(h))
		maps.Copy(det.Details, h)
	}
	return det, nil
}

func (d *Daemon) history(ctx context.Context, app rotator.App, version int) map[string]string {
	now := d.o.Clock.Now()
	d.histMu.Lock()
	e, ok := d.hist[app.Name]
	d.histMu.Unlock()
	if ok && e.version == version && now.Sub(e.at) < historyTTL {
		return e.details
	}
	hist, err := d.rt.Vault.History(ctx, app.VaultPath)
	if err != nil {
		return nil
	}
	det := make(map[string]string, len(hist))
	for _, h := range hist {
		state := "live"
		switch {
		case h.Destroyed:
			state = "destroyed"
		case h.Deleted:
			state = "deleted"
		}
		det[fmt.Sprintf("vault_version_%03d", h.Version)] = h.CreatedAt.UTC().Format(time.RFC3339) + " " + state
	}
	d.histMu.Lock()
	if len(d.hist) >= 1024 {
		clear(d.hist)
	}
	d.hist[app.Name] = historyEntry{at: now, version: version, details: det}
	d.histMu.Unlock()
	return det
}

// status is one app's detail: its line plus the configuration.
func (d *Daemon) status(app rotator.App) server.AppDetail {
	det := server.AppDetail{
		AppStatus: d.line(app),
		Schedule:  app.Schedule, Window: app.Window.String(), MaxAge: app.MaxAge.String(), Overlap: string(app.Overlap.Policy),
	}
	if app.Overlap.Policy == rotator.OverlapAfter {
		det.Overlap += " " + app.Overlap.After.String()
	}
	m, _ := d.mem.get(app.Name)
	det.VaultVersion = m.vaultVersion
	det.RotationID = m.rotationID
	if j := m.journal; j != nil {
		det.Step = string(j.step)
		det.RotationID = j.rotationID
	}
	return det
}

// line gathers one app's listing line from memory: scheduler state and
// what the seed and the engine's results recorded (no Vault read; it is
// built for every app of a page on every request, so it allocates little).
func (d *Daemon) line(app rotator.App) server.AppStatus {
	st := server.AppStatus{Name: app.Name, DevHub: app.DevHub, ECA: app.ECA, VaultPath: app.VaultPath}
	m, _ := d.mem.get(app.Name)
	sc := d.rt.Engine.KnownStrategy(app, m.journal.entry())
	st.Strategy, st.StrategyWhy = string(sc.Strategy), sc.Why
	if s, ok := d.sched.State(app.Name); ok {
		st.NextRotation, st.NextReason = s.Next, string(s.Reason)
		st.LastRotation = s.LastRotation
		if !s.DeferredUntil.IsZero() {
			st.NextReason = string(scheduler.ReasonAPIBudget)
		}
	}
	st.Loading = !m.seeded
	if m.consumerKey != "" || !m.rotatedAt.IsZero() {
		st.ConsumerKey, st.PreviousValidUntil, st.LastRotation = m.consumerKey, m.previousValidUntil, m.rotatedAt
	}
	if j := m.journal; j != nil {
		st.InFlight = j.step != rotator.StepRetire
		st.Orphaned = j.orphaned
		st.LastError = j.lastError
	}
	d.mu.Lock()
	if msg, ok := d.lastErr[app.Name]; ok && st.LastError == "" {
		st.LastError = msg
	}
	d.mu.Unlock()
	return st
}

// Plan implements server.Status with the engine's read-only plan.
func (a *api) Plan(ctx context.Context, names []string) (any, error) {
	d := (*Daemon)(a)
	var apps []rotator.App
	if len(names) == 0 {
		apps = d.appList()
	}
	for _, n := range names {
		app, ok := d.app(n)
		if !ok {
			return nil, fmt.Errorf("app %s: %w", n, rotator.ErrNotFound)
		}
		apps = append(apps, app)
	}
	now := d.o.Clock.Now()
	out := make([]rotator.PlanResult, 0, len(apps))
	for _, app := range apps {
		p, err := d.rt.Engine.Plan(ctx, app, now)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// RotateNow implements server.Controller: after the operator gate, the
// rotation runs in the background (the engine's lease still makes it the
// only one) and its operation id is returned at once.
//
// A rotate-now that would end the previous pair's overlap is refused here,
// before anything is accepted (rotator.ErrPreviousInOverlap, H3): it would
// revoke the previous pair on one operator's word.
func (a *api) RotateNow(ctx context.Context, name string, actor rotator.Actor) (string, error) {
	d := (*Daemon)(a)
	return d.operate(ctx, name, actor, server.ActionRotate, func(ctx context.Context, app rotator.App) error {
		start := d.o.Clock.Now()
		res, err := d.rt.Engine.Rotate(ctx, app, rotator.Request{Actor: actor})
		_ = d.afterRotation(ctx, app, res, err, start)
		return err
	})
}

// RevokePrevious implements server.Controller: the previous pair is
// deleted in Salesforce and dropped from Vault now.
func (a *api) RevokePrevious(ctx context.Context, name string, actor rotator.Actor) (string, error) {
	d := (*Daemon)(a)
	return d.operate(ctx, name, actor, server.ActionRevoke, func(ctx context.Context, app rotator.App) error {
		res, err := d.rt.Engine.RevokePrevious(ctx, app, actor)
		if err == nil && res.Outcome == rotator.OutcomeOK {
			d.mem.retired(app.Name)
			d.sched.ClearRetry(app.Name) // nothing left to wait for (L2)
			d.metrics.SetPreviousExpiry(app.Name, time.Time{})
			d.notifyApp(notifyRevoked(app, res))
		}
		return err
	})
}

// operate checks the gate and starts fn as an owned background operation.
func (d *Daemon) operate(ctx context.Context, name string, actor rotator.Actor, action string, fn func(context.Context, rotator.App) error) (string, error) {
	app, ok := d.app(name)
	if !ok {
		return "", fmt.Errorf("app %s: %w", name, rotator.ErrNotFound)
	}
	if d.o.Gate != nil {
		code := server.MFACode(ctx)
		if code.IsZero() {
			return "", fmt.Errorf("%s %s: %w", action, name, server.ErrMFA)
		}
		if err := d.o.Gate.Verify(ctx, actor.Identity, code.Reveal(), action, name); err != nil {
			return "", fmt.Errorf("%s %s: %w: %w", action, name, gateErr(err), err)
		}
	}
	// H3, after the second factor (a caller without a code learns
	// nothing about the app's overlap).
	if action == server.ActionRotate {
		if err := d.rt.Engine.CheckOverlap(ctx, app, actor); err != nil {
			return "", err
		}
	}
	if d.opsCtx.Err() != nil {
		return "", fmt.Errorf("%s %s: daemon is stopping: %w", action, name, rotator.ErrUnreachable)
	}
	id := opID()
	log := d.log.With(zap.String(rotator.LogKeyApp, name), zap.String("action", action), zap.String("operation_id", id), zap.String("identity", actor.Identity))
	d.ops.Add(1)
	go func() {
		defer d.ops.Done()
		if err := fn(d.opsCtx, app); err != nil {
			log.Warn("operator action failed", zap.Error(err))
			return
		}
		log.Info("operator action done")
	}()
	return id, nil
}

func opID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "op-" + hex.EncodeToString(b[:])
}
