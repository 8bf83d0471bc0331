package rotator

import (
	"context"
	"time"
)

// Credentials is one OAuth consumer key + secret pair. The key is a public
// client id and may be logged; the secret never is.
type Credentials struct {
	Key    string `json:"consumer_key"`
	Secret Secret `json:"consumer_secret"`
}

// IsZero reports whether neither half is set.
func (c Credentials) IsZero() bool { return c.Key == "" && c.Secret.IsZero() }

// AppRef identifies an External Client App in its Dev Hub org.
type AppRef struct {
	ID            string // the usage "identifier", used in credential URLs
	DeveloperName string
	Label         string
	// Distribution is ExternalClientApplication.DistributionState (Local,
	// Packaged) when the lookup read it (SOQL), else empty.
	Distribution string
}

// Consumer is one OAuth consumer of an ECA (most ECAs have exactly one).
type Consumer struct {
	ID   string
	Key  string // current primary consumer key
	Name string
}

// StagedStatus is the state of the entry in a consumer's staged slot.
type StagedStatus string

// Staged slot states as Salesforce reports them.
const (
	StagedActive  StagedStatus = "Active"  // staged, not yet promoted
	StagedRotated StagedStatus = "Rotated" // the previous primary after a rotate
)

// StagedCredential is the entry in a consumer's single staged slot.
type StagedCredential struct {
	ID      string
	Status  StagedStatus
	Key     string
	Secret  Secret // set only in the POST response (and GETs that return it)
	Created time.Time
	Expires time.Time // zero when Salesforce does not say
}

// APIUsage is the org's API consumption as reported by Sforce-Limit-Info.
type APIUsage struct {
	Used, Limit int
	At          time.Time
}

// Fraction returns Used/Limit, or 0 when the limit is unknown.
func (u APIUsage) Fraction() float64 {
	if u.Limit <= 0 {
		return 0
	}
	return float64(u.Used) / float64(u.Limit)
}

// Issuer is the Dev Hub org that owns ECAs: the Salesforce side of a
// rotation. One Issuer serves one Dev Hub.
//
// Stage, Promote and DeleteStaged are never retried blindly by an
// implementation: when their outcome is unknown they return an error
// matching ErrAmbiguous and the caller re-reads with Staged/Credentials.
type Issuer interface {
	// FindApp resolves an ECA by developer name (ErrNotFound if absent).
	FindApp(ctx context.Context, developerName string) (AppRef, error)
	// Consumers lists the app's OAuth consumers.
	Consumers(ctx context.Context, appID string) ([]Consumer, error)
	// Credentials reads the consumer's primary key and secret
	// (part=keyandsecret); needs the secret-access setting on.
	Credentials(ctx context.Context, appID, consumerID string) (Credentials, error)
	// PrimaryKey reads only the consumer's primary key (part=key).
	PrimaryKey(ctx context.Context, appID, consumerID string) (string, error)
	// Staged lists the staged slot (empty, never ErrNotFound, when nothing
	// is staged).
	Staged(ctx context.Context, appID, consumerID string) ([]StagedCredential, error)
	// Stage creates a new staged credential (POST) and returns it with its
	// secret. ErrSlotOccupied when the slot is taken.
	Stage(ctx context.Context, appID, consumerID string) (StagedCredential, error)
	// Promote makes a staged credential primary (PATCH {"command":"rotate"});
	// the previous primary moves to the staged slot as Rotated. It returns
	// that Rotated entry when the response names it (Status StagedRotated,
	// never a secret the caller relies on), else a zero StagedCredential:
	// the response's shape is unconfirmed, so callers fall back to Staged.
	Promote(ctx context.Context, appID, consumerID, stagedID string) (StagedCredential, error)
	// DeleteStaged deletes the staged slot's entry (ErrNotFound if gone).
	DeleteStaged(ctx context.Context, appID, consumerID, stagedID string) error
	// SecretAccess reads ExternalClientAppSettings.enableClientSecretInRestApiAccess.
	SecretAccess(ctx context.Context) (bool, error)
	// SetSecretAccess updates that setting.
	SetSecretAccess(ctx context.Context, on bool) error
	// Usage returns the last API usage seen in a response, if any.
	Usage() (APIUsage, bool)
}

