// Package config is ecarotator's configuration: the YAML schema, strict
// loading (unknown keys are errors), defaults, environment overrides
// (including the standard VAULT_* variables) and Validate, which reports
// every problem at once with its field path.
//
// Precedence, lowest first: defaults, the file, the environment, flags (the
// CLI applies flags after Load). Relative paths resolve against the config
// file's folder. Secret material never lives in the file: Dev Hub keys and
// webhook HMAC keys are referenced by their Vault path, and the Vault token
// comes from VAULT_TOKEN or a token file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/ecarotator/ecarotator/rotator"
	yaml "go.yaml.in/yaml/v3"
)

// Config is the whole configuration.
type Config struct {
	Vault         Vault         `yaml:"vault" json:"vault"`
	DevHubs       []DevHub      `yaml:"devhubs" json:"devhubs"`
	Apps          []App         `yaml:"apps" json:"apps"`
	Scheduler     Scheduler     `yaml:"scheduler" json:"scheduler"`
	Notifications Notifications `yaml:"notifications" json:"notifications"`
	Audit         Audit         `yaml:"audit" json:"audit"`
	Server        Server        `yaml:"server" json:"server"`
	MFA           MFA           `yaml:"mfa" json:"mfa"`
	Log           Log           `yaml:"log" json:"log"`

	// Path is the file the config was loaded from (empty for LoadBytes
	// without a path); Dir is its folder, used to resolve relative paths.
	Path string `yaml:"-" json:"-"`
	Dir  string `yaml:"-" json:"-"`
}

// Vault is how ecarotator reaches and lays out Vault.
type Vault struct {
	Address   string    `yaml:"address" json:"address"`     // env VAULT_ADDR
	Namespace string    `yaml:"namespace" json:"namespace"` // env VAULT_NAMESPACE
	TLS       VaultTLS  `yaml:"tls" json:"tls"`
	Auth      VaultAuth `yaml:"auth" json:"auth"`
	Timeout   Duration  `yaml:"timeout" json:"timeout"`

	KVMount       string   `yaml:"kv_mount" json:"kv_mount"`             // KV v2 mount, default "secret"
	AppPrefix     string   `yaml:"app_prefix" json:"app_prefix"`         // default "salesforce": apps at <mount>/data/<prefix>/<app>
	StatePrefix   string   `yaml:"state_prefix" json:"state_prefix"`     // journal, default "ecarotator/state"
	LockPrefix    string   `yaml:"lock_prefix" json:"lock_prefix"`       // leases, default "ecarotator/locks"
	ControlPrefix string   `yaml:"control_prefix" json:"control_prefix"` // control paths for API authorization, default "ecarotator/control"
	MaxVersions   int      `yaml:"max_versions" json:"max_versions"`     // KV versions kept per app path, default 10
	LockTTL       Duration `yaml:"lock_ttl" json:"lock_ttl"`             // lease TTL, default 2m
}

// VaultTLS is the client TLS setup for Vault.
type VaultTLS struct {
	CACert             string `yaml:"ca_cert" json:"ca_cert"`         // env VAULT_CACERT
	ClientCert         string `yaml:"client_cert" json:"client_cert"` // env VAULT_CLIENT_CERT
	ClientKey          string `yaml:"client_key" json:"client_key"`   // env VAULT_CLIENT_KEY
	ServerName         string `yaml:"server_name" json:"server_name"` // env VAULT_TLS_SERVER_NAME
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
}

// VaultAuth selects and parameterises the Vault auth method.
type VaultAuth struct {
	Method     string         `yaml:"method" json:"method"` // token (default) | approle | kubernetes
	TokenFile  string         `yaml:"token_file" json:"token_file"`
	AppRole    AppRoleAuth    `yaml:"approle" json:"approle"`
	Kubernetes KubernetesAuth `yaml:"kubernetes" json:"kubernetes"`
	JWT        JWTAuth        `yaml:"jwt" json:"jwt"`

	// Token is VAULT_TOKEN (or the token file's content); never from YAML.
	Token rotator.Secret `yaml:"-" json:"-"`
}

// AppRoleAuth configures the AppRole method.
type AppRoleAuth struct {
	Mount        string `yaml:"mount" json:"mount"` // default "approle"
	RoleID       string `yaml:"role_id" json:"role_id"`
	RoleIDFile   string `yaml:"role_id_file" json:"role_id_file"`
	SecretIDFile string `yaml:"secret_id_file" json:"secret_id_file"`
	SecretIDEnv  string `yaml:"secret_id_env" json:"secret_id_env"`
	Wrapped      bool   `yaml:"wrapped" json:"wrapped"` // secret_id is a response-wrapping token
}

