package wire

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/vault"
	"go.uber.org/zap"
)

// RuntimeOptions tune New.
type RuntimeOptions struct {
	// Holder identifies this process in leases (default host:pid).
	Holder string
	// Hook is passed to the engine (crash injection in tests).
	Hook func(point string) error
	// NoAudit skips opening the audit trail (read-only commands: plan).
	NoAudit bool
	// Clock is the engine's clock (default the system clock); tests pass a
	// fake to move through overlap periods.
	Clock rotator.Clock
	// Sleep replaces the engine's wait between verify retries (tests).
	Sleep func(ctx context.Context, d time.Duration) error
	// ObserveAudit, when set, sees every event the engine records and the
	// error Record returned (nil when durable): the daemon's metrics.
	ObserveAudit func(ev rotator.Event, err error)
	// HTTPClient, when set, carries every Vault and Salesforce request
	// (benchmarks count round trips with it). Plain-HTTP loopback only: the
	// Vault TLS settings are not applied to a caller's client.
	HTTPClient *http.Client
}

// Runtime is ecarotator's wired object graph: Vault, one Salesforce client
// per Dev Hub, the verifier, the audit trail and the engine.
type Runtime struct {
	Cfg      *config.Config
	Vault    *vault.Client
	Issuers  map[string]*salesforce.Client
	Verifier *salesforce.Verifier
	Audit    *audit.Log // nil with NoAudit
	Engine   *rotator.Engine

	log *zap.Logger
}

