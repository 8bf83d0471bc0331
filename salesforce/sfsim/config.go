package sfsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Permission names a simulated user can hold. They mirror the Salesforce
// permission API names without the "Permissions" prefix.
const (
	// PermAPIEnabled lets a user call the REST and SOAP APIs at all.
	PermAPIEnabled = "ApiEnabled"
	// PermExternalClientAppDeveloper lets a user read and change ECA credentials.
	PermExternalClientAppDeveloper = "ExternalClientAppDeveloper"
	// PermViewClientSecret lets a user see consumer secrets (needed for
	// part=secret and every staged-credential route).
	PermViewClientSecret = "ViewClientSecret"
	// PermModifyMetadata lets a user call the Metadata SOAP API.
	PermModifyMetadata = "ModifyMetadata"
)

// Fault kinds accepted in Fault.Kind.
const (
	FaultUnavailable = "503"          // answer 503 SERVER_UNAVAILABLE
	FaultLimit       = "limit"        // answer 403 REQUEST_LIMIT_EXCEEDED
	FaultResetBefore = "reset-before" // reset the connection without applying the request
	FaultResetAfter  = "reset-after"  // apply the request, then reset instead of answering
	FaultLatency     = "latency"      // delay the request by Fault.Latency (wall clock)
	// FaultResetEmptyBody resets the connection of a POST staged sent
	// without a body (one third-party report; Salesforce documents the
	// body-less POST and Infisical sends it). Opt-in: by default a
	// body-less POST is accepted.
	FaultResetEmptyBody = "reset-empty-body"
)

// Profiles accepted in Config.Profile.
const (
	// ProfileStrict (the default) takes the strict side of every
	// uncertain behaviour: at least as strict as a real org is believed
	// to be. Tests and the demo run it.
	ProfileStrict = "strict"
	// ProfileLenient turns on every lenient switch of Behavior (the
	// simulator's behaviour before issue 11).
	ProfileLenient = "lenient"
)

// Config describes a simulated Salesforce landscape. It is read from strict
// YAML by LoadConfig or built in code; the json tags are used by the admin API
// and the state file.
type Config struct {
	// Orgs are the Dev Hub and subscriber orgs.
	Orgs []OrgConfig `yaml:"orgs" json:"orgs"`
	// Profile is ProfileStrict (default) or ProfileLenient. Lenient turns
	// on every lenient switch of Behavior (LenientSwitches); to mix, stay
	// strict and set the switches wanted.
	Profile string `yaml:"profile" json:"profile,omitempty"`
	// Behavior holds the switches for behaviour the Salesforce docs leave open.
	Behavior Behavior `yaml:"behavior" json:"behavior"`
	// Faults are injected at start; SetFaults replaces them at run time.
	Faults []Fault `yaml:"faults" json:"faults"`
	// StateFile, when set, persists the model (credentials, staged slots,
	// settings, clock offset) as JSON after every change and reloads it on New.
	StateFile string `yaml:"stateFile" json:"stateFile,omitempty"`
	// TokenTTL is the lifetime of issued access tokens on the sim clock
	// (default 2h).
	TokenTTL Duration `yaml:"tokenTTL" json:"tokenTTL,omitempty"`
	// PropagationDelay is how long newly primary credentials are rejected by
	// token endpoints (sim clock). OrgConfig.PropagationDelay overrides it.
	PropagationDelay Duration `yaml:"propagationDelay" json:"propagationDelay,omitempty"`
	// LoginPort is the port of the login host (0 = any free port).
	LoginPort int `yaml:"loginPort" json:"loginPort,omitempty"`
	// Host is the address listeners bind to (default 127.0.0.1).
	Host string `yaml:"host" json:"host,omitempty"`
	// URLHost is the host name used in the URLs the simulator hands out
	// (instance_url, login URL). Default: Host, or 127.0.0.1 when Host is a
	// wildcard address.
	URLHost string `yaml:"urlHost" json:"urlHost,omitempty"`
}

