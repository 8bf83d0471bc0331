package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// CronParser is the schedule syntax: 5 fields or @descriptors, with an
// optional CRON_TZ=/TZ= prefix; the same parser as plan and the scheduler.
var CronParser = rotator.CronParser

var (
	nameRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	vaultPathRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	apiVerRe    = regexp.MustCompile(`^\d+\.0$`)
	// auditKeyName: transit key names and anchor ids (one Vault path segment).
	auditKeyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Validate returns every problem in c, each with its field path. It expects
// defaults to be applied (Load does both).
func (c *Config) Validate() []Problem {
	v := &validator{}
	c.validateVault(v)
	c.validateDevHubs(v)
	c.validateApps(v)
	c.validateScheduler(v)
	c.validateNotifications(v)
	c.validateAudit(v)
	c.validateServer(v)
	c.validateMFA(v)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "console":
	default:
		v.add("log.format", "must be json or console, not %q", c.Log.Format)
	}
	return v.probs
}

type validator struct{ probs []Problem }

func (v *validator) add(path, format string, args ...any) {
	v.probs = append(v.probs, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) required(path, val string) bool {
	if strings.TrimSpace(val) == "" {
		v.add(path, "is required")
		return false
	}
	return true
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be a positive duration")
	}
}

// url checks an absolute http(s) URL; plain http is allowed only on loopback.
func (v *validator) url(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		v.add(path, "must be an absolute http(s) URL, not %q", raw)
		return
	}
	if u.User != nil {
		v.add(path, "must not carry credentials in the URL")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		v.add(path, "must use https outside loopback (got %q)", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) vaultPath(path, p string) {
	if p == "" {
		return
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, "..") || !vaultPathRe.MatchString(p) {
		v.add(path, "must be a relative KV path like salesforce/billing, not %q", p)
	}
}

func (c *Config) validateVault(v *validator) {
	x := c.Vault
	if v.required("vault.address", x.Address) {
		v.url("vault.address", x.Address)
	}
	v.positive("vault.timeout", x.Timeout)
	v.positive("vault.lock_ttl", x.LockTTL)
	if x.MaxVersions < 1 || x.MaxVersions > 100 {
		v.add("vault.max_versions", "must be between 1 and 100")
	}
	for p, val := range map[string]string{"vault.kv_mount": x.KVMount, "vault.app_prefix": x.AppPrefix,
		"vault.state_prefix": x.StatePrefix, "vault.lock_prefix": x.LockPrefix, "vault.control_prefix": x.ControlPrefix} {
		v.vaultPath(p, val)
	}
	if (x.TLS.ClientCert == "") != (x.TLS.ClientKey == "") {
		v.add("vault.tls", "client_cert and client_key go together")
	}
	switch x.Auth.Method {
	case "token":
		// The token comes from VAULT_TOKEN or token_file; checked at start so
		// that `config validate` works on a machine without credentials.
	case "approle":
		if x.Auth.AppRole.RoleID == "" && x.Auth.AppRole.RoleIDFile == "" {
			v.add("vault.auth.approle.role_id", "role_id or role_id_file is required")
		}
		if x.Auth.AppRole.SecretIDFile == "" && x.Auth.AppRole.SecretIDEnv == "" {
			v.add("vault.auth.approle.secret_id_file", "secret_id_file or secret_id_env is required")
		}
	case "kubernetes":
		v.required("vault.auth.kubernetes.role", x.Auth.Kubernetes.Role)
	case "jwt":
		v.required("vault.auth.jwt.role", x.Auth.JWT.Role)
		if (x.Auth.JWT.TokenEnv == "") == (x.Auth.JWT.TokenFile == "") {
			v.add("vault.auth.jwt.token_env", "set exactly one of token_env and token_file")
		}
	default:
		v.add("vault.auth.method", "must be token, approle, kubernetes or jwt, not %q", x.Auth.Method)
	}
}

func (c *Config) validateDevHubs(v *validator) {
	if len(c.DevHubs) == 0 {
		v.add("devhubs", "at least one Dev Hub is required")
	}
	seen := map[string]int{}
	for i, d := range c.DevHubs {
		p := fmt.Sprintf("devhubs[%d]", i)
		if v.required(p+".name", d.Name) && !nameRe.MatchString(d.Name) {
			v.add(p+".name", "must be lower-case letters, digits, - or _ (got %q)", d.Name)
		}
		if j, dup := seen[d.Name]; dup && d.Name != "" {
			v.add(p+".name", "duplicate Dev Hub name %q (also devhubs[%d])", d.Name, j)
		}
		seen[d.Name] = i
		if v.required(p+".login_url", d.LoginURL) {
			v.url(p+".login_url", d.LoginURL)
		}
		if d.MyDomainURL != "" {
			v.url(p+".my_domain_url", d.MyDomainURL)
		}
		if !apiVerRe.MatchString(d.APIVersion) {
			v.add(p+".api_version", "must look like 65.0, not %q", d.APIVersion)
		} else if n, _ := strconv.Atoi(strings.TrimSuffix(d.APIVersion, ".0")); n < 65 {
			v.add(p+".api_version", "must be 65.0 or later (staged credentials need v65.0), not %q", d.APIVersion)
		}
		switch d.SecretAccess {
		case "toggle", "always_on":
		default:
			v.add(p+".secret_access", "must be toggle or always_on, not %q", d.SecretAccess)
		}
		if d.Concurrency < 1 || d.Concurrency > 64 {
			v.add(p+".concurrency", "must be between 1 and 64")
		}
		if d.APIBudget <= 0 || d.APIBudget > 1 {
			v.add(p+".api_budget_threshold", "must be a fraction in (0, 1]")
		}
		v.positive(p+".timeout", d.Timeout)
		a := d.Auth
		v.required(p+".auth.client_id", a.ClientID)
		if v.required(p+".auth.vault_path", a.VaultPath) {
			v.vaultPath(p+".auth.vault_path", a.VaultPath)
		}
		switch a.Method {
		case "jwt":
			v.required(p+".auth.username", a.Username)
			switch a.Audience {
			case "", "auto", "login":
			case "mydomain":
				if d.MyDomainURL == "" && !strings.Contains(strings.ToLower(d.LoginURL), ".my.salesforce.com") {
					v.add(p+".auth.audience", "mydomain needs my_domain_url (or a My Domain login_url)")
				}
			default:
				v.url(p+".auth.audience", a.Audience)
			}
		case "client_credentials":
			if d.MyDomainURL == "" && strings.Contains(d.LoginURL, "login.salesforce.com") {
				v.add(p+".login_url", "client_credentials must use the org's My Domain host, not login.salesforce.com")
			}
		default:
			v.add(p+".auth.method", "must be jwt or client_credentials, not %q", a.Method)
		}
	}
}

func (c *Config) validateApps(v *validator) {
	names := map[string]int{}
	paths := map[string]int{}
	hooks := map[string]bool{}
	for _, w := range c.Notifications.Webhooks {
		hooks[w.Name] = true
	}
	for i, a := range c.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		if v.required(p+".name", a.Name) && !nameRe.MatchString(a.Name) {
			v.add(p+".name", "must be lower-case letters, digits, - or _ (got %q)", a.Name)
		}
		if j, dup := names[a.Name]; dup && a.Name != "" {
			v.add(p+".name", "duplicate app name %q (also apps[%d])", a.Name, j)
		}
		names[a.Name] = i
		if j, dup := paths[a.VaultPath]; dup && a.VaultPath != "" {
			v.add(p+".vault_path", "duplicate Vault path %q (also apps[%d])", a.VaultPath, j)
		}
		paths[a.VaultPath] = i
		v.vaultPath(p+".vault_path", a.VaultPath)
		var hub DevHub
		if v.required(p+".devhub", a.DevHub) {
			var ok bool
			if hub, ok = c.DevHubByName(a.DevHub); !ok {
				v.add(p+".devhub", "unknown Dev Hub %q", a.DevHub)
			}
		}
		if v.required(p+".eca", a.ECA) && hub.Auth.OwnECA != "" && strings.EqualFold(hub.Auth.OwnECA, a.ECA) {
			v.add(p+".eca", "%q is the ECA ecarotator itself authenticates with on Dev Hub %q; it must not rotate its own credentials", a.ECA, hub.Name)
		}
		if _, err := CronParser.Parse(a.Schedule); err != nil {
			v.add(p+".schedule", "invalid cron schedule %q: %v", a.Schedule, err)
		}
		v.positive(p+".window", a.Window)
		v.positive(p+".max_age", a.MaxAge)
		if a.Window > 0 && a.MaxAge > 0 && a.Window >= a.MaxAge {
			v.add(p+".window", "must be shorter than max_age (%s)", a.MaxAge)
		}
		switch a.Overlap.Policy {
		case OverlapSalesforceExpiry, OverlapImmediate:
			if a.Overlap.After != 0 {
				v.add(p+".overlap.after", "only applies to policy %q", OverlapAfter)
			}
		case OverlapAfter:
			if a.Overlap.After <= 0 {
				v.add(p+".overlap.after", "is required (a positive duration) for policy %q", OverlapAfter)
			} else if a.Overlap.After.D() > 30*24*time.Hour {
				v.add(p+".overlap.after", "must not exceed Salesforce's 30-day validity of the previous pair")
			}
		default:
			v.add(p+".overlap.policy", "must be salesforce-expiry, after or immediate, not %q", a.Overlap.Policy)
		}
		if len(a.Verify.TokenURLs) == 0 {
			v.add(p+".verify.token_urls", "at least one token URL is required (or set my_domain_url on the Dev Hub)")
		}
		for j, u := range a.Verify.TokenURLs {
			v.url(fmt.Sprintf("%s.verify.token_urls[%d]", p, j), u)
		}
		v.positive(p+".verify.timeout", a.Verify.Timeout)
		v.appMetadata(p, a)
		if a.TokenURL != "" && (len(a.Verify.TokenURLs) == 0 || a.TokenURL != a.Verify.TokenURLs[0]) {
			v.url(p+".token_url", a.TokenURL)
		}
		for j, n := range a.Notify {
			if !hooks[n] {
				v.add(fmt.Sprintf("%s.notify[%d]", p, j), "unknown webhook %q", n)
			}
		}
	}
}