// New logs in to Vault, loads each Dev Hub's key material from it, opens
// the audit trail and builds the engine.
func New(ctx context.Context, cfg *config.Config, log *zap.Logger, o RuntimeOptions) (*Runtime, error) {
	vo, err := VaultOptions(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	vo.HTTPClient = o.HTTPClient
	vc, err := vault.New(ctx, vo)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	r := &Runtime{Cfg: cfg, Vault: vc, Issuers: map[string]*salesforce.Client{}, Verifier: Verifier(log, o.HTTPClient), log: log}
	issuers := map[string]rotator.Issuer{}
	for _, hub := range cfg.DevHubs {
		sc, err := DevHub(ctx, hub, vc, log, o.HTTPClient)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.Issuers[hub.Name] = sc
		issuers[hub.Name] = sc
	}
	var auditLog rotator.AuditLog = discardAudit{}
	if !o.NoAudit {
		al, err := AuditLog(ctx, cfg, vc, log)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.Audit = al
		auditLog = al
		if !cfg.Audit.AuditFailClosed() {
			auditLog = audit.FailOpen(al, log)
		}
	}
	if o.ObserveAudit != nil {
		auditLog = observedAudit{AuditLog: auditLog, observe: o.ObserveAudit}
	}
	holder := o.Holder
	if holder == "" {
		host, _ := os.Hostname()
		holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	var clock rotator.Clock = rotator.SystemClock{}
	if o.Clock != nil {
		clock = o.Clock
	}
	eng, err := rotator.NewEngine(rotator.Options{
		Issuers:     issuers,
		Verifier:    r.Verifier,
		Store:       vc,
		Journal:     vc,
		Locker:      vc,
		Audit:       auditLog,
		Clock:       clock,
		Sleep:       o.Sleep,
		Logger:      log.Named("engine"),
		Backoff:     rotator.Backoff{Base: 2 * time.Second, Max: 5 * time.Minute, Attempts: 30, Jitter: 0.5, Rand: rand.Float64}.NextAttempt,
		Holder:      holder,
		LockTTL:     cfg.Vault.LockTTL.D(),
		OrphanAfter: cfg.Scheduler.OrphanAfter,
		Hook:        o.Hook,
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	r.Engine = eng
	return r, nil
}

// AuditLog opens the audit trail writer the config describes: records
// MAC'd with the transit key (or, in lab mode, a KV key created on first
// use), the chain head signed with the transit ed25519 key and anchored in
// Vault. The daemon and every CLI command that audits open it the same
// way; they share the file under its lock. It fails (and the daemon with
// it) when the file does not reach its anchor: an *audit.AnchorError that
// names `ecarotator audit repair`.
func AuditLog(ctx context.Context, cfg *config.Config, vc *vault.Client, log *zap.Logger) (*audit.Log, error) {
	return AuditLogWith(ctx, cfg, vc, log, audit.Options{})
}

// AuditLogWith is AuditLog with the repair switches and actor of extra
// (`ecarotator audit repair`).
func AuditLogWith(ctx context.Context, cfg *config.Config, vc *vault.Client, log *zap.Logger, extra audit.Options) (*audit.Log, error) {
	a := cfg.Audit
	mac, err := AuditMAC(ctx, vc, cfg.Vault.KVMount, a.MAC, true)
	if err != nil {
		return nil, fmt.Errorf("audit: MAC key: %w", err)
	}
	o := audit.Options{
		File:           a.File,
		MaxFileBytes:   a.MaxFileBytes,
		MAC:            mac,
		Signer:         AuditSigner(vc, a.MAC, mac),
		Vault:          vc,
		KVMount:        cfg.Vault.KVMount,
		CheckpointPath: a.Checkpoints,
		AnchorID:       a.AnchorID,
		RepairTornTail: extra.RepairTornTail,
		RepairAnchor:   extra.RepairAnchor,
		RepairActor:    extra.RepairActor,
		Logger:         log.Named("audit"),
	}
	if AuditLabMode(a.MAC) {
		log.Warn("audit: lab mode (audit.mac.kv_path): records and anchors use one symmetric KV key; whoever can read it can forge the trail. Use transit in production.")
	}
	if a.VaultSink.Enabled {
		o.SinkPath = a.VaultSink.Path
	}
	return audit.New(ctx, o)
}

// App converts one configured app into the engine's model.
func App(cfg *config.Config, a config.App) rotator.App {
	hub, _ := cfg.DevHubByName(a.DevHub)
	return rotator.App{
		Name:             a.Name,
		DevHub:           a.DevHub,
		ECA:              a.ECA,
		ConsumerID:       a.ConsumerID,
		ECAID:            a.ECAID,
		VaultPath:        a.VaultPath,
		TokenURL:         a.TokenURL,
		VerifyURLs:       append([]string(nil), a.Verify.TokenURLs...),
		VerifyTimeout:    a.Verify.Timeout.D(),
		Overlap:          rotator.Overlap{Policy: rotator.OverlapPolicy(a.Overlap.Policy), After: a.Overlap.After.D()},
		MaxAge:           a.MaxAge.D(),
		Schedule:         a.Schedule,
		Window:           a.Window.D(),
		Adopt:            a.Adopt,
		SecretAccessMode: rotator.SecretAccessMode(hub.SecretAccess),
		OwnECA:           hub.Auth.OwnECA,
		Strategy:         rotator.Strategy(a.Strategy),
		RotateKey:        a.RotateKey,
		SecretRead:       rotator.SecretRead(a.SecretRead),
		MetadataOverlap:  a.MetadataOverlap.D(),
		DeployTimeout:    a.DeployTimeout.D(),
	}
}

// App returns the engine model of the configured app name.
func (r *Runtime) App(name string) (rotator.App, error) {
	a, ok := r.Cfg.AppByName(name)
	if !ok {
		return rotator.App{}, fmt.Errorf("unknown app %q", name)
	}
	return App(r.Cfg, a), nil
}

// Apps returns every enabled app, in config order.
func (r *Runtime) Apps() []rotator.App {
	out := make([]rotator.App, 0, len(r.Cfg.Apps))
	for _, a := range r.Cfg.Apps {
		if !a.Disabled {
			out = append(out, App(r.Cfg, a))
		}
	}
	return out
}

// Close releases what New opened, in reverse order.
func (r *Runtime) Close() error {
	var errs []error
	if r.Audit != nil {
		errs = append(errs, r.Audit.Close())
	}
	if r.Vault != nil {
		errs = append(errs, r.Vault.Close())
	}
	return errors.Join(errs...)
}

// discardAudit is used by read-only commands that never record events.
type discardAudit struct{}

func (discardAudit) Record(context.Context, rotator.Event) error { return nil }
func (discardAudit) Fingerprint(rotator.Secret) string           { return "" }

// observedAudit passes every Record to the log, then to observe.
type observedAudit struct {
	rotator.AuditLog
	observe func(rotator.Event, error)
}

func (a observedAudit) Record(ctx context.Context, e rotator.Event) error {
	err := a.AuditLog.Record(ctx, e)
	a.observe(e, err)
	return err
}