// OrgConfig describes one org.
type OrgConfig struct {
	// Name identifies the org in this package's API and the admin API.
	Name string `yaml:"name" json:"name"`
	// OrgID is the 00D… id (generated when empty).
	OrgID string `yaml:"orgId" json:"orgId,omitempty"`
	// DevHub marks an org that owns ECAs.
	DevHub bool `yaml:"devHub" json:"devHub,omitempty"`
	// Port is the org's My Domain port (0 = any free port).
	Port int `yaml:"port" json:"port,omitempty"`
	// SecretAccess is ExternalClientAppSettings.enableClientSecretInRestApiAccess.
	SecretAccess bool `yaml:"secretAccess" json:"secretAccess,omitempty"`
	// APILimit is the daily API request limit (default 100000).
	APILimit int `yaml:"apiLimit" json:"apiLimit,omitempty"`
	// PropagationDelay overrides Config.PropagationDelay for this org.
	PropagationDelay *Duration `yaml:"propagationDelay" json:"propagationDelay,omitempty"`
	// Users of the org.
	Users []UserConfig `yaml:"users" json:"users,omitempty"`
	// ECAs owned by the org (Dev Hub only).
	ECAs []ECAConfig `yaml:"ecas" json:"ecas,omitempty"`
	// Installs lists "devhubName/ECADeveloperName" ECAs installed in this org.
	Installs []string `yaml:"installs" json:"installs,omitempty"`
	// RunAs maps an installed ECA's developer name to the username the client
	// credentials flow runs as in this org. Without an entry the ECA's own
	// ClientCredentialsUser is used if this org has such a user.
	RunAs map[string]string `yaml:"runAs" json:"runAs,omitempty"`
	// MetadataSecretAccess is ExternalClientAppSettings.enableConsumerSecretApiAccess
	// ("Allow access to OAuth consumer secrets via Metadata API").
	MetadataSecretAccess bool `yaml:"metadataSecretAccess" json:"metadataSecretAccess,omitempty"`
}

// UserConfig describes a user of an org.
type UserConfig struct {
	Username    string   `yaml:"username" json:"username"`
	UserID      string   `yaml:"userId" json:"userId,omitempty"`
	Permissions []string `yaml:"permissions" json:"permissions,omitempty"`
}

// ECAConfig describes an External Client App owned by a Dev Hub.
type ECAConfig struct {
	DeveloperName string `yaml:"developerName" json:"developerName"`
	Label         string `yaml:"label" json:"label,omitempty"`
	// ID is the app identifier (0x…; generated when empty).
	ID        string           `yaml:"id" json:"id,omitempty"`
	Consumers []ConsumerConfig `yaml:"consumers" json:"consumers"`
	// ClientCredentialsUser is the run-as username of the client credentials
	// flow in the owning org; empty disables the flow there.
	ClientCredentialsUser string `yaml:"clientCredentialsUser" json:"clientCredentialsUser,omitempty"`
	// JWTCertificatePEM is a CERTIFICATE or (RSA) PUBLIC KEY PEM; it enables
	// the JWT bearer flow.
	JWTCertificatePEM string `yaml:"jwtCertificatePEM" json:"jwtCertificatePEM,omitempty"`
	// PreAuthorizedUsers are the usernames allowed to use the JWT bearer flow.
	PreAuthorizedUsers []string `yaml:"preAuthorizedUsers" json:"preAuthorizedUsers,omitempty"`
	// DistributionState is ExternalClientApplication.DistributionState:
	// DistributionLocal (the default) or DistributionPackaged.
	DistributionState string `yaml:"distributionState" json:"distributionState,omitempty"`
	// GlobalOAuthName is the full name of the ECA's
	// ExtlClntAppGlobalOauthSettings (default <DeveloperName>_glbl).
	GlobalOAuthName string `yaml:"globalOAuthName" json:"globalOAuthName,omitempty"`
}

// ExternalClientApplication.DistributionState values.
const (
	DistributionLocal    = "Local"
	DistributionPackaged = "Packaged"
)

// Distribution returns the ECA's distribution state, Local when unset.
func (e ECAConfig) Distribution() string {
	if e.DistributionState == "" {
		return DistributionLocal
	}
	return e.DistributionState
}