func (c *Config) validateScheduler(v *validator) {
	s := c.Scheduler
	v.positive("scheduler.retry_initial", s.RetryInitial)
	v.positive("scheduler.retry_max", s.RetryMax)
	if s.RetryMax > 0 && s.RetryInitial > s.RetryMax {
		v.add("scheduler.retry_initial", "must not exceed retry_max")
	}
	if s.OrphanAfter < 1 {
		v.add("scheduler.orphan_after", "must be at least 1")
	}
	v.positive("scheduler.shutdown_grace", s.ShutdownGrace)
	v.positive("scheduler.tick", s.Tick)
}

func (c *Config) validateNotifications(v *validator) {
	seen := map[string]bool{}
	for i, w := range c.Notifications.Webhooks {
		p := fmt.Sprintf("notifications.webhooks[%d]", i)
		if v.required(p+".name", w.Name) && seen[w.Name] {
			v.add(p+".name", "duplicate webhook name %q", w.Name)
		}
		seen[w.Name] = true
		if v.required(p+".url", w.URL) {
			v.url(p+".url", w.URL)
		}
		if v.required(p+".secret_vault_path", w.SecretVaultPath) {
			v.vaultPath(p+".secret_vault_path", w.SecretVaultPath)
		}
		v.positive(p+".timeout", w.Timeout)
		if w.MaxAttempts < 1 || w.MaxAttempts > 20 {
			v.add(p+".max_attempts", "must be between 1 and 20")
		}
	}
	if c.Notifications.ReminderLead < 0 {
		v.add("notifications.reminder_lead", "must not be negative")
	}
}