// Verifier proves a credential pair with a real client-credentials token
// request. It returns nil on success, an error matching ErrRejected when
// Salesforce refused the pair, and ErrUnreachable when it could not tell.
type Verifier interface {
	Verify(ctx context.Context, tokenURL string, c Credentials) error
}

// StoredCredentials is what applications read at an app's KV path.
type StoredCredentials struct {
	Current            Credentials
	TokenURL           string
	Previous           Credentials // zero outside an overlap
	PreviousValidUntil time.Time   // zero outside an overlap
	RotatedAt          time.Time
	RotationID         string
	// PreviousStagedID is the id of the Rotated staged entry holding
	// Previous (a public id; empty when unknown or outside an overlap):
	// retirement deletes it by id without listing the slot.
	PreviousStagedID string
}

// StoreMeta describes a KV path's current version.
type StoreMeta struct {
	Version   int               // 0 when the path does not exist yet
	Managed   bool              // carries custom_metadata managed-by=ecarotator
	Custom    map[string]string // custom_metadata (never secrets)
	UpdatedAt time.Time
}

// WriteOptions control a credential write.
type WriteOptions struct {
	// CAS is the version the write expects to replace (0: path must not
	// exist). A mismatch fails with ErrConflict.
	CAS int
	// RotationID and Reason go into custom_metadata.
	RotationID string
	// Adopt allows writing a path that lacks the managed-by marker.
	Adopt bool
	// Lease, when set, must still be held (fencing) or the write fails with
	// ErrFenced.
	Lease *Lease
	// Managed says the caller read the path at version CAS and it carried
	// the managed-by marker: the store need not read its metadata again
	// (the check-and-set write proves the version unchanged).
	Managed bool
}

// VersionInfo is one KV version in an app path's history.
type VersionInfo struct {
	Version   int
	CreatedAt time.Time
	Deleted   bool
	Destroyed bool
}

// CredentialStore is where applications read their credentials (Vault KV v2).
type CredentialStore interface {
	ReadCredentials(ctx context.Context, path string) (StoredCredentials, StoreMeta, error)
	WriteCredentials(ctx context.Context, path string, c StoredCredentials, opts WriteOptions) (int, error)
	History(ctx context.Context, path string) ([]VersionInfo, error)
}

// Lease is a held lock on one app. Fence increases with every acquisition
// and is checked on every write made under the lease.
type Lease struct {
	Name      string
	Holder    string
	Fence     int64
	ExpiresAt time.Time
}

// Locker hands out leases with expiry; a lease is taken over only after it
// expired.
type Locker interface {
	Acquire(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) // ErrLocked
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)               // ErrFenced
	Release(ctx context.Context, l Lease) error
	// Check returns ErrFenced when l is no longer the current lease.
	Check(ctx context.Context, l Lease) error
}

// Step names a point of the rotation protocol.
type Step string

// The protocol's steps, in order, plus retire.
const (
	StepLock      Step = "lock"
	StepPreflight Step = "preflight"
	StepExpose    Step = "expose"
	StepStage     Step = "stage"
	StepPersist   Step = "persist"
	StepRotate    Step = "rotate"
	StepVerify    Step = "verify"
	StepCommit    Step = "commit"
	StepFinish    Step = "finish"
	StepRetire    Step = "retire"
)