// ConsumerConfig is one OAuth consumer of an ECA; empty fields are generated.
type ConsumerConfig struct {
	ID     string `yaml:"id" json:"id,omitempty"`
	Name   string `yaml:"name" json:"name,omitempty"`
	Key    string `yaml:"key" json:"key,omitempty"`
	Secret string `yaml:"secret" json:"secret,omitempty"`
}

// Fault injects a failure or delay into matching requests. Empty match fields
// match anything. Route is a route name (see Routes) or its path template.
type Fault struct {
	Org    string `yaml:"org" json:"org,omitempty"`
	Method string `yaml:"method" json:"method,omitempty"`
	Route  string `yaml:"route" json:"route,omitempty"`
	// Kind is one of the Fault* constants.
	Kind string `yaml:"kind" json:"kind"`
	// Count is how many matching requests the fault applies to (0 = all).
	Count int `yaml:"count" json:"count,omitempty"`
	// Latency is the delay of a "latency" fault.
	Latency Duration `yaml:"latency" json:"latency,omitempty"`
}

// Behavior holds the switches for behaviour Salesforce does not document
// (marked UNCONFIRMED in the API brief). The zero value is the documented
// default for every field; Defaults fills the numeric/text ones.
type Behavior struct {
	// OccupiedSlotStatus/Code/Message answer a POST staged when the slot is
	// occupied. Default 400 INVALID_INPUT.
	OccupiedSlotStatus  int    `yaml:"occupiedSlotStatus" json:"occupiedSlotStatus,omitempty"`
	OccupiedSlotCode    string `yaml:"occupiedSlotCode" json:"occupiedSlotCode,omitempty"`
	OccupiedSlotMessage string `yaml:"occupiedSlotMessage" json:"occupiedSlotMessage,omitempty"`
	// EmptyStagedNotFound makes GET staged on an empty slot answer 404
	// NOT_FOUND instead of 200 {"stagedCredentials":[]} (the default).
	EmptyStagedNotFound bool `yaml:"emptyStagedNotFound" json:"emptyStagedNotFound,omitempty"`
	// StagedAuthenticates lets Active staged credentials obtain tokens before
	// they are rotated in (default false).
	StagedAuthenticates bool `yaml:"stagedAuthenticates" json:"stagedAuthenticates,omitempty"`
	// RotatedValidity is how long the Rotated previous pair keeps working
	// (default 30 days).
	RotatedValidity Duration `yaml:"rotatedValidity" json:"rotatedValidity,omitempty"`
	// StagedValidity is how long an Active staged entry stays rotatable before
	// its state becomes Expired (default 30 days).
	StagedValidity Duration `yaml:"stagedValidity" json:"stagedValidity,omitempty"`
	// CollectionIncludesSecrets fills "secret" in GET /apps/oauth/credentials/{app}
	// (default false: the by-consumer call is the only way to read a secret).
	CollectionIncludesSecrets bool `yaml:"collectionIncludesSecrets" json:"collectionIncludesSecrets,omitempty"`
	// RetryAfter, when positive, adds Retry-After (whole seconds) to 503
	// answers (default off).
	RetryAfter Duration `yaml:"retryAfter" json:"retryAfter,omitempty"`
	// SecretAccessStatus/Code/Message answer credential routes while the org
	// setting enableClientSecretInRestApiAccess is off. Default 403
	// FUNCTIONALITY_NOT_ENABLED with a "not currently enabled" message.
	SecretAccessStatus  int    `yaml:"secretAccessStatus" json:"secretAccessStatus,omitempty"`
	SecretAccessCode    string `yaml:"secretAccessCode" json:"secretAccessCode,omitempty"`
	SecretAccessMessage string `yaml:"secretAccessMessage" json:"secretAccessMessage,omitempty"`
	// StagedURLIsItem makes the staged object's "url" the staged item's own
	// URL (Infisical's reading) instead of the primary credentials URL (the
	// doc's reading, default).
	StagedURLIsItem bool `yaml:"stagedURLIsItem" json:"stagedURLIsItem,omitempty"`
	// JWTAudiences are the accepted JWT "aud" values. Default: the login URL
	// and the org's My Domain URL.
	JWTAudiences []string `yaml:"jwtAudiences" json:"jwtAudiences,omitempty"`
	// PatchOmitsRotated makes PATCH rotate answer with the promoted entry
	// (its id, the new key, state Active) instead of the Rotated entry now
	// in the slot (the default). The response's shape is unconfirmed
	// (salesforce-eca-api.md §3.6); ecarotator then lists the slot.
	PatchOmitsRotated bool `yaml:"patchOmitsRotated" json:"patchOmitsRotated,omitempty"`
	// MaxAPIVersion is the newest REST version served (default 67.0).
	MaxAPIVersion float64 `yaml:"maxAPIVersion" json:"maxAPIVersion,omitempty"`

	// Real-org strictness (issue 11). Every switch's zero value is the
	// strict side; ProfileLenient sets the booleans to true.

	// ArrayAudience accepts a JWT "aud" that is a JSON array. Strict
	// (false): only a string, as every Salesforce reference shows.
	ArrayAudience bool `yaml:"arrayAudience" json:"arrayAudience,omitempty"`
	// JWTMaxLifetime, when positive, refuses a JWT whose exp is further
	// ahead than this. Default 0: any future exp is accepted (Salesforce's
	// "within 3 minutes" is advice; no report shows it enforced).
	JWTMaxLifetime Duration `yaml:"jwtMaxLifetime" json:"jwtMaxLifetime,omitempty"`
	// UsageListsAll makes GET /apps/oauth/usage list every ECA of the
	// org. Strict (false): only ECAs with an active access token in the
	// org ("apps that have OAuth usage data").
	UsageListsAll bool `yaml:"usageListsAll" json:"usageListsAll,omitempty"`
	// ReadsUngated serves usage, the consumer collection and part=key
	// while the secret-access setting is off. Strict (false): the setting
	// gates those reads too (sfdx-hardis annotates usage so).
	ReadsUngated bool `yaml:"readsUngated" json:"readsUngated,omitempty"`
	// SettingDelay is how long (sim clock) a secret-access setting
	// switched on through updateMetadata takes to apply: meanwhile 200
	// responses carry no "secret" (integrators report exactly that).
	// Default 0; the integration harness runs 2s.
	SettingDelay Duration `yaml:"settingDelay" json:"settingDelay,omitempty"`

	// ---- Packaged ECAs and the Metadata API (issue 12; mdapi.go) ----
	MetadataBehavior `yaml:",inline" json:",inline"`
}

