package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
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
	_ server.Status     = (*api)(nil)
	_ server.Controller = (*api)(nil)
)

// statusConcurrency bounds the Vault reads of one status request.
const statusConcurrency = 8

// Apps implements server.Status: the scheduler's view of every app joined
// with what Vault holds (rotated_at, previous pair's expiry, journal).
func (a *api) Apps(ctx context.Context) ([]server.AppStatus, error) {
	d := (*Daemon)(a)
	apps := d.appList()
	out := make([]server.AppStatus, len(apps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, statusConcurrency)
	for i, app := range apps {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = d.status(ctx, app).AppStatus
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// App implements server.Status for one app, with its Vault history.
func (a *api) App(ctx context.Context, name string) (server.AppDetail, error) {
	d := (*Daemon)(a)
	app, ok := d.app(name)
	if !ok {
		return server.AppDetail{}, fmt.Errorf("app %s: %w", name, rotator.ErrNotFound)
	}
	det := d.status(ctx, app)
	if hist, err := d.rt.Vault.History(ctx, app.VaultPath); err == nil {
		if det.Details == nil {
			det.Details = map[string]string{}
		}
		for _, h := range hist {
			state := "live"
			switch {
			case h.Destroyed:
				state = "destroyed"
			case h.Deleted:
				state = "deleted"
			}
			det.Details[fmt.Sprintf("vault_version_%03d", h.Version)] = h.CreatedAt.UTC().Format(time.RFC3339) + " " + state
		}
	}
	return det, nil
}

// status gathers one app's line: scheduler state, Vault path, journal.
func (d *Daemon) status(ctx context.Context, app rotator.App) server.AppDetail {
	det := server.AppDetail{
		AppStatus: server.AppStatus{Name: app.Name, DevHub: app.DevHub, ECA: app.ECA, VaultPath: app.VaultPath},
		Schedule:  app.Schedule, Window: app.Window.String(), MaxAge: app.MaxAge.String(), Overlap: string(app.Overlap.Policy),
	}
	if app.Overlap.Policy == rotator.OverlapAfter {
		det.Overlap += " " + app.Overlap.After.String()
	}
	var jp *rotator.JournalEntry
	if j, _, err := d.rt.Vault.Load(ctx, app.Name); err == nil {
		jp = &j
	}
	sc := d.rt.Engine.StrategyOf(ctx, app, jp)
	det.Strategy, det.StrategyWhy = string(sc.Strategy), sc.Why
	if s, ok := d.sched.State(app.Name); ok {
		det.NextRotation, det.NextReason = s.Next, string(s.Reason)
		det.LastRotation = s.LastRotation
		if !s.DeferredUntil.IsZero() {
			det.NextReason = string(scheduler.ReasonAPIBudget)
		}
	}
	st, meta, err := d.rt.Vault.ReadCredentials(ctx, app.VaultPath)
	switch {
	case err == nil:
		det.ConsumerKey, det.PreviousValidUntil = st.Current.Key, st.PreviousValidUntil
		det.LastRotation, det.RotationID, det.VaultVersion = st.RotatedAt, st.RotationID, meta.Version
	case !errors.Is(err, rotator.ErrNotFound):
		det.LastError = "vault: " + err.Error()
	}
	if j, _, err := d.rt.Vault.Load(ctx, app.Name); err == nil {
		det.InFlight = j.Step != rotator.StepRetire
		det.Orphaned = j.Orphaned
		det.Step = string(j.Step)
		det.RotationID = j.RotationID
		if j.LastError != "" {
			det.LastError = j.LastError
		}
		if j.Orphaned {
			det.LastError = j.Extra[rotator.ExtraOrphanReason]
		}
	}
	d.mu.Lock()
	if msg, ok := d.lastErr[app.Name]; ok && det.LastError == "" {
		det.LastError = msg
	}
	d.mu.Unlock()
	return det
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