func (c *Config) validateAudit(v *validator) {
	a := c.Audit
	v.required("audit.file", a.File)
	if a.MaxFileBytes < 4096 {
		v.add("audit.max_file_bytes", "must be at least 4096")
	}
	if a.MAC.KVPath != "" && (a.MAC.TransitKey != "" || a.MAC.SignKey != "") {
		v.add("audit.mac", "set transit_key/sign_key (transit, the default) or kv_path (lab mode), not both")
	}
	v.vaultPath("audit.mac.kv_path", a.MAC.KVPath)
	// Auditors read everything under the sink and anchor paths: a KV key
	// there would let them forge.
	for _, p := range []string{a.VaultSink.Path, a.Checkpoints, "ecarotator/audit"} {
		if k := a.MAC.KVPath; k != "" && p != "" && (k == p || strings.HasPrefix(k, strings.TrimSuffix(p, "/")+"/")) {
			v.add("audit.mac.kv_path", "must not be under %s/, which auditors can read (e.g. ecarotator/keys/audit-mac)", p)
			break
		}
	}
	for _, k := range []struct{ field, name string }{{"audit.mac.transit_key", a.MAC.TransitKey}, {"audit.mac.sign_key", a.MAC.SignKey}} {
		if k.name != "" && !auditKeyName.MatchString(k.name) {
			v.add(k.field, "must be a transit key name (letters, digits, '.', '_', '-')")
		}
	}
	if a.MAC.TransitKey != "" && a.MAC.TransitKey == a.MAC.SignKey {
		v.add("audit.mac.sign_key", "must differ from transit_key (an HMAC key and an ed25519 signing key)")
	}
	if a.AnchorID != "" && !auditKeyName.MatchString(a.AnchorID) {
		v.add("audit.anchor_id", "must be letters, digits, '.', '_', '-' (at most 128)")
	}
	v.vaultPath("audit.vault_sink.path", a.VaultSink.Path)
	v.vaultPath("audit.checkpoint_path", a.Checkpoints)
}

