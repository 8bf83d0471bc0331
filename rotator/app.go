package rotator

import (
	"fmt"
	"strings"
	"time"
)

// OverlapPolicy says how long the previous pair stays valid after a rotation.
type OverlapPolicy string

// Overlap policies (design.md step 9).
const (
	// OverlapSalesforceExpiry keeps the previous pair until Salesforce lets
	// the Rotated slot lapse (~30 days); ecarotator never deletes it.
	OverlapSalesforceExpiry OverlapPolicy = "salesforce-expiry"
	// OverlapAfter deletes the Rotated slot once Overlap.After has passed.
	OverlapAfter OverlapPolicy = "after"
	// OverlapImmediate drops the previous pair at commit (break-glass).
	OverlapImmediate OverlapPolicy = "immediate"
)

// Overlap is an app's overlap policy.
type Overlap struct {
	Policy OverlapPolicy
	After  time.Duration // only for OverlapAfter
}

// SecretAccessMode is how a Dev Hub's REST secret-access setting is handled.
type SecretAccessMode string

// Secret access modes (design.md "MFA-gated secret access").
const (
	// SecretAccessToggle opens the setting for the duration of one attempt
	// and restores its prior value afterwards (the default).
	SecretAccessToggle SecretAccessMode = "toggle"
	// SecretAccessAlwaysOn requires the setting to be on and fails with
	// ErrSecretAccessClosed when it is off; ecarotator never changes it.
	SecretAccessAlwaysOn SecretAccessMode = "always_on"
)

// SalesforceOverlap is how long Salesforce keeps a Rotated pair when it does
// not report an expiration date (salesforce-eca-api.md §3.7).
const SalesforceOverlap = 30 * 24 * time.Hour

// App is one ECA consumer whose credentials the engine rotates, together with
// the facts about its Dev Hub that the engine needs. cmd/ecarotator builds it
// from the validated configuration.
type App struct {
	Name          string        // stable app name: lock, journal and audit key
	DevHub        string        // Dev Hub name; selects the Issuer
	ECA           string        // ECA developer name
	ConsumerID    string        // optional; required when the ECA has several consumers and Vault holds no current key
	VaultPath     string        // KV path applications read
	TokenURL      string        // written to Vault for applications
	VerifyURLs    []string      // every token endpoint the new pair must authenticate at
	VerifyTimeout time.Duration // total propagation wait per URL
	Overlap       Overlap
	MaxAge        time.Duration // safety net: rotate when the current pair is older
	Schedule      string        // robfig/cron expression (5 fields or descriptor, optional CRON_TZ=)
	Window        time.Duration // the run starts at a stable offset inside [slot, slot+Window)
	Adopt         bool          // may take over a path without the managed-by marker

	SecretAccessMode SecretAccessMode // of the app's Dev Hub
	OwnECA           string           // developer name of ecarotator's own ECA on that Dev Hub

	// Metadata strategy (packaged ECAs, issue 12; see metadata.go).
	Strategy        Strategy      // auto (default), staged or metadata
	RotateKey       bool          // also set shouldRotateConsumerKey (metadata strategy)
	SecretRead      SecretRead    // how the new pair is read after the deploy (default auto)
	MetadataOverlap time.Duration // how long the old pair still works after a metadata rotation (default 0)
	DeployTimeout   time.Duration // bound of one deploy's checkDeployStatus polling (default DefaultDeployTimeout)
	// ECAID, when set, pins the ECA's app id (0x…): no lookup by name.
	ECAID string
}

// Validate checks what the engine relies on; it reports every problem at once.
func (a App) Validate() error {
	var p []string
	if a.Name == "" {
		p = append(p, "name is required")
	}
	if a.DevHub == "" {
		p = append(p, "devhub is required")
	}
	if a.ECA == "" {
		p = append(p, "eca is required")
	}
	if a.VaultPath == "" {
		p = append(p, "vault path is required")
	}
	if len(a.VerifyURLs) == 0 {
		p = append(p, "at least one verify URL is required")
	}
	if a.VerifyTimeout <= 0 {
		p = append(p, "verify timeout must be positive")
	}
	switch a.Overlap.Policy {
	case OverlapSalesforceExpiry, OverlapImmediate:
	case OverlapAfter:
		if a.Overlap.After <= 0 {
			p = append(p, "overlap after must be positive for policy after")
		}
	default:
		p = append(p, fmt.Sprintf("unknown overlap policy %q", a.Overlap.Policy))
	}
	switch a.SecretAccessMode {
	case SecretAccessToggle, SecretAccessAlwaysOn:
	default:
		p = append(p, fmt.Sprintf("unknown secret access mode %q", a.SecretAccessMode))
	}
	p = append(p, a.validateMetadata()...)
	if len(p) > 0 {
		return fmt.Errorf("app %s: %s", a.Name, strings.Join(p, "; "))
	}
	return nil
}

// isOwnECA reports whether the app is the ECA ecarotator authenticates with.
func (a App) isOwnECA() bool {
	return a.OwnECA != "" && strings.EqualFold(a.OwnECA, a.ECA)
}