// LenientSwitches names the Behavior booleans ProfileLenient turns on.
var LenientSwitches = []string{"arrayAudience", "usageListsAll", "readsUngated"}

// lenient returns b with every lenient switch on.
func (b Behavior) lenient() Behavior {
	b.ArrayAudience, b.UsageListsAll, b.ReadsUngated = true, true, true
	return b
}

// effectiveBehavior is the Behavior in force for the config's profile.
func (c Config) effectiveBehavior() Behavior {
	b := c.Behavior
	if c.Profile == ProfileLenient {
		b = b.lenient()
	}
	return b.withDefaults()
}

// Default values for Behavior and Config.
const (
	DefaultTokenTTL        = 2 * time.Hour
	DefaultValidity        = 30 * 24 * time.Hour
	DefaultAPILimit        = 100000
	DefaultMaxAPIVersion   = 67.0
	defaultOccupiedCode    = "INVALID_INPUT"
	defaultOccupiedMessage = "Staged credentials already exist for this consumer. Delete them before you stage new credentials."
	defaultAccessCode      = "FUNCTIONALITY_NOT_ENABLED"
	defaultAccessMessage   = "This feature is not currently enabled for this user type or org: [ClientSecretInRestApiAccess]"
)

// withDefaults returns b with every unset numeric and text field defaulted.
func (b Behavior) withDefaults() Behavior {
	if b.OccupiedSlotStatus == 0 {
		b.OccupiedSlotStatus = 400
	}
	if b.OccupiedSlotCode == "" {
		b.OccupiedSlotCode = defaultOccupiedCode
	}
	if b.OccupiedSlotMessage == "" {
		b.OccupiedSlotMessage = defaultOccupiedMessage
	}
	if b.RotatedValidity == 0 {
		b.RotatedValidity = Duration(DefaultValidity)
	}
	if b.StagedValidity == 0 {
		b.StagedValidity = Duration(DefaultValidity)
	}
	if b.SecretAccessStatus == 0 {
		b.SecretAccessStatus = 403
	}
	if b.SecretAccessCode == "" {
		b.SecretAccessCode = defaultAccessCode
	}
	if b.SecretAccessMessage == "" {
		b.SecretAccessMessage = defaultAccessMessage
	}
	if b.MaxAPIVersion == 0 {
		b.MaxAPIVersion = DefaultMaxAPIVersion
	}
	b.MetadataBehavior = b.MetadataBehavior.withDefaults()
	return b
}