// KubernetesAuth configures the Kubernetes method.
type KubernetesAuth struct {
	Mount   string `yaml:"mount" json:"mount"` // default "kubernetes"
	Role    string `yaml:"role" json:"role"`
	JWTFile string `yaml:"jwt_file" json:"jwt_file"` // default the service-account token path
}

// JWTAuth configures Vault's JWT/OIDC method: a CI's OIDC token (GitHub
// Actions, GitLab CI id_tokens) logs in to a Vault role.
type JWTAuth struct {
	Mount     string `yaml:"mount" json:"mount"`           // default "jwt"
	Role      string `yaml:"role" json:"role"`             // the Vault role
	TokenEnv  string `yaml:"token_env" json:"token_env"`   // the variable holding the JWT
	TokenFile string `yaml:"token_file" json:"token_file"` // or a file holding it
}

// DevHub is a Dev Hub org that owns ECAs.
type DevHub struct {
	Name         string     `yaml:"name" json:"name"`
	LoginURL     string     `yaml:"login_url" json:"login_url"`         // token host: login/test or My Domain
	MyDomainURL  string     `yaml:"my_domain_url" json:"my_domain_url"` // the org's My Domain, for client credentials and verify
	APIVersion   string     `yaml:"api_version" json:"api_version"`     // >= 65.0
	Auth         DevHubAuth `yaml:"auth" json:"auth"`
	SecretAccess string     `yaml:"secret_access" json:"secret_access"`               // toggle (default) | always_on
	Concurrency  int        `yaml:"concurrency" json:"concurrency"`                   // rotations at once in this org, default 2
	APIBudget    float64    `yaml:"api_budget_threshold" json:"api_budget_threshold"` // defer above this fraction of the daily API limit, default 0.8
	Timeout      Duration   `yaml:"timeout" json:"timeout"`                           // per HTTP call, default 30s
}

// DevHubAuth is how ecarotator authenticates to the Dev Hub. The secret
// material (JWT private key PEM, client secret) is read from Vault.
type DevHubAuth struct {
	Method     string `yaml:"method" json:"method"`           // jwt (default) | client_credentials
	ClientID   string `yaml:"client_id" json:"client_id"`     // consumer key of ecarotator's own ECA (public)
	Username   string `yaml:"username" json:"username"`       // jwt: the pre-authorized user
	Audience   string `yaml:"audience" json:"audience"`       // jwt: auto (default: My Domain, then login) | login | mydomain | an https URL
	VaultPath  string `yaml:"vault_path" json:"vault_path"`   // KV path holding the key material
	VaultField string `yaml:"vault_field" json:"vault_field"` // default private_key (jwt) / client_secret
	Basic      bool   `yaml:"basic" json:"basic"`             // client_credentials: HTTP Basic instead of body
	OwnECA     string `yaml:"own_eca" json:"own_eca"`         // developer name of ecarotator's own ECA: never rotated
}

// App is one ECA consumer whose credentials ecarotator rotates.
type App struct {
	Name       string   `yaml:"name" json:"name"`
	DevHub     string   `yaml:"devhub" json:"devhub"`
	ECA        string   `yaml:"eca" json:"eca"`                 // ECA developer name
	ConsumerID string   `yaml:"consumer_id" json:"consumer_id"` // required when the ECA has several consumers, unless Vault holds the current key
	ECAID      string   `yaml:"eca_id" json:"eca_id"`           // optional: pin the ECA's app id (0x…), skipping the lookup by name
	VaultPath  string   `yaml:"vault_path" json:"vault_path"`   // default <app_prefix>/<name>
	Schedule   string   `yaml:"schedule" json:"schedule"`       // robfig/cron: 5 fields or @descriptor, optional CRON_TZ=
	Window     Duration `yaml:"window" json:"window"`           // random start offset inside [slot, slot+window), default 1h
	MaxAge     Duration `yaml:"max_age" json:"max_age"`         // safety net, default 30d
	Overlap    Overlap  `yaml:"overlap" json:"overlap"`
	Verify     Verify   `yaml:"verify" json:"verify"`
	TokenURL   string   `yaml:"token_url" json:"token_url"` // written to Vault for apps; default the first verify URL
	Notify     []string `yaml:"notify" json:"notify"`       // webhook names; default all
	Adopt      bool     `yaml:"adopt" json:"adopt"`         // allow taking over a path without the managed-by marker
	Disabled   bool     `yaml:"disabled" json:"disabled"`

	// Packaged ECAs (validate_metadata.go).
	Strategy        string   `yaml:"strategy" json:"strategy"`                 // auto (default) | staged | metadata
	RotateKey       bool     `yaml:"rotate_key" json:"rotate_key"`             // metadata: also set shouldRotateConsumerKey
	SecretRead      string   `yaml:"secret_read" json:"secret_read"`           // metadata: auto (default) | rest | metadata
	MetadataOverlap Duration `yaml:"metadata_overlap" json:"metadata_overlap"` // metadata: how long the old pair still works, default 0
	DeployTimeout   Duration `yaml:"deploy_timeout" json:"deploy_timeout"`     // metadata: bound of one deploy, default 10m
}

