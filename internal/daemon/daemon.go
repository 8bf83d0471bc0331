// Package daemon is `ecarotator run`: the scheduler, the HTTP server
// (probes, metrics, JSON API), webhooks and Vault token renewal around one
// rotation engine, as a value a test can embed.
//
// Lifecycle: New wires the adapters (logs in to Vault, loads Dev Hub keys
// and webhook HMAC keys, opens the audit trail), plans every app and binds
// the listen address; Run resumes journaled rotations, reads each app's
// last rotation from Vault, and serves until its context ends; then no new
// run starts, running ones get the scheduler's shutdown grace to reach a
// journal boundary, and everything New opened is closed in reverse order.
//
// Several replicas may run against one Vault. The engine's lease makes one
// of them rotate an app at a time; a per-app "slot" lease held around the
// Vault re-read and the rotation makes each cron slot rotate exactly once
// (see Decide).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/internal/metrics"
	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/notify"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
	"github.com/ecarotator/ecarotator/vault"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// OperatorGate checks an operator's second factor before an action outside
// the schedule (rotate now, revoke the previous pair). internal/mfa's
// *Service satisfies it; a nil gate leaves the Vault capability check as the
// only guard.
type OperatorGate interface {
	Verify(ctx context.Context, operator, code, action, app string) error
}

// Options configure a Daemon. Settings is required; the rest have
// defaults.
type Options struct {
	// Settings are the daemon's settings to start with, from a validated
	// config (wire.Daemon; the daemon never reads the config itself).
	Settings *wire.DaemonSettings
	// ConfigPath is re-read by Reload (default Settings.Path).
	ConfigPath string
	// LoadSettings reads and validates the config for Reload (default
	// wire.LoadDaemon(ConfigPath, os.Getenv)).
	LoadSettings func(path string) (*wire.DaemonSettings, error)
	Logger       *zap.Logger
	// Registerer receives the daemon's collectors and Gatherer serves
	// /metrics (default: one fresh registry for both).
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Clock drives the scheduler and the daemon's decisions (default the
	// system clock); it is also the engine's clock unless
	// RuntimeOptions.Clock is set.
	Clock rotator.Clock
	// RuntimeOptions are passed to wire.New (holder, crash hook, clients).
	RuntimeOptions wire.RuntimeOptions
	// Listen overrides server.listen ("127.0.0.1:0" in tests; "-" disables
	// the HTTP server).
	Listen string
	// Gate, when set, is called before every operator action.
	Gate OperatorGate
	// WebhookClient sends webhooks (default: notify's client).
	WebhookClient *http.Client
	// WebhookBackoff paces webhook retries (default notify.DefaultBackoff).
	WebhookBackoff rotator.BackoffFunc
	// StartTimeout bounds New's wiring (Vault login, key loads; default 1m).
	StartTimeout time.Duration
}

