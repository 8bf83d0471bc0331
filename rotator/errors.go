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
)
