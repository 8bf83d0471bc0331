package wire

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
	"github.com/ecarotator/ecarotator/vault"
)

// DaemonSettings is what internal/daemon needs from the configuration, in
// its own terms. Only cmd/, the wiring and internal/config read the config
// (issue 14, TestImportRules): the daemon gets these settings from
// Daemon or LoadDaemon, and asks them (Runtime, VerifyAudit, Insecure,
// RestartReasons) for the few things that need the config itself.
type DaemonSettings struct {
	// Path is the config file Reload re-reads ("" when built in memory).
	Path string
	// Listen is server.listen.
	Listen string
	// Apps are the enabled apps, in config order.
	Apps []DaemonApp
	// Configured counts every configured app, the disabled ones too.
	Configured int
	// DevHubs are the scheduler's Dev Hubs.
	DevHubs []scheduler.DevHub
	// Scheduler settings: the retry pacing of a failure that named no retry
	// time, the grace for running rotations at stop, the reminder tick.
	RetryInitial, RetryMax, ShutdownGrace, Tick time.Duration
	// LockTTL is vault.lock_ttl.
	LockTTL time.Duration
	// Server is the HTTP server's settings.
	Server DaemonServer
	// Webhooks are notifications.webhooks; ReminderLead is
	// notifications.reminder_lead.
	Webhooks     []DaemonWebhook
	ReminderLead time.Duration
	// AuditFile is audit.file ("" without a file trail: no console).
	AuditFile string
	// MFA is mfa.*.
	MFA DaemonMFA

	cfg *config.Config
}

// DaemonApp is one enabled app: the engine's model, the scheduler's view
// and the webhooks it notifies (nil: all).
type DaemonApp struct {
	App    rotator.App
	Sched  scheduler.App
	Notify []string
}

// DaemonServer is server.*.
type DaemonServer struct {
	TLSCert, TLSKey              string
	ReadTimeout, ShutdownTimeout time.Duration
	AllowedHosts                 []string
}

// DaemonWebhook is one webhook; its HMAC key is read from Vault (field
// hmac_key at SecretVaultPath) when the daemon starts.
type DaemonWebhook struct {
	Name, URL, SecretVaultPath string
	Events                     []string
	Timeout                    time.Duration
	MaxAttempts                int
}

// DaemonMFA is mfa.*.
type DaemonMFA struct {
	Enabled              bool
	Issuer, SeedPrefix   string
	Skew, MaxFailures    int
	Lockout, ApprovalTTL time.Duration
}

// Daemon converts a validated config into the daemon's settings.
func Daemon(cfg *config.Config) *DaemonSettings {
	s := &DaemonSettings{
		Path: cfg.Path, Listen: cfg.Server.Listen, Configured: len(cfg.Apps),
		RetryInitial: cfg.Scheduler.RetryInitial.D(), RetryMax: cfg.Scheduler.RetryMax.D(),
		ShutdownGrace: cfg.Scheduler.ShutdownGrace.D(), Tick: cfg.Scheduler.Tick.D(),
		LockTTL: cfg.Vault.LockTTL.D(),
		Server: DaemonServer{
			TLSCert: cfg.Server.TLSCert, TLSKey: cfg.Server.TLSKey,
			ReadTimeout: cfg.Server.ReadTimeout.D(), ShutdownTimeout: cfg.Server.ShutdownTimeout.D(),
			AllowedHosts: cfg.Server.AllowedHosts,
		},
		ReminderLead: cfg.Notifications.ReminderLead.D(),
		AuditFile:    cfg.Audit.File,
		MFA: DaemonMFA{
			Enabled: cfg.MFA.Enabled, Issuer: cfg.MFA.Issuer, SeedPrefix: cfg.MFA.SeedPrefix,
			Skew: cfg.MFA.Skew, MaxFailures: cfg.MFA.MaxFailures,
			Lockout: cfg.MFA.Lockout.D(), ApprovalTTL: cfg.MFA.ApprovalTTL.D(),
		},
		cfg: cfg,
	}
	for _, a := range cfg.Apps {
		if a.Disabled {
			continue
		}
		s.Apps = append(s.Apps, DaemonApp{
			App:    App(cfg, a),
			Sched:  scheduler.App{Name: a.Name, DevHub: a.DevHub, Schedule: a.Schedule, Window: a.Window.D(), MaxAge: a.MaxAge.D()},
			Notify: a.Notify,
		})
	}
	for _, h := range cfg.DevHubs {
		s.DevHubs = append(s.DevHubs, scheduler.DevHub{Name: h.Name, Concurrency: h.Concurrency, APIBudget: h.APIBudget})
	}
	for _, w := range cfg.Notifications.Webhooks {
		s.Webhooks = append(s.Webhooks, DaemonWebhook{Name: w.Name, URL: w.URL, SecretVaultPath: w.SecretVaultPath,
			Events: w.Events, Timeout: w.Timeout.D(), MaxAttempts: w.MaxAttempts})
	}
	return s
}

