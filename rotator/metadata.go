package rotator

import (
	"context"
	"fmt"
	"time"
)

// Strategy is how an app's consumer is rotated in its Dev Hub.
type Strategy string

// Rotation strategies (issue 12). Salesforce allows the staged-credentials
// REST API only for *local* ECAs; a *packaged* ECA keeps its consumer in
// the Dev Hub's global OAuth settings (ExtlClntAppGlobalOauthSettings) and
// is rotated by deploying that component with a rotate flag set.
const (
	// StrategyAuto reads the ECA's distributionState once and picks staged
	// for Local, metadata for Packaged (the default).
	StrategyAuto Strategy = "auto"
	// StrategyStaged is the Connect REST staged-credentials flow.
	StrategyStaged Strategy = "staged"
	// StrategyMetadata deploys ExtlClntAppGlobalOauthSettings with
	// shouldRotateConsumerSecret (and shouldRotateConsumerKey) set.
	StrategyMetadata Strategy = "metadata"
)

// SecretRead is how the metadata strategy reads the new pair after the
// deploy: whether a packaged ECA answers the credentials REST read
// (part=keyandsecret) is unconfirmed, so both ways exist.
type SecretRead string

// Secret read modes.
const (
	// SecretReadAuto tries the REST read, then a Metadata retrieve.
	SecretReadAuto SecretRead = "auto"
	// SecretReadREST uses only GET …?part=keyandsecret.
	SecretReadREST SecretRead = "rest"
	// SecretReadMetadata uses only a retrieve of the global OAuth settings.
	SecretReadMetadata SecretRead = "metadata"
)

// ExternalClientApplication.distributionState values.
const (
	DistributionLocal    = "Local"
	DistributionPackaged = "Packaged"
)

// OAuthSettings is an ECA's ExtlClntAppGlobalOauthSettings component as
// retrieved from the Dev Hub. Doc is the component file exactly as
// retrieved; it may hold consumerSecret, so it is a Secret and never
// journaled. The engine hands it back unchanged to Deploy, which changes
// only the two rotate flags.
type OAuthSettings struct {
	FullName     string // component full name found by listMetadata (e.g. <ECA>_glbl)
	ECA          string // externalClientApplication
	Key          string // consumerKey
	Secret       Secret // consumerSecret; zero when the retrieve did not carry it
	RotateKey    bool   // shouldRotateConsumerKey as retrieved
	RotateSecret bool   // shouldRotateConsumerSecret as retrieved
	Doc          Secret // the .ecaGlblOauth file
}

// DeployStatus is one checkDeployStatus answer.
type DeployStatus struct {
	ID      string
	Done    bool
	Success bool
	Status  string   // Pending, InProgress, Succeeded, Failed, Canceled …
	Errors  []string // component failures and the deploy's error message (never a secret)
}

// MetadataIssuer is the Metadata API side of a Dev Hub, used by the
// metadata strategy. An Issuer that also implements it can rotate packaged
// ECAs; one that does not is treated as serving only local ECAs.
//
// Deploy is never retried blindly: when its outcome is unknown it returns
// an error matching ErrAmbiguous and the engine settles it by re-reading.
type MetadataIssuer interface {
	// DistributionState reads ExternalClientApplication.distributionState
	// (DistributionLocal or DistributionPackaged); ErrNotFound when absent.
	DistributionState(ctx context.Context, eca string) (string, error)
	// GlobalOAuth finds the ECA's ExtlClntAppGlobalOauthSettings with
	// listMetadata and retrieves it (retrieve + checkRetrieveStatus).
	GlobalOAuth(ctx context.Context, eca string) (OAuthSettings, error)
	// Deploy deploys s.Doc with the two rotate flags set to the given values
	// (ignoreWarnings on) and returns the async deploy id.
	Deploy(ctx context.Context, s OAuthSettings, rotateKey, rotateSecret bool) (string, error)
	// DeployStatus is one checkDeployStatus call.
	DeployStatus(ctx context.Context, id string) (DeployStatus, error)
	// MetadataSecretAccess reads the org setting "Allow access to OAuth
	// consumer secrets via Metadata API".
	MetadataSecretAccess(ctx context.Context) (bool, error)
	// SetMetadataSecretAccess changes that setting.
	SetMetadataSecretAccess(ctx context.Context, on bool) error
}

// Metadata strategy defaults.
const (
	// DefaultDeployTimeout bounds the checkDeployStatus polling of one
	// deploy, and how long a deploy whose id was lost is given to show its
	// effect before the engine concludes it never ran.
	DefaultDeployTimeout = 10 * time.Minute
)

// validateMetadata checks the metadata-strategy fields of a.
func (a App) validateMetadata() []string {
	var p []string
	switch a.Strategy {
	case "", StrategyAuto, StrategyStaged, StrategyMetadata:
	default:
		p = append(p, fmt.Sprintf("unknown strategy %q (want auto, staged or metadata)", a.Strategy))
	}
	switch a.SecretRead {
	case "", SecretReadAuto, SecretReadREST, SecretReadMetadata:
	default:
		p = append(p, fmt.Sprintf("unknown secret read %q (want auto, rest or metadata)", a.SecretRead))
	}
	if a.MetadataOverlap < 0 {
		p = append(p, "metadata overlap must not be negative")
	}
	if a.DeployTimeout < 0 {
		p = append(p, "deploy timeout must not be negative")
	}
	return p
}

// strategy returns the configured strategy, auto when unset.
func (a App) strategy() Strategy {
	if a.Strategy == "" {
		return StrategyAuto
	}
	return a.Strategy
}

func (a App) secretRead() SecretRead {
	if a.SecretRead == "" {
		return SecretReadAuto
	}
	return a.SecretRead
}

func (a App) deployTimeout() time.Duration {
	if a.DeployTimeout <= 0 {
		return DefaultDeployTimeout
	}
	return a.DeployTimeout
}