// Overlap policies.
const (
	OverlapSalesforceExpiry = "salesforce-expiry"
	OverlapAfter            = "after"
	OverlapImmediate        = "immediate"
)

// Overlap is how long the previous pair stays valid after a rotation.
type Overlap struct {
	Policy string   `yaml:"policy" json:"policy"` // salesforce-expiry (default) | after | immediate
	After  Duration `yaml:"after" json:"after"`   // for policy "after"
}

// Verify configures the post-rotation proof.
type Verify struct {
	TokenURLs []string `yaml:"token_urls" json:"token_urls"` // every token endpoint to prove the new pair at; default the Dev Hub's My Domain
	Timeout   Duration `yaml:"timeout" json:"timeout"`       // total propagation wait per URL, default 10m
}

// Scheduler holds daemon-wide scheduling knobs.
type Scheduler struct {
	RetryInitial  Duration `yaml:"retry_initial" json:"retry_initial"`   // default 5m
	RetryMax      Duration `yaml:"retry_max" json:"retry_max"`           // default 6h
	OrphanAfter   int      `yaml:"orphan_after" json:"orphan_after"`     // failed cycles before an app is orphaned, default 5
	ShutdownGrace Duration `yaml:"shutdown_grace" json:"shutdown_grace"` // default 30s
	Tick          Duration `yaml:"tick" json:"tick"`                     // scheduler resolution, default 1s
}

// Notifications configures webhooks.
type Notifications struct {
	Webhooks     []Webhook `yaml:"webhooks" json:"webhooks"`
	ReminderLead Duration  `yaml:"reminder_lead" json:"reminder_lead"` // "upcoming rotation" reminder lead time, 0 = off
}

// Webhook is one HMAC-signed JSON webhook.
type Webhook struct {
	Name            string   `yaml:"name" json:"name"`
	URL             string   `yaml:"url" json:"url"`
	SecretVaultPath string   `yaml:"secret_vault_path" json:"secret_vault_path"` // KV path with field "hmac_key"
	Events          []string `yaml:"events" json:"events"`                       // default all
	Timeout         Duration `yaml:"timeout" json:"timeout"`                     // default 10s
	MaxAttempts     int      `yaml:"max_attempts" json:"max_attempts"`           // default 5
}

// Audit configures the audit trail.
type Audit struct {
	File         string    `yaml:"file" json:"file"`                     // default ecarotator-audit.log beside the config
	MaxFileBytes int64     `yaml:"max_file_bytes" json:"max_file_bytes"` // size-based file rotation, default 100 MiB
	FailClosed   *bool     `yaml:"fail_closed" json:"fail_closed"`       // default true
	MAC          AuditMAC  `yaml:"mac" json:"mac"`
	VaultSink    AuditSink `yaml:"vault_sink" json:"vault_sink"`
	Checkpoints  string    `yaml:"checkpoint_path" json:"checkpoint_path"` // KV base path of the signed chain-head anchors, default ecarotator/audit/checkpoint
	// AnchorID names this writer's anchor at <checkpoint_path>/anchors/<id>
	// (default: derived from the file's absolute path). Replicas that each
	// write their own file must set distinct ids.
	AnchorID string `yaml:"anchor_id" json:"anchor_id"`
}

// AuditMAC says where the audit keys live. The default is Vault transit:
// transit_key (default ecarotator-audit) MACs every record and sign_key
// (default ecarotator-audit-sign, type ed25519) signs the chain head; the
// daemon can use both and read neither, auditors verify with the public
// key. kv_path selects the lab mode instead: one symmetric key read from KV
// MACs records and heads, so whoever can read it can forge (verify says so).
type AuditMAC struct {
	TransitKey   string `yaml:"transit_key" json:"transit_key"`     // Vault transit key name, default ecarotator-audit
	TransitMount string `yaml:"transit_mount" json:"transit_mount"` // default "transit"
	SignKey      string `yaml:"sign_key" json:"sign_key"`           // transit ed25519 key for the chain head, default ecarotator-audit-sign
	KVPath       string `yaml:"kv_path" json:"kv_path"`             // lab mode only: KV path with field "key" (base64), read at start
}

