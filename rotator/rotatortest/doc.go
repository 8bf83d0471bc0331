// Package rotatortest holds hand-written in-memory fakes of the rotator
// ports — an Issuer that models Salesforce's staged-credential state machine
// (salesforce-eca-api.md §3.7), a Verifier backed by it, a check-and-set
// CredentialStore and Journal, a Locker with fencing, an AuditLog and a
// Clock — so that rotator's tests and integration tests can share them.
//
// The fakes are safe for concurrent use and never sleep: time only moves
// when a test advances the Clock (Clock.Sleep advances it too).
package rotatortest
