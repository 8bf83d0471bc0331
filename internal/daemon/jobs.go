package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecarotator/ecarotator/internal/notify"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
	"github.com/ecarotator/ecarotator/vault"
	"go.uber.org/zap"
)

// servedRun is what a scheduled run serves: its cron slot (zero for a
// max-age run) and the scheduler's reason. A retry keeps serving them.
type servedRun struct {
	Slot   time.Time
	Reason scheduler.Reason
}

// lockedRetry is how soon a run that met another holder's lease looks
// again: the other rotation is either about to finish (then the slot is
// served) or dead (then its lease expires and this replica resumes it).
func (d *Daemon) lockedRetry() time.Duration {
	return min(5*time.Second, max(d.settings().LockTTL/4, time.Second))
}

// runRotation is the scheduler's rotation callback for one app.
func (d *Daemon) runRotation(ctx context.Context, name, reason string) error {
	app, ok := d.app(name)
	if !ok {
		return nil // removed by a reload while queued
	}
	now := d.o.Clock.Now()
	log := d.log.With(zap.String(rotator.LogKeyApp, name), zap.String(rotator.LogKeyOrg, app.DevHub), zap.String(rotator.LogKeyReason, reason))

	// The slot (and reason) this run serves: a retry keeps serving those of
	// the run that failed. A retry with nothing recorded was planned only to
	// finish a journal (see resume).
	run := servedRun{Slot: scheduler.SlotFromContext(ctx), Reason: scheduler.Reason(reason)}
	d.mu.Lock()
	if run.Reason == scheduler.ReasonRetry {
		if prev, ok := d.serving[name]; ok {
			run = prev
		}
	} else {
		d.serving[name] = run
	}
	d.mu.Unlock()

	// The engine decides under the app's own lease, from its one journal
	// load and KV read, whether this run still rotates (a slot another
	// replica served is skipped there): no slot lease, no read here.
	req := rotator.Request{Actor: rotator.Actor{Kind: rotator.ActorScheduler, Reason: reason},
		Run: &rotator.ScheduledRun{Reason: run.Reason, Slot: run.Slot}}
	res, err := d.rt.Engine.Rotate(ctx, app, req)
	if err == nil && res.Decision != nil && !res.Decision.Rotate {
		return d.afterDecision(app, res, now, log)
	}
	if res.Decision != nil {
		log.Info("rotation ran", zap.String("verdict", string(res.Decision.Reason)), zap.Time("slot", run.Slot))
	}
	return d.afterRotation(ctx, app, res, err, now)
}

// afterDecision handles a scheduled run that the engine decided not to
// rotate: a served slot ends the run (the plan moves on from the store's
// rotated_at), anything else asks to look again when the decision says.
func (d *Daemon) afterDecision(app rotator.App, res rotator.Result, now time.Time, log *zap.Logger) error {
	v := *res.Decision
	name := app.Name
	if v.Skip() {
		log.Info("run skipped", zap.String("verdict", string(v.Reason)), zap.String("why", v.Message), zap.Time("rotated_at", res.RotatedAt))
		d.forgetSlot(name)
		d.setErr(name, "")
		return scheduler.Done(res.RotatedAt) // the plan moves on from the store's time
	}
	until := v.Next
	if until.IsZero() || !until.After(now) {
		until = now.Add(d.settings().RetryMax)
	}
	log.Info("run waits", zap.String("verdict", string(v.Reason)), zap.Time("until", until))
	if v.Reason == rotator.ReasonOrphaned || v.Reason == rotator.ReasonNotManaged {
		d.setErr(name, string(v.Reason))
	}
	d.metrics.SetOrphaned(name, v.Reason == rotator.ReasonOrphaned)
	return scheduler.Retry(until)
}