func (c *Config) validateServer(v *validator) {
	s := c.Server
	if s.Listen != "" {
		if _, port, err := net.SplitHostPort(s.Listen); err != nil {
			v.add("server.listen", "must be host:port, not %q", s.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.add("server.listen", "invalid port %q", port)
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		v.add("server.tls_cert", "tls_cert and tls_key go together")
	}
	// M5: the listener receives operator Vault tokens and TOTP codes; in
	// clear it may only face loopback, unless explicitly allowed.
	if s.Listen != "" && s.TLSCert == "" && !s.AllowPlaintext && !LoopbackListen(s.Listen) {
		v.add("server.listen", "%s is not a loopback address and server.tls_cert/tls_key are not set: operator tokens would cross the network in clear (set TLS, or server.allow_plaintext: true behind a TLS-terminating proxy)", s.Listen)
	}
	for i, h := range s.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") {
			v.add(fmt.Sprintf("server.allowed_hosts[%d]", i), "must be a bare host name")
		}
	}
	if s.URL != "" {
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("server.url", "must be an http(s) URL")
		} else if u.Scheme == "http" && !LoopbackListen(u.Host) {
			v.add("server.url", "must use https outside loopback")
		}
	}
	v.positive("server.read_timeout", s.ReadTimeout)
	v.positive("server.shutdown_timeout", s.ShutdownTimeout)
}

func (c *Config) validateMFA(v *validator) {
	m := c.MFA
	if m.Skew < 0 || m.Skew > 3 {
		v.add("mfa.skew", "must be between 0 and 3 steps")
	}
	if m.MaxFailures < 1 {
		v.add("mfa.max_failures", "must be at least 1")
	}
	v.positive("mfa.lockout", m.Lockout)
	v.positive("mfa.approval_ttl", m.ApprovalTTL)
	v.vaultPath("mfa.seed_prefix", m.SeedPrefix)
}

// LoopbackListen reports whether a host:port (or host) names only the
// loopback interface: "localhost", 127.0.0.0/8 or ::1. An empty host
// (":9464") listens everywhere and is not loopback.
func LoopbackListen(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