// Duration is a time.Duration that reads "90s", "2h" or "30d" from YAML and
// JSON (a JSON number is nanoseconds).
type Duration time.Duration

// ParseDuration parses a Go duration string, also accepting a whole number of
// days ("30d").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return Duration(d), nil
}

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d like time.Duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses d with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalJSON accepts a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return d.UnmarshalText([]byte(s))
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(n)
	return nil
}

// LoadConfig reads a strict YAML config: unknown keys are errors, and the
// result is validated. A relative StateFile resolves against the file's folder.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("sfsim: load config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("sfsim: load config %s: %w", path, err)
	}
	if cfg.StateFile != "" && !filepath.IsAbs(cfg.StateFile) {
		cfg.StateFile = filepath.Join(filepath.Dir(path), cfg.StateFile)
	}
	return cfg, nil
}

// ParseConfig decodes strict YAML (one document) and validates it.
func ParseConfig(b []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("empty config")
		}
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every problem in the config at once, each with its field
// path.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if len(c.Orgs) == 0 {
		add("orgs", "at least one org is required")
	}
	orgs := map[string]*OrgConfig{}
	ports := map[int]string{}
	if c.LoginPort != 0 {
		ports[c.LoginPort] = "loginPort"
	}
	for i := range c.Orgs {
		o := &c.Orgs[i]
		p := fmt.Sprintf("orgs[%d]", i)
		switch {
		case o.Name == "":
			add(p+".name", "required")
		case o.Name == LoginHost:
			add(p+".name", "%q is reserved for the login host", LoginHost)
		case orgs[o.Name] != nil:
			add(p+".name", "duplicate org %q", o.Name)
		case strings.ContainsAny(o.Name, "/ ?#"):
			add(p+".name", "must not contain '/', ' ', '?' or '#'")
		default:
			orgs[o.Name] = o
		}
		if o.Port < 0 || o.Port > 65535 {
			add(p+".port", "out of range")
		} else if o.Port != 0 {
			if other, dup := ports[o.Port]; dup {
				add(p+".port", "port %d already used by %s", o.Port, other)
			}
			ports[o.Port] = p
		}
		if o.APILimit < 0 {
			add(p+".apiLimit", "must not be negative")
		}
		if o.PropagationDelay != nil && *o.PropagationDelay < 0 {
			add(p+".propagationDelay", "must not be negative")
		}
		users := map[string]bool{}
		for j, u := range o.Users {
			up := fmt.Sprintf("%s.users[%d]", p, j)
			if u.Username == "" {
				add(up+".username", "required")
			} else if users[u.Username] {
				add(up+".username", "duplicate user %q", u.Username)
			}
			users[u.Username] = true
		}
		if !o.DevHub && len(o.ECAs) > 0 {
			add(p+".ecas", "only a Dev Hub org owns ECAs")
		}
		ecas := map[string]bool{}
		for j, e := range o.ECAs {
			ep := fmt.Sprintf("%s.ecas[%d]", p, j)
			if e.DeveloperName == "" {
				add(ep+".developerName", "required")
			} else if ecas[e.DeveloperName] {
				add(ep+".developerName", "duplicate ECA %q", e.DeveloperName)
			}
			ecas[e.DeveloperName] = true
			if len(e.Consumers) == 0 {
				add(ep+".consumers", "at least one consumer is required")
			}
			switch e.DistributionState {
			case "", DistributionLocal, DistributionPackaged:
			default:
				add(ep+".distributionState", "want %q or %q, got %q", DistributionLocal, DistributionPackaged, e.DistributionState)
			}
			if e.ClientCredentialsUser != "" && !users[e.ClientCredentialsUser] {
				add(ep+".clientCredentialsUser", "no user %q in org %q", e.ClientCredentialsUser, o.Name)
			}
			if e.JWTCertificatePEM != "" {
				if _, err := parsePublicKey(e.JWTCertificatePEM); err != nil {
					add(ep+".jwtCertificatePEM", "%v", err)
				}
			}
		}
	}
	// Installs are checked once every org is known.
	for i, o := range c.Orgs {
		for j, in := range o.Installs {
			ip := fmt.Sprintf("orgs[%d].installs[%d]", i, j)
			hub, name, ok := strings.Cut(in, "/")
			if !ok {
				add(ip, "want \"devhubName/ECADeveloperName\", got %q", in)
				continue
			}
			h := orgs[hub]
			if h == nil || !h.DevHub {
				add(ip, "no Dev Hub org %q", hub)
				continue
			}
			if h.Name == o.Name {
				add(ip, "a Dev Hub does not install its own ECA")
			}
			found := false
			for _, e := range h.ECAs {
				found = found || e.DeveloperName == name
			}
			if !found {
				add(ip, "no ECA %q in org %q", name, hub)
			}
		}
	}
	errs = append(errs, validateFaults("faults", c.Faults)...)
	if c.TokenTTL < 0 {
		add("tokenTTL", "must not be negative")
	}
	if c.PropagationDelay < 0 {
		add("propagationDelay", "must not be negative")
	}
	switch c.Profile {
	case "", ProfileStrict, ProfileLenient:
	default:
		add("profile", "want %q or %q, got %q", ProfileStrict, ProfileLenient, c.Profile)
	}
	b := c.Behavior
	if b.JWTMaxLifetime < 0 || b.SettingDelay < 0 {
		add("behavior", "jwtMaxLifetime and settingDelay must not be negative")
	}
	if b.OccupiedSlotStatus != 0 && (b.OccupiedSlotStatus < 400 || b.OccupiedSlotStatus > 599) {
		add("behavior.occupiedSlotStatus", "want a 4xx or 5xx status")
	}
	if b.SecretAccessStatus != 0 && (b.SecretAccessStatus < 400 || b.SecretAccessStatus > 599) {
		add("behavior.secretAccessStatus", "want a 4xx or 5xx status")
	}
	if b.RotatedValidity < 0 || b.StagedValidity < 0 || b.RetryAfter < 0 {
		add("behavior", "durations must not be negative")
	}
	errs = append(errs, b.MetadataBehavior.validate("behavior")...)
	return errors.Join(errs...)
}

// validateFaults checks fault kinds and counts.
func validateFaults(path string, faults []Fault) []error {
	var errs []error
	for i, f := range faults {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch f.Kind {
		case FaultUnavailable, FaultLimit, FaultResetBefore, FaultResetAfter, FaultResetEmptyBody:
		case FaultLatency:
			if f.Latency <= 0 {
				errs = append(errs, fmt.Errorf("%s.latency: must be positive for a latency fault", p))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.kind: unknown fault kind %q", p, f.Kind))
		}
		if f.Count < 0 {
			errs = append(errs, fmt.Errorf("%s.count: must not be negative", p))
		}
		if f.Route != "" && routeByName(f.Route) == "" {
			errs = append(errs, fmt.Errorf("%s.route: unknown route %q", p, f.Route))
		}
	}
	return errs
}