// afterRotation turns an engine result into metrics, notifications, the
// retire schedule and the scheduler's answer.
func (d *Daemon) afterRotation(ctx context.Context, app rotator.App, res rotator.Result, err error, start time.Time) error {
	name := app.Name
	now := d.o.Clock.Now()
	d.mem.result(name, res, err) // the read API answers from memory
	d.updateUsage(app.DevHub)
	switch {
	case err == nil:
		if res.Outcome == rotator.OutcomeOK {
			d.metrics.ObserveRotation(name, rotator.OutcomeOK, rotator.StepFinish, now.Sub(start))
			if res.Strategy == rotator.StrategyMetadata {
				d.metrics.ObserveDowntime(name, res.Downtime)
			}
			d.notifyApp(notify.Message{Event: notify.EventRotationSucceeded, App: name, Org: app.DevHub, RotationID: res.RotationID,
				Outcome: string(rotator.OutcomeOK), Message: fmt.Sprintf("new consumer key %s, vault version %d", res.ConsumerKey, res.VaultVersion)})
		}
		d.forgetSlot(name)
		d.setErr(name, "")
		d.metrics.SetOrphaned(name, false)
		// The engine returns what it wrote; the metadata strategy does not
		// yet, so only then is the path read back.
		if !res.RotatedAt.IsZero() {
			// Everything the listing shows from memory (learn stores it
			// whole): the new key and rotation id with the times.
			st := rotator.StoredCredentials{Current: rotator.Credentials{Key: res.ConsumerKey}, RotatedAt: res.RotatedAt,
				PreviousValidUntil: res.PreviousValidUntil, RotationID: res.RotationID}
			if res.HasPrevious {
				st.Previous.Key = res.PreviousKey
				if st.Previous.Key == "" {
					st.Previous.Key = "previous"
				}
			}
			d.learn(name, st)
		} else if st, _, rerr := d.rt.Vault.ReadCredentials(context.WithoutCancel(ctx), app.VaultPath); rerr == nil {
			d.learn(name, st)
		}
		return nil
	case errors.Is(err, rotator.ErrLocked):
		// Another holder has the app or (toggle mode) its Dev Hub's
		// secret-access setting: not a failure, look again soon.
		at := now.Add(d.lockedRetry())
		if res.NextAttemptAt.After(at) {
			at = res.NextAttemptAt
		}
		return scheduler.Retry(at)
	case errors.Is(err, rotator.ErrBackoff):
		return scheduler.Retry(res.NextAttemptAt)
	}
	d.setErr(name, err.Error())
	step := res.Step
	if step == "" {
		step = rotator.StepLock
	}
	d.metrics.ObserveRotation(name, rotator.OutcomeFailed, step, now.Sub(start))
	if isVaultErr(err, step) {
		d.metrics.VaultError(err)
	} else {
		d.metrics.SalesforceError(app.DevHub, err)
	}
	event := notify.EventRotationFailed
	switch {
	case res.Orphaned || errors.Is(err, rotator.ErrOrphaned):
		event = notify.EventRotationOrphaned
		d.metrics.SetOrphaned(name, true)
	case errors.Is(err, rotator.ErrDrift):
		event = notify.EventDriftDetected
	}
	if !errors.Is(err, rotator.ErrOrphaned) { // an orphan was announced when it happened
		d.notifyApp(notify.Message{Event: event, App: name, Org: app.DevHub, RotationID: res.RotationID, Outcome: string(rotator.OutcomeFailed), Message: err.Error()})
	}
	if res.Orphaned || errors.Is(err, rotator.ErrOrphaned) {
		return scheduler.Retry(now.Add(d.settings().RetryMax))
	}
	if !res.NextAttemptAt.IsZero() {
		return &scheduler.RetryError{At: res.NextAttemptAt, Err: err}
	}
	return err
}

// isVaultErr guesses which side an engine error came from, for the error
// counters: Vault's own sentinels, or the steps that only talk to Vault.
func isVaultErr(err error, step rotator.Step) bool {
	if errors.Is(err, vault.ErrSealed) || errors.Is(err, vault.ErrBadCredentials) || errors.Is(err, rotator.ErrAudit) {
		return true
	}
	return step == rotator.StepLock || step == rotator.StepCommit
}

// runRetire is the scheduler's retire callback: the previous pair's overlap
// has ended.
func (d *Daemon) runRetire(ctx context.Context, name, _ string) error {
	app, ok := d.app(name)
	if !ok {
		return nil
	}
	now := d.o.Clock.Now()
	res, err := d.rt.Engine.Retire(ctx, app)
	switch {
	case err == nil && res.Outcome == rotator.OutcomeSkipped && !res.NextAttemptAt.IsZero():
		return scheduler.Retry(res.NextAttemptAt) // not yet (clock skew with the writer)
	case err == nil:
		d.mem.retired(name)
		d.metrics.SetPreviousExpiry(name, time.Time{})
		d.sched.ClearRetry(name) // a run waiting for the overlap may go now (L2)
		if res.Outcome == rotator.OutcomeOK {
			d.log.Info("previous credentials retired", zap.String(rotator.LogKeyApp, name), zap.String("previous_key", res.PreviousKey))
		}
		return nil
	case errors.Is(err, rotator.ErrLocked), errors.Is(err, rotator.ErrInFlight):
		return scheduler.Retry(now.Add(d.lockedRetry()))
	case errors.Is(err, rotator.ErrOrphaned):
		return scheduler.Retry(now.Add(d.settings().RetryMax))
	}
	d.log.Warn("retire failed", zap.String(rotator.LogKeyApp, name), zap.Error(err))
	if isVaultErr(err, rotator.StepRetire) {
		d.metrics.VaultError(err)
	} else {
		d.metrics.SalesforceError(app.DevHub, err)
	}
	return err
}

