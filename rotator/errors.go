package rotator

import "errors"

// Sentinel errors that adapters wrap (or match through an Is method) so the
// engine can branch with errors.Is, never on message text.
var (
	// ErrNotFound: the object (KV path, journal, ECA, consumer, staged
	// credential) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a check-and-set write lost a race (the version moved).
	ErrConflict = errors.New("conflict: version changed")
	// ErrLocked: another holder owns an unexpired lease.
	ErrLocked = errors.New("locked by another holder")
	// ErrFenced: the caller's lease was lost or taken over; a write carrying
	// the stale fencing token is rejected.
	ErrFenced = errors.New("fenced: lease no longer held")
	// ErrNotManaged: a KV path lacks the managed-by marker and adoption was
	// not requested.
	ErrNotManaged = errors.New("path is not managed by ecarotator")
	// ErrRejected: Salesforce answered and refused the credentials
	// (invalid_client, invalid_client_id, invalid_grant).
	ErrRejected = errors.New("credentials rejected")
	// ErrUnreachable: the remote end could not be reached or answered with a
	// transient failure; the outcome of a mutation is unknown.
	ErrUnreachable = errors.New("unreachable")
	// ErrRateLimited: Salesforce reported REQUEST_LIMIT_EXCEEDED (org API
	// quota); back off long and alert.
	ErrRateLimited = errors.New("salesforce API request limit exceeded")
	// ErrAmbiguous: a non-idempotent call (POST staged, PATCH rotate,
	// DELETE staged) failed in a way that leaves its effect unknown; the
	// caller must re-read Salesforce's state before doing anything else.
	ErrAmbiguous = errors.New("outcome unknown: re-read state before retrying")
	// ErrPermission: the caller lacks a permission (Vault policy denial,
	// Salesforce INSUFFICIENT_ACCESS, secret-access gate closed).
	ErrPermission = errors.New("permission denied")
	// ErrSlotOccupied: the consumer's single staged slot already holds a
	// credential.
	ErrSlotOccupied = errors.New("staged slot occupied")
	// ErrMisconfigured: Salesforce answered that the app or org is set up
	// so that the request cannot work (app_not_found, no client-credentials
	// run-as user, flow not enabled, wrong host); retrying does not help.
	ErrMisconfigured = errors.New("salesforce configuration does not allow this request")
)

// Engine errors. They describe why a rotation stopped; callers (the daemon,
// the CLI's exit codes) branch on them with errors.Is.
var (
	// ErrDrift: Salesforce's primary key differs from Vault's current key
	// (someone rotated outside ecarotator); nothing is changed.
	ErrDrift = errors.New("drift: salesforce primary key differs from vault current key")
	// ErrForeignStaged: the staged slot holds an Active credential that this
	// rotation did not create; nothing is changed.
	ErrForeignStaged = errors.New("staged slot holds a credential ecarotator did not create")
	// ErrOwnECA: the app is the ECA ecarotator itself authenticates with.
	ErrOwnECA = errors.New("refusing to rotate ecarotator's own ECA")
	// ErrConsumerAmbiguous: the ECA has several consumers and neither the
	// configured consumer id nor Vault's current key picks one.
	ErrConsumerAmbiguous = errors.New("ECA has several consumers: name the consumer")
	// ErrOrphaned: the app needs an operator (ClearOrphan) before the engine
	// touches it again.
	ErrOrphaned = errors.New("app is orphaned: operator action required")
	// ErrBackoff: the previous attempt failed and the next one is not due yet.
	ErrBackoff = errors.New("previous attempt failed: backing off")
	// ErrSecretAccessClosed: always_on mode and the secret-access setting is off.
	ErrSecretAccessClosed = errors.New("secret access via REST API is off (secret_access: always_on)")
	// ErrVerifyFailed: the new pair did not authenticate (or read back) in time.
	ErrVerifyFailed = errors.New("verification of the new credentials failed")
	// ErrAudit: an audit event could not be recorded; the engine fails closed.
	ErrAudit = errors.New("audit event not recorded")
	// ErrInFlight: another operation's journal is open for the app.
	ErrInFlight = errors.New("another operation is in flight for this app")
	// ErrStagedLost: the staged credential of this rotation disappeared
	// before it was promoted (deleted or expired).
	ErrStagedLost = errors.New("staged credential disappeared before promotion")
	// ErrSettingBusy: (toggle mode) another rotation of the same Dev Hub is
	// opening or restoring the secret-access setting right now. It always
	// travels with ErrLocked: waiting for it is contention, never a failed
	// attempt, so it neither counts towards OrphanAfter nor backs off.
	ErrSettingBusy = errors.New("secret access setting is being changed by another rotation")
	// ErrSecretNotReturned: Salesforce kept answering without the secret
	// (a secret-access setting that had not taken effect) for longer than
	// the bounded wait; the staged entry this rotation created was deleted.
	ErrSecretNotReturned = errors.New("salesforce did not return the secret in time")
)