// JournalEntry is an app's in-flight rotation state, written to Vault before
// and after every external mutation so a rotation resumes after a crash.
//
// Adapters persist Pending.Secret explicitly (Secret marshals to
// "<redacted>"); every other field round-trips through JSON, so adding a
// non-secret field needs no adapter change.
type JournalEntry struct {
	RotationID        string            `json:"rotation_id"`
	App               string            `json:"app"`
	Step              Step              `json:"step"`
	Done              bool              `json:"done"` // Step completed
	AppID             string            `json:"app_id,omitempty"`
	ConsumerID        string            `json:"consumer_id,omitempty"`
	StagedID          string            `json:"staged_id,omitempty"`
	Pending           Credentials       `json:"pending"`
	BaseVersion       int               `json:"base_version"`
	PriorSecretAccess *bool             `json:"prior_secret_access,omitempty"`
	Attempts          int               `json:"attempts"`
	LastError         string            `json:"last_error,omitempty"`
	Actor             Actor             `json:"actor"`
	StartedAt         time.Time         `json:"started_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
	NextAttemptAt     time.Time         `json:"next_attempt_at,omitempty"`
	Orphaned          bool              `json:"orphaned,omitempty"`
	Extra             map[string]string `json:"extra,omitempty"`
}

// Journal persists JournalEntry values per app with check-and-set.
type Journal interface {
	// Load returns the entry and its version (ErrNotFound when none).
	Load(ctx context.Context, app string) (JournalEntry, int, error)
	// Save writes e if the stored version is still cas (0: must not exist);
	// ErrConflict otherwise, ErrFenced when lease is set and no longer held.
	Save(ctx context.Context, app string, e JournalEntry, cas int, lease *Lease) (int, error)
	// Clear removes the entry (after a finished rotation).
	Clear(ctx context.Context, app string, lease *Lease) error
}

// ActorKind says who caused an action.
type ActorKind string

// Actor kinds.
const (
	ActorScheduler ActorKind = "scheduler"
	ActorOperator  ActorKind = "operator"
	ActorSystem    ActorKind = "system"
)

// Actor is who caused an action and why.
type Actor struct {
	Kind     ActorKind `json:"kind"`
	Identity string    `json:"identity,omitempty"` // operator identity from Vault
	Reason   string    `json:"reason,omitempty"`
}

// Outcome of an audited action.
type Outcome string

// Outcomes.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeFailed  Outcome = "failed"
	OutcomeSkipped Outcome = "skipped"
	OutcomeDenied  Outcome = "denied"
)

// Event is one audit record as the domain emits it. The audit package adds
// the schema version, sequence, hashes and MAC. It never holds a secret:
// Fingerprint is a keyed fingerprint computed by the audit log.
type Event struct {
	Type         EventType         `json:"event"`
	Time         time.Time         `json:"time"`
	App          string            `json:"app,omitempty"`
	Org          string            `json:"org,omitempty"`
	ECA          string            `json:"eca,omitempty"`
	ConsumerKey  string            `json:"consumer_key,omitempty"`
	RotationID   string            `json:"rotation_id,omitempty"`
	Step         Step              `json:"step,omitempty"`
	Actor        Actor             `json:"actor"`
	Outcome      Outcome           `json:"outcome,omitempty"`
	Error        string            `json:"error,omitempty"`
	VaultPath    string            `json:"vault_path,omitempty"`
	VaultVersion int               `json:"vault_version,omitempty"`
	Fingerprint  string            `json:"fingerprint,omitempty"`
	Details      map[string]string `json:"details,omitempty"`
}

// AuditLog records events. Record returning an error means the event is not
// durable; the engine fails closed on it (configurable).
type AuditLog interface {
	Record(ctx context.Context, e Event) error
	// Fingerprint returns a keyed, non-reversible fingerprint of s for
	// correlating log entries with Vault versions.
	Fingerprint(s Secret) string
}

// Clock is the one access to time of the engine, the scheduler and the
// daemon: SystemClock in production, rotatortest.Clock (a fake that moves
// only when told) in tests.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once d has passed on this clock.
	NewTimer(d time.Duration) Timer
}