func (o *Options) defaults() error {
	if o.Settings == nil {
		return errors.New("daemon: options: settings are required")
	}
	if o.ConfigPath == "" {
		o.ConfigPath = o.Settings.Path
	}
	if o.LoadSettings == nil {
		o.LoadSettings = func(p string) (*wire.DaemonSettings, error) { return wire.LoadDaemon(p, os.Getenv) }
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registerer == nil && o.Gatherer == nil {
		reg := prometheus.NewRegistry()
		o.Registerer, o.Gatherer = reg, reg
	}
	if o.Registerer == nil || o.Gatherer == nil {
		return errors.New("daemon: options: set both registerer and gatherer, or neither")
	}
	if o.Clock == nil {
		o.Clock = rotator.SystemClock{}
	}
	if o.RuntimeOptions.Clock == nil {
		o.RuntimeOptions.Clock = o.Clock
	}
	if o.RuntimeOptions.Holder == "" {
		host, _ := os.Hostname()
		o.RuntimeOptions.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.Listen == "" {
		o.Listen = o.Settings.Listen
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = time.Minute
	}
	return nil
}

// Daemon is one running ecarotator replica.
type Daemon struct {
	o       Options
	log     *zap.Logger
	rt      *wire.Runtime
	sched   *scheduler.Scheduler
	srv     *server.Server // nil when disabled
	metrics *metrics.Metrics
	notify  *notify.Notifier // nil without webhooks
	mfa     *mfa.Service     // set by EnableMFA; nil: no reveal over the API

	mu      sync.Mutex
	set     *wire.DaemonSettings
	apps    map[string]rotator.App
	notifTo map[string][]string  // app → webhook names (nil: all)
	serving map[string]servedRun // app → the run a retry still serves
	lastErr map[string]string    // app → last run's error, for status
	names   []string             // enabled apps in config order (read-only once set)
	ready   bool

	mem    *memory // per-app state the read API answers from
	histMu sync.Mutex
	hist   map[string]historyEntry // app → cached Vault version history

	ops     sync.WaitGroup // operator actions running in the background
	opsCtx  context.Context
	opsStop context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// New wires the daemon. The caller must call Run (or Close) to release
// what it opened.
func New(o Options) (*Daemon, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	set := o.Settings
	d := &Daemon{o: o, log: o.Logger, set: set, serving: map[string]servedRun{}, lastErr: map[string]string{},
		mem: newMemory(), hist: map[string]historyEntry{}}
	d.opsCtx, d.opsStop = context.WithCancel(context.Background())
	m, err := metrics.New(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("daemon: metrics: %w", err)
	}
	d.metrics = m

	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()
	ro := o.RuntimeOptions
	prev := ro.ObserveAudit
	ro.ObserveAudit = func(ev rotator.Event, err error) {
		d.observeAudit(ev, err)
		if prev != nil {
			prev(ev, err)
		}
	}
	rt, err := set.Runtime(ctx, o.Logger, ro)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.rt = rt
	fail := func(err error) (*Daemon, error) {
		_ = d.Close()
		return nil, err
	}
	sapps := schedApps(set)
	d.setApps(set)

	if d.notify, err = d.newNotifier(ctx, set); err != nil {
		return fail(err)
	}

	d.sched, err = scheduler.New(scheduler.Options{
		Apps:          sapps,
		DevHubs:       set.DevHubs,
		Run:           d.runRotation,
		Retire:        d.runRetire,
		Usage:         d.usage,
		Clock:         o.Clock,
		Backoff:       rotator.Backoff{Base: set.RetryInitial, Max: set.RetryMax, Attempts: rotator.Forever}.NextAttempt,
		ShutdownGrace: set.ShutdownGrace,
		Observe:       d.observe,
	})
	if err != nil {
		return fail(fmt.Errorf("daemon: %w", err))
	}

	if o.Listen != "-" {
		d.srv, err = server.New(server.Options{
			Addr: o.Listen, TLSCert: set.Server.TLSCert, TLSKey: set.Server.TLSKey,
			Logger:   o.Logger.Named("http"),
			Gatherer: o.Gatherer,
			Ready: []server.ReadyCheck{
				{Name: "vault", Check: d.vaultReady},
				{Name: "config", Check: d.configReady},
			},
			Status:     (*api)(d),
			Controller: (*api)(d),
			Authorizer: &server.VaultAuthorizer{
				Caps: rt.Vault, ControlPath: rt.Vault.ControlPath, Identity: rt.Vault,
				BadToken: []error{vault.ErrBadCredentials},
			},
			ReadTimeout:     set.Server.ReadTimeout,
			ShutdownTimeout: set.Server.ShutdownTimeout,
			AllowedHosts:    set.Server.AllowedHosts,
			Insecure:        set.Insecure(o.Listen),
			Info:            d.effectiveInfo,
			UI:              d.consoleUI(),
		})
		if err != nil {
			return fail(fmt.Errorf("daemon: %w", err))
		}
		if err := d.srv.Listen(); err != nil {
			return fail(fmt.Errorf("daemon: listen %s: %w", o.Listen, err))
		}
	}
	return d, nil
}

// Addr is the HTTP server's bound address (nil when it is disabled).
func (d *Daemon) Addr() net.Addr {
	if d.srv == nil {
		return nil
	}
	return d.srv.Addr()
}

// Runtime exposes the wired adapters (tests read Vault through it).
func (d *Daemon) Runtime() *wire.Runtime { return d.rt }

// Scheduler exposes the scheduler (status and tests).
func (d *Daemon) Scheduler() *scheduler.Scheduler { return d.sched }

// Run serves until ctx ends, then shuts down within the configured bounds.
// A normal stop returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	d.record(ctx, rotator.EventDaemonStarted, map[string]string{"holder": d.o.RuntimeOptions.Holder, "apps": fmt.Sprint(len(d.appList())),
		"mfa_enabled": fmt.Sprint(d.mfaEnabled())})
	d.warnInsecure(ctx)
	d.log.Info("daemon starting", zap.Int("apps", len(d.appList())), zap.String("holder", d.o.RuntimeOptions.Holder))

	// Before the first decision: the open journals (one LIST, then a read
	// of each open one), which resume finishes. Each app's last rotation
	// (max age, catch-up) and open overlap (retire) is read after, in the
	// background with bounded parallelism: until then an app is planned
	// from its schedule alone, and a run re-reads Vault before it decides
	// (Decide), so a late seed costs no correctness. A start with 10,000
	// apps is ready after one LIST instead of 10,000 reads (issue 14).
	journaled := d.seedJournals(ctx)
	// Parsing a config of thousands of apps leaves tens of MiB of garbage;
	// hand it back to the OS now rather than minutes later (a resident
	// 10,000-app daemon stays under 48 MiB, issue 14).
	debug.FreeOSMemory()
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		d.seedPaths(gctx)
		debug.FreeOSMemory() // the seed's garbage too
		return nil
	})
	g.Go(func() error { return d.sched.Run(gctx) })
	if d.srv != nil {
		g.Go(func() error { return d.srv.Run(gctx) })
	}
	g.Go(func() error {
		// Token renewal failing is not a reason to stop rotating what can
		// still be rotated; readiness reports it.
		if err := d.rt.Vault.Run(gctx); err != nil && gctx.Err() == nil {
			d.log.Error("vault token renewal stopped", zap.Error(err))
			d.metrics.VaultError(err)
		}
		return nil
	})
	g.Go(func() error { d.resume(gctx, journaled); return nil })
	if d.notify != nil && d.set.ReminderLead > 0 {
		g.Go(func() error { d.remind(gctx); return nil })
	}
	d.log.Info("daemon started")
	err := g.Wait()
	if errors.Is(err, scheduler.ErrGraceExceeded) {
		d.log.Warn("shutdown grace exceeded; running rotations were cancelled at their next journal boundary")
		err = nil
	}
	d.stopOps()
	d.record(context.WithoutCancel(ctx), rotator.EventDaemonStopped, map[string]string{"holder": d.o.RuntimeOptions.Holder})
	d.log.Info("daemon stopped")
	return err
}