// AuditSink configures the Vault audit sink.
type AuditSink struct {
	Enabled bool   `yaml:"enabled" json:"enabled"`
	Path    string `yaml:"path" json:"path"` // default ecarotator/audit
}

// Server configures the daemon's HTTP server.
type Server struct {
	Listen          string   `yaml:"listen" json:"listen"` // default 127.0.0.1:9464; "" disables
	TLSCert         string   `yaml:"tls_cert" json:"tls_cert"`
	TLSKey          string   `yaml:"tls_key" json:"tls_key"`
	ReadTimeout     Duration `yaml:"read_timeout" json:"read_timeout"`         // default 10s
	ShutdownTimeout Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"` // default 10s
	// AllowPlaintext accepts a non-loopback listen address without TLS
	// (operator tokens then cross the network in clear, M5); the daemon
	// logs and audits it at every start.
	AllowPlaintext bool `yaml:"allow_plaintext" json:"allow_plaintext"`
	// AllowedHosts are the Host names the API answers for besides
	// loopback and the listen host (DNS rebinding defence, M2).
	AllowedHosts []string `yaml:"allowed_hosts" json:"allowed_hosts"`
	// URL is where operator commands reach the daemon (reveal, approve,
	// retire --revoke, rotate, status, plan); --server and
	// ECAROTATOR_SERVER override it. Break-glass goes through the daemon
	// when it is set (M6).
	URL string `yaml:"url" json:"url"` // env ECAROTATOR_SERVER
}

// MFA configures operator TOTP.
type MFA struct {
	// Enabled makes operator rotate-now (CLI and API) require a TOTP code.
	// Revoke-previous and reveal always require one, whatever this says.
	Enabled     bool     `yaml:"enabled" json:"enabled"`           // default false
	Issuer      string   `yaml:"issuer" json:"issuer"`             // shown in authenticator apps, default ecarotator
	SeedPrefix  string   `yaml:"seed_prefix" json:"seed_prefix"`   // KV prefix for seeds, default ecarotator/mfa
	Skew        int      `yaml:"skew" json:"skew"`                 // accepted steps either side, default 1
	MaxFailures int      `yaml:"max_failures" json:"max_failures"` // per operator before lockout, default 5
	Lockout     Duration `yaml:"lockout" json:"lockout"`           // default 15m
	ApprovalTTL Duration `yaml:"approval_ttl" json:"approval_ttl"` // two-person approvals expire, default 1h
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level" json:"level"`   // debug | info (default) | warn | error
	Format string `yaml:"format" json:"format"` // json (daemon default) | console (CLI default)
}

// MaxConfigBytes bounds the config file size.
const MaxConfigBytes = 4 << 20

