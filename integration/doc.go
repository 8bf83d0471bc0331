// Package integration holds end-to-end tests that run ecarotator's real
// parts together: a real Vault server (internal/vaulttest), the Salesforce
// simulator over loopback HTTP, and the engine. Tests are behind the
// `integration` build tag; `make test-integration` runs them.
package integration