// stopOps waits for background operator actions for the shutdown grace,
// then cancels them and waits for them to return.
func (d *Daemon) stopOps() {
	done := make(chan struct{})
	go func() { d.ops.Wait(); close(done) }()
	t := d.o.Clock.NewTimer(d.set.ShutdownGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C():
		d.opsStop()
		<-done
	}
}

// Close releases what New opened (the notifier's queue is drained for at
// most the server's shutdown timeout). It is idempotent; Run calls it.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		d.opsStop()
		var errs []error
		if d.notify != nil {
			ctx, cancel := context.WithTimeout(context.Background(), d.set.Server.ShutdownTimeout)
			errs = append(errs, d.notify.Close(ctx))
			cancel()
		}
		if d.rt != nil {
			errs = append(errs, d.rt.Close())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// settings returns the running settings; Reload replaces them while jobs,
// reminders and handlers run, so every reader outside Reload goes through
// here (under d.mu).
func (d *Daemon) settings() *wire.DaemonSettings {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.set
}

// Reload re-reads the config file (SIGHUP). A config that fails to load or
// validate, or that changes what needs a restart (Vault, Dev Hubs, audit,
// server, webhooks), is rejected: the running config stays and the error
// says why. Otherwise the app set is replaced in the scheduler.
func (d *Daemon) Reload() error {
	ctx := context.Background()
	set, err := d.o.LoadSettings(d.o.ConfigPath)
	if err == nil {
		err = d.reloadable(set)
	}
	if err != nil {
		d.log.Error("config reload rejected; keeping the running config", zap.Error(err))
		d.record(ctx, rotator.EventConfigRejected, map[string]string{"path": d.o.ConfigPath, "error": err.Error()})
		return fmt.Errorf("reload %s: %w", d.o.ConfigPath, err)
	}
	if err := d.sched.Reload(schedApps(set)); err != nil {
		d.record(ctx, rotator.EventConfigRejected, map[string]string{"path": d.o.ConfigPath, "error": err.Error()})
		return fmt.Errorf("reload %s: %w", d.o.ConfigPath, err)
	}
	old := d.appList()
	d.mu.Lock()
	d.set = set
	d.mu.Unlock()
	d.setApps(set)
	for _, a := range old {
		if _, ok := d.app(a.Name); !ok {
			d.metrics.ForgetApp(a.Name)
		}
	}
	// Apps that are new to the scheduler learn their last rotation, in the
	// background (owned like an operator action: waited for at stop).
	d.ops.Add(1)
	go func() {
		defer d.ops.Done()
		d.seedJournals(d.opsCtx)
		d.seedPaths(d.opsCtx)
	}()
	d.log.Info("config reloaded", zap.Int("apps", set.Configured))
	d.record(ctx, rotator.EventConfigReloaded, map[string]string{"path": d.o.ConfigPath, "apps": fmt.Sprint(set.Configured)})
	return nil
}

// ErrRestartNeeded: a reloaded config changes settings that only a restart
// applies (Vault, Dev Hubs, MFA, audit, server, webhooks); the running
// config stays.
var ErrRestartNeeded = errors.New("restart needed")

// reloadable reports why set cannot replace the running settings in place.
func (d *Daemon) reloadable(set *wire.DaemonSettings) error {
	var probs []error
	for _, why := range d.settings().RestartReasons(set) {
		probs = append(probs, fmt.Errorf("%w: %s", ErrRestartNeeded, why))
	}
	return errors.Join(probs...)
}

func (d *Daemon) setApps(set *wire.DaemonSettings) {
	apps := make(map[string]rotator.App, len(set.Apps))
	to := make(map[string][]string, len(set.Apps))
	names := make([]string, 0, len(set.Apps))
	for _, a := range set.Apps {
		apps[a.App.Name] = a.App
		to[a.App.Name] = a.Notify
		d.metrics.SetMaxAge(a.App.Name, a.App.MaxAge)
		names = append(names, a.App.Name)
	}
	// The map is now the daemon's one copy of each app's model, and the
	// scheduler has its own view: the settings drop their per-app list (a
	// 10,000-app daemon would otherwise hold every model twice, some
	// 6 MiB, and a bigger live heap is a bigger garbage allowance under
	// load at the default GOGC).
	set.Apps = nil
	d.mu.Lock()
	d.apps, d.notifTo, d.names = apps, to, names
	d.mu.Unlock()
	d.mem.keep(apps)
}

// app returns the engine model of a configured, enabled app.
func (d *Daemon) app(name string) (rotator.App, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.apps[name]
	return a, ok
}

// appList returns the enabled apps in config order.
func (d *Daemon) appList() []rotator.App {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]rotator.App, 0, len(d.apps))
	for _, name := range d.names {
		if x, ok := d.apps[name]; ok {
			out = append(out, x)
		}
	}
	return out
}