// Load reads, decodes strictly, applies defaults and env, and validates the
// file at path. getenv is usually os.Getenv. A *ProblemsError lists every
// problem found.
func Load(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ProblemsError{Problems: []Problem{{Path: "", Msg: fmt.Sprintf("read config: %v", err)}}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, &ProblemsError{Problems: []Problem{{Msg: fmt.Sprintf("read config: %v", err)}}}
	}
	if len(data) > MaxConfigBytes {
		return nil, &ProblemsError{Problems: []Problem{{Msg: fmt.Sprintf("config file larger than %d bytes", MaxConfigBytes)}}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return LoadBytes(data, abs, getenv)
}

// LoadBytes is Load on bytes; path (may be empty) sets the folder relative
// paths resolve against.
func LoadBytes(data []byte, path string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg := &Config{Path: path}
	if path != "" {
		cfg.Dir = filepath.Dir(path)
	}
	probs, fatal := decodeStrict(data, cfg)
	if fatal {
		return nil, &ProblemsError{Problems: probs}
	}
	probs = append(probs, cfg.applyEnv(getenv)...)
	cfg.applyDefaults()
	cfg.resolvePaths()
	probs = append(probs, cfg.Validate()...)
	if len(probs) > 0 {
		return nil, &ProblemsError{Problems: probs}
	}
	return cfg, nil
}

// decodeStrict decodes data into cfg and reports every unknown key with its
// field path and every type error; fatal is true when the document could
// not be decoded at all (syntax), so validation cannot go on. Unknown keys
// and type errors are not fatal: validation runs too and the caller gets
// every problem at once.
func decodeStrict(data []byte, cfg *Config) (probs []Problem, fatal bool) {
	if len(bytes.TrimSpace(data)) == 0 {
		return []Problem{{Msg: "config is empty"}}, true
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return []Problem{{Msg: "yaml: " + strings.TrimPrefix(err.Error(), "yaml: ")}}, true
	}
	var extra yaml.Node
	if dec.Decode(&extra) != io.EOF {
		return []Problem{{Msg: "config holds more than one YAML document"}}, true
	}
	probs = unknownKeys(&doc, reflect.TypeFor[Config](), "")
	err := doc.Decode(cfg)
	var te *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		for _, e := range te.Errors {
			probs = append(probs, Problem{Msg: "yaml: " + e})
		}
	default:
		return append(probs, Problem{Msg: "yaml: " + strings.TrimPrefix(err.Error(), "yaml: ")}), true
	}
	return probs, false
}

// applyEnv applies environment overrides: the standard VAULT_* variables and
// ECAROTATOR_LOG_LEVEL / ECAROTATOR_LOG_FORMAT / ECAROTATOR_LISTEN /
// ECAROTATOR_SERVER / ECAROTATOR_ALLOW_PLAINTEXT.
func (c *Config) applyEnv(getenv func(string) string) []Problem {
	var probs []Problem
	set := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	set(&c.Vault.Address, "VAULT_ADDR")
	set(&c.Vault.Namespace, "VAULT_NAMESPACE")
	set(&c.Vault.TLS.CACert, "VAULT_CACERT")
	set(&c.Vault.TLS.ClientCert, "VAULT_CLIENT_CERT")
	set(&c.Vault.TLS.ClientKey, "VAULT_CLIENT_KEY")
	set(&c.Vault.TLS.ServerName, "VAULT_TLS_SERVER_NAME")
	switch strings.ToLower(getenv("VAULT_SKIP_VERIFY")) {
	case "", "0", "false":
	case "1", "true":
		c.Vault.TLS.InsecureSkipVerify = true
	default:
		probs = append(probs, Problem{Path: "env.VAULT_SKIP_VERIFY", Msg: "must be true or false"})
	}
	if v := getenv("VAULT_TOKEN"); v != "" {
		c.Vault.Auth.Token = rotator.NewSecret(v)
	}
	set(&c.Log.Level, "ECAROTATOR_LOG_LEVEL")
	set(&c.Log.Format, "ECAROTATOR_LOG_FORMAT")
	set(&c.Server.Listen, "ECAROTATOR_LISTEN")
	set(&c.Server.URL, "ECAROTATOR_SERVER")
	switch strings.ToLower(getenv("ECAROTATOR_ALLOW_PLAINTEXT")) {
	case "":
	case "1", "true":
		c.Server.AllowPlaintext = true
	case "0", "false":
		c.Server.AllowPlaintext = false
	default:
		probs = append(probs, Problem{Path: "env.ECAROTATOR_ALLOW_PLAINTEXT", Msg: "must be true or false"})
	}
	return probs
}

// resolvePaths makes file paths relative to the config file's folder.
func (c *Config) resolvePaths() {
	if c.Dir == "" {
		return
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(c.Dir, *p)
		}
	}
	abs(&c.Vault.TLS.CACert)
	abs(&c.Vault.TLS.ClientCert)
	abs(&c.Vault.TLS.ClientKey)
	abs(&c.Vault.Auth.TokenFile)
	abs(&c.Vault.Auth.AppRole.RoleIDFile)
	abs(&c.Vault.Auth.AppRole.SecretIDFile)
	abs(&c.Vault.Auth.Kubernetes.JWTFile)
	abs(&c.Vault.Auth.JWT.TokenFile)
	abs(&c.Audit.File)
	abs(&c.Server.TLSCert)
	abs(&c.Server.TLSKey)
}

// AppByName returns the app named name.
func (c *Config) AppByName(name string) (App, bool) {
	for _, a := range c.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// DevHubByName returns the Dev Hub named name.
func (c *Config) DevHubByName(name string) (DevHub, bool) {
	for _, d := range c.DevHubs {
		if d.Name == name {
			return d, true
		}
	}
	return DevHub{}, false
}

// AuditFailClosed reports the effective fail_closed setting.
func (a Audit) AuditFailClosed() bool { return a.FailClosed == nil || *a.FailClosed }
