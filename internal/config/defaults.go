package config

import (
	"path"
	"strings"
	"time"
)

// Defaults used where the file is silent.
const (
	DefaultVaultAddress    = "https://127.0.0.1:8200"
	DefaultKVMount         = "secret"
	DefaultAppPrefix       = "salesforce"
	DefaultStatePrefix     = "ecarotator/state"
	DefaultLockPrefix      = "ecarotator/locks"
	DefaultControlPrefix   = "ecarotator/control"
	DefaultAPIVersion      = "65.0"
	DefaultLoginURL        = "https://login.salesforce.com"
	DefaultListen          = "127.0.0.1:9464"
	DefaultK8sJWTFile      = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultAuditFile       = "ecarotator-audit.log"
	DefaultAuditSinkPath   = "ecarotator/audit"
	DefaultCheckpointPath  = "ecarotator/audit/checkpoint"
	DefaultMFASeedPrefix   = "ecarotator/mfa"
	DefaultAuditTransitKey = "ecarotator-audit"
	DefaultAuditSignKey    = "ecarotator-audit-sign"
	DefaultSchedule        = "@weekly"
)

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if *p == 0 {
		*p = Duration(v)
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func (c *Config) applyDefaults() {
	v := &c.Vault
	setStr(&v.Address, DefaultVaultAddress)
	setDur(&v.Timeout, 30*time.Second)
	setStr(&v.KVMount, DefaultKVMount)
	setStr(&v.AppPrefix, DefaultAppPrefix)
	setStr(&v.StatePrefix, DefaultStatePrefix)
	setStr(&v.LockPrefix, DefaultLockPrefix)
	setStr(&v.ControlPrefix, DefaultControlPrefix)
	setInt(&v.MaxVersions, 10)
	setDur(&v.LockTTL, 2*time.Minute)
	setStr(&v.Auth.Method, "token")
	setStr(&v.Auth.AppRole.Mount, "approle")
	setStr(&v.Auth.Kubernetes.Mount, "kubernetes")
	setStr(&v.Auth.JWT.Mount, "jwt")
	if v.Auth.Method == "kubernetes" {
		setStr(&v.Auth.Kubernetes.JWTFile, DefaultK8sJWTFile)
	}

	for i := range c.DevHubs {
		d := &c.DevHubs[i]
		setStr(&d.LoginURL, DefaultLoginURL)
		setStr(&d.APIVersion, DefaultAPIVersion)
		setStr(&d.SecretAccess, "toggle")
		setInt(&d.Concurrency, 2)
		if d.APIBudget == 0 {
			d.APIBudget = 0.8
		}
		setDur(&d.Timeout, 30*time.Second)
		setStr(&d.Auth.Method, "jwt")
		if d.Auth.Method == "jwt" {
			setStr(&d.Auth.VaultField, "private_key")
			setStr(&d.Auth.Audience, "auto")
		} else {
			setStr(&d.Auth.VaultField, "client_secret")
		}
	}

	for i := range c.Apps {
		a := &c.Apps[i]
		setStr(&a.VaultPath, path.Join(v.AppPrefix, a.Name))
		setStr(&a.Schedule, DefaultSchedule)
		setDur(&a.Window, time.Hour)
		setDur(&a.MaxAge, 30*24*time.Hour)
		setStr(&a.Overlap.Policy, OverlapSalesforceExpiry)
		setDur(&a.Verify.Timeout, 10*time.Minute)
		setStr(&a.Strategy, StrategyAuto)
		setStr(&a.SecretRead, SecretReadAuto)
		setDur(&a.DeployTimeout, 10*time.Minute)
		if len(a.Verify.TokenURLs) == 0 {
			if d, ok := c.DevHubByName(a.DevHub); ok && d.MyDomainURL != "" {
				a.Verify.TokenURLs = []string{strings.TrimRight(d.MyDomainURL, "/") + "/services/oauth2/token"}
			}
		}
		if a.TokenURL == "" && len(a.Verify.TokenURLs) > 0 {
			a.TokenURL = a.Verify.TokenURLs[0]
		}
	}

	s := &c.Scheduler
	setDur(&s.RetryInitial, 5*time.Minute)
	setDur(&s.RetryMax, 6*time.Hour)
	setInt(&s.OrphanAfter, 5)
	setDur(&s.ShutdownGrace, 30*time.Second)
	setDur(&s.Tick, time.Second)

	for i := range c.Notifications.Webhooks {
		w := &c.Notifications.Webhooks[i]
		setDur(&w.Timeout, 10*time.Second)
		setInt(&w.MaxAttempts, 5)
	}

	a := &c.Audit
	setStr(&a.File, DefaultAuditFile)
	if a.MaxFileBytes == 0 {
		a.MaxFileBytes = 100 << 20
	}
	setStr(&a.MAC.TransitMount, "transit")
	if a.MAC.KVPath == "" { // transit unless the lab mode is asked for
		setStr(&a.MAC.TransitKey, DefaultAuditTransitKey)
		setStr(&a.MAC.SignKey, DefaultAuditSignKey)
	}
	setStr(&a.VaultSink.Path, DefaultAuditSinkPath)
	setStr(&a.Checkpoints, DefaultCheckpointPath)

	setStr(&c.Server.Listen, DefaultListen)
	setDur(&c.Server.ReadTimeout, 10*time.Second)
	setDur(&c.Server.ShutdownTimeout, 10*time.Second)

	m := &c.MFA
	setStr(&m.Issuer, "ecarotator")
	setStr(&m.SeedPrefix, DefaultMFASeedPrefix)
	setInt(&m.Skew, 1)
	setInt(&m.MaxFailures, 5)
	setDur(&m.Lockout, 15*time.Minute)
	setDur(&m.ApprovalTTL, time.Hour)

	setStr(&c.Log.Level, "info")
}