// LoadDaemon loads and validates the config file at path and converts it.
func LoadDaemon(path string, getenv func(string) string) (*DaemonSettings, error) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return nil, err
	}
	return Daemon(cfg), nil
}

// Runtime wires the adapters of this config (New).
func (s *DaemonSettings) Runtime(ctx context.Context, log *zap.Logger, o RuntimeOptions) (*Runtime, error) {
	if s.cfg == nil {
		return nil, errors.New("wire: daemon settings not built by wire.Daemon")
	}
	return New(ctx, s.cfg, log, o)
}

// Insecure names the insecure settings in effect when the API listens on
// listen ("-": no server): Vault TLS verification off, and plain HTTP
// outside loopback. The daemon logs them, audits them and shows them on
// /readyz.
func (s *DaemonSettings) Insecure(listen string) []string {
	var out []string
	if s.cfg != nil && s.cfg.Vault.TLS.InsecureSkipVerify {
		out = append(out, "vault.tls.insecure_skip_verify: Vault's certificate is not verified")
	}
	if listen != "" && listen != "-" && s.Server.TLSCert == "" && !config.LoopbackListen(listen) {
		out = append(out, fmt.Sprintf("server.allow_plaintext: the API listens on %s without TLS", listen))
	}
	return out
}

// RestartReasons says why next cannot replace s in a running daemon: only
// the apps and the scheduler's timings reload in place. Vault, the Dev
// Hubs, MFA (the gate and approvals are built at start; a reload that
// changed them would be reported as applied while the old settings keep
// deciding, review M3), the audit trail, the server and the webhooks need a
// restart.
func (s *DaemonSettings) RestartReasons(next *DaemonSettings) []string {
	cur, cfg := s.cfg, next.cfg
	if cur == nil || cfg == nil {
		return []string{"settings not built by wire.Daemon"}
	}
	var out []string
	if !reflect.DeepEqual(cfg.Vault, cur.Vault) {
		out = append(out, "vault settings changed")
	}
	if !reflect.DeepEqual(cfg.DevHubs, cur.DevHubs) {
		out = append(out, "devhubs changed")
	}
	if !reflect.DeepEqual(cfg.MFA, cur.MFA) {
		out = append(out, "mfa settings changed (the MFA gate and approvals are built at start)")
	}
	if !reflect.DeepEqual(cfg.Audit, cur.Audit) || !reflect.DeepEqual(cfg.Server, cur.Server) ||
		!reflect.DeepEqual(cfg.Notifications.Webhooks, cur.Notifications.Webhooks) {
		out = append(out, "audit, server or webhook settings changed")
	}
	return out
}

// VerifyAudit verifies the audit file with vc's rights (an auditor's
// token: the console), against the trail's anchor in Vault.
func (s *DaemonSettings) VerifyAudit(ctx context.Context, vc *vault.Client) (*audit.VerifyResult, error) {
	cfg := s.cfg
	if cfg == nil {
		return nil, errors.New("audit verify: settings not built by wire.Daemon")
	}
	mac, err := AuditMAC(ctx, vc, cfg.Vault.KVMount, cfg.Audit.MAC, false)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	sig, err := AuditSigVerifier(ctx, vc, cfg.Audit.MAC, mac)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	id := cfg.Audit.AnchorID
	if id == "" {
		id = audit.DefaultAnchorID(cfg.Audit.File)
	}
	anchor, _, err := audit.ReadAnchor(ctx, vc, cfg.Vault.KVMount, cfg.Audit.Checkpoints, id)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	if anchor == nil {
		return nil, errors.New("audit verify: the trail is not anchored yet")
	}
	return audit.VerifyFile(ctx, cfg.Audit.File, audit.VerifyOptions{MAC: mac, Sig: sig, Anchor: anchor})
}