// observe feeds scheduler events into logs and metrics.
func (d *Daemon) observe(ev scheduler.Event) {
	switch ev.Kind {
	case scheduler.EventDeferred:
		d.metrics.Deferred(ev.DevHub, string(ev.Reason))
		d.log.Warn("run deferred", zap.String(rotator.LogKeyApp, ev.App), zap.String(rotator.LogKeyOrg, ev.DevHub), zap.Time("until", ev.Until), zap.Error(ev.Err))
	case scheduler.EventStarted:
		d.log.Debug("run started", zap.String(rotator.LogKeyApp, ev.App), zap.String(rotator.LogKeyReason, string(ev.Reason)))
	case scheduler.EventFailed:
		var re *scheduler.RetryError
		if errors.As(ev.Err, &re) && re.Err == nil {
			break // a deliberate "look again at", not a failure
		}
		d.log.Warn("run failed", zap.String(rotator.LogKeyApp, ev.App), zap.Time("retry_at", ev.Until), zap.Error(ev.Err))
	}
	if s, ok := d.sched.State(ev.App); ok {
		d.metrics.SetNextRotation(ev.App, s.Next)
	}
}

// updateUsage publishes a Dev Hub's last seen API usage.
func (d *Daemon) updateUsage(devhub string) {
	if u, ok := d.usage(devhub); ok {
		d.metrics.SetAPIUsage(devhub, u)
	}
}

func (d *Daemon) forgetSlot(app string) {
	d.mu.Lock()
	delete(d.serving, app)
	d.mu.Unlock()
}

func (d *Daemon) setErr(app, msg string) {
	d.mu.Lock()
	if msg == "" {
		delete(d.lastErr, app)
	} else {
		d.lastErr[app] = msg
	}
	d.mu.Unlock()
}

// newNotifier builds the webhook notifier, reading each webhook's HMAC key
// (field hmac_key) from Vault. No webhooks: nil.
func (d *Daemon) newNotifier(ctx context.Context, set *wire.DaemonSettings) (*notify.Notifier, error) {
	ws := set.Webhooks
	if len(ws) == 0 {
		return nil, nil
	}
	hooks := make([]notify.Webhook, 0, len(ws))
	for _, w := range ws {
		var key rotator.Secret
		if w.SecretVaultPath != "" {
			k, err := d.rt.Vault.LoadJWTKey(ctx, w.SecretVaultPath, "hmac_key")
			if err != nil {
				return nil, fmt.Errorf("daemon: webhook %s: hmac key at %s: %w", w.Name, w.SecretVaultPath, err)
			}
			key = k
		}
		hooks = append(hooks, notify.Webhook{Name: w.Name, URL: w.URL, Secret: key, Events: w.Events, Timeout: w.Timeout, MaxAttempts: w.MaxAttempts})
	}
	n, err := notify.New(notify.Options{
		Webhooks: hooks, Client: d.o.WebhookClient, Now: d.o.Clock.Now, Backoff: d.o.WebhookBackoff,
		Logger: d.log.Named("notify"),
		Report: func(r notify.Result) {
			d.metrics.WebhookDelivery(r.Webhook, r.Err)
			if r.Err != nil {
				d.log.Warn("webhook delivery failed", zap.String("webhook", r.Webhook), zap.String("event", r.Event), zap.Int("attempts", r.Attempts), zap.Error(r.Err))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return n, nil
}

// notifyApp queues a webhook message for the app's webhooks.
func (d *Daemon) notifyApp(m notify.Message) {
	if d.notify == nil {
		return
	}
	d.mu.Lock()
	m.To = d.notifTo[m.App]
	d.mu.Unlock()
	if m.Time.IsZero() {
		m.Time = d.o.Clock.Now()
	}
	if err := d.notify.Notify(m); err != nil {
		d.log.Warn("webhook not queued", zap.String("event", m.Event), zap.String(rotator.LogKeyApp, m.App), zap.Error(err))
	}
}

// remind sends the "upcoming rotation" reminders, looking every tick.
func (d *Daemon) remind(ctx context.Context) {
	var r notify.Reminders
	tick := d.settings().Tick
	for {
		now := d.o.Clock.Now()
		next := map[string]time.Time{}
		devhub := map[string]string{}
		for _, s := range d.sched.Snapshot() {
			if !s.Next.IsZero() && s.Reason != scheduler.ReasonRetry {
				next[s.App], devhub[s.App] = s.Next, s.DevHub
			}
		}
		lead := d.settings().ReminderLead
		for _, app := range r.Due(now, next, lead) {
			d.notifyApp(notify.Message{Event: notify.EventRotationUpcoming, App: app, Org: devhub[app], Due: next[app],
				Message: "rotation planned at " + next[app].UTC().Format(time.RFC3339)})
		}
		t := d.o.Clock.NewTimer(tick)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// notifyRevoked is the previous.revoked webhook message.
func notifyRevoked(app rotator.App, res rotator.Result) notify.Message {
	return notify.Message{Event: notify.EventPreviousRevoked, App: app.Name, Org: app.DevHub, RotationID: res.RotationID,
		Outcome: string(rotator.OutcomeOK), Message: "previous consumer key " + res.PreviousKey + " revoked"}
}
