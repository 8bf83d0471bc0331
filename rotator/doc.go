// Package rotator is the domain of ecarotator: the app model, the rotation
// state machine, the policies that decide whether and when an app rotates,
// the scheduler, and the small interfaces it needs from the outside world
// (credential store, issuer, verifier, lock, journal, audit log, clock).
//
// It imports none of ecarotator's other packages. The adapters (salesforce,
// vault, audit) import its types and are wired in by cmd/ecarotator.
package rotator