func schedApps(set *wire.DaemonSettings) []scheduler.App {
	out := make([]scheduler.App, 0, len(set.Apps))
	for _, a := range set.Apps {
		out = append(out, a.Sched)
	}
	return out
}

// usage is the scheduler's view of a Dev Hub's API consumption.
func (d *Daemon) usage(devhub string) (rotator.APIUsage, bool) {
	iss, ok := d.rt.Issuers[devhub]
	if !ok {
		return rotator.APIUsage{}, false
	}
	return iss.Usage()
}

// seedParallel bounds the Vault reads of the start-up seed.
const seedParallel = 16

// seedJournals lists the open journals in one Vault LIST and reads each
// open one into memory; it returns the apps that have a journal. When the
// LIST fails, every app's journal is read (bounded parallelism).
func (d *Daemon) seedJournals(ctx context.Context) []string {
	apps := d.appList()
	open, listErr := d.rt.Vault.OpenJournals(ctx)
	if listErr != nil {
		d.log.Warn("list journals; reading each app's instead", zap.Error(listErr))
	}
	var (
		mu        sync.Mutex
		journaled []string
	)
	d.each(ctx, apps, func(a rotator.App) {
		if listErr == nil && !open[a.Name] {
			return
		}
		j, _, err := d.rt.Vault.Load(ctx, a.Name)
		if err != nil {
			return
		}
		d.mem.journaled(a.Name, &j)
		mu.Lock()
		journaled = append(journaled, a.Name)
		mu.Unlock()
	})
	return journaled
}

