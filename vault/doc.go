// Package vault is ecarotator's HashiCorp Vault adapter.
//
// It implements the rotator ports that live in Vault:
//
//   - rotator.CredentialStore on KV v2 (the path applications read, written
//     with check-and-set and marked with custom_metadata managed-by=ecarotator);
//   - rotator.Journal (in-flight rotation state under StatePrefix);
//   - rotator.Locker (leases under LockPrefix, whose fencing token is the KV
//     version of the write that acquired them).
//
// It also logs in (token, AppRole, Kubernetes), keeps the token alive with
// the API's LifetimeWatcher and logs in again when renewal ends, reads
// ecarotator's own Dev Hub credentials, and answers the questions the daemon
// API asks about a caller's token (capabilities, identity).
//
// Every error it returns wraps a sentinel the caller can branch on with
// errors.Is: rotator.ErrNotFound, rotator.ErrConflict, rotator.ErrLocked,
// rotator.ErrFenced, rotator.ErrNotManaged, rotator.ErrPermission,
// rotator.ErrUnreachable, and this package's ErrSealed and
// ErrBadCredentials. No error, log line or panic carries a secret value.
package vault