// seedPaths reads every app's path from Vault with bounded parallelism and
// tells the scheduler the last rotation and the end of an open overlap.
func (d *Daemon) seedPaths(ctx context.Context) {
	start := time.Now()
	apps := d.appList()
	defer func() {
		if ctx.Err() == nil {
			d.log.Info("app paths read", zap.Int("apps", len(apps)), zap.Duration("took", time.Since(start)))
		}
	}()
	d.each(ctx, apps, func(a rotator.App) {
		if m, ok := d.mem.get(a.Name); ok && m.seeded {
			return // a rotation or an earlier seed got there first
		}
		st, meta, err := d.rt.Vault.ReadCredentials(ctx, a.VaultPath)
		if err != nil {
			if errors.Is(err, rotator.ErrNotFound) {
				d.mem.absent(a.Name)
			} else if ctx.Err() == nil {
				d.log.Warn("read app path at start", zap.String(rotator.LogKeyApp, a.Name), zap.Error(err))
				d.metrics.VaultError(err)
			}
			return
		}
		d.mem.stored(a.Name, st, meta.Version)
		d.learn(a.Name, st)
	})
}

// each runs fn for every app with at most seedParallel at once, stopping
// early when ctx ends.
func (d *Daemon) each(ctx context.Context, apps []rotator.App, fn func(rotator.App)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, seedParallel)
	for _, a := range apps {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(a)
		}()
	}
	wg.Wait()
}

// learn folds what Vault holds for an app into the scheduler and metrics.
func (d *Daemon) learn(app string, st rotator.StoredCredentials) {
	d.mem.stored(app, st, 0)
	if !st.RotatedAt.IsZero() {
		d.sched.Rotated(app, st.RotatedAt)
		d.metrics.SetLastSuccess(app, st.RotatedAt)
	}
	d.metrics.SetPreviousExpiry(app, st.PreviousValidUntil)
	if !st.Previous.IsZero() {
		at := st.PreviousValidUntil
		if at.IsZero() {
			at = d.o.Clock.Now()
		}
		_ = d.sched.ScheduleRetire(app, at)
	}
	if s, ok := d.sched.State(app); ok {
		d.metrics.SetNextRotation(app, s.Next)
	}
}

// resume finishes every journaled rotation found at start (this also
// restores a secret-access setting a crash left open, I5).
func (d *Daemon) resume(ctx context.Context, apps []string) {
	for _, name := range apps {
		app, ok := d.app(name)
		if !ok || ctx.Err() != nil {
			continue
		}
		start := d.o.Clock.Now()
		res, err := d.rt.Engine.Resume(ctx, app)
		if res.Outcome == rotator.OutcomeSkipped && err == nil {
			continue
		}
		d.log.Info("resumed journal at start", zap.String(rotator.LogKeyApp, name), zap.String("outcome", string(res.Outcome)), zap.Error(err))
		// "Not yet" (backoff, a dead replica's lease still live) becomes a
		// planned retry, so the journal is finished without waiting for the
		// app's next slot.
		var re *scheduler.RetryError
		if rerr := d.afterRotation(ctx, app, res, err, start); errors.As(rerr, &re) {
			_ = d.sched.RunAt(name, re.At)
		}
	}
}

// record writes a daemon-level audit event; a failure is logged (the
// daemon's own events never block rotations).
func (d *Daemon) record(ctx context.Context, t rotator.EventType, details map[string]string) {
	if d.rt.Audit == nil {
		return
	}
	ev := rotator.Event{Type: t, Time: d.o.Clock.Now(), Actor: rotator.Actor{Kind: rotator.ActorSystem, Identity: d.o.RuntimeOptions.Holder}, Outcome: rotator.OutcomeOK, Details: details}
	if t == rotator.EventConfigRejected {
		ev.Outcome = rotator.OutcomeFailed
	}
	if err := d.rt.Audit.Record(ctx, ev); err != nil {
		d.metrics.AuditFailure()
		d.log.Error("audit record failed", zap.String("event", string(t)), zap.Error(err))
	}
}

// observeAudit feeds the engine's audit events into metrics: records that
// were not durable, and the secret-access setting opened and restored.
func (d *Daemon) observeAudit(ev rotator.Event, err error) {
	if err != nil {
		d.metrics.AuditFailure()
	}
	if ev.Org == "" || ev.Outcome != rotator.OutcomeOK {
		return
	}
	switch ev.Type {
	case rotator.EventSecretAccessOpened:
		d.metrics.SetSecretAccessOpen(ev.Org, true)
	case rotator.EventSecretAccessRestored:
		d.metrics.SetSecretAccessOpen(ev.Org, false)
	}
}

func (d *Daemon) vaultReady(ctx context.Context) error {
	if err := d.rt.Vault.CheckToken(ctx); err != nil {
		return fmt.Errorf("vault token: %w", err)
	}
	return nil
}

func (d *Daemon) configReady(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set == nil || !d.ready {
		return errors.New("config not loaded yet")
	}
	return nil
}
