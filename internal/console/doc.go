// Package console is the auditor console: a read-only web UI the daemon
// serves under /ui/.
//
// It is server-rendered html/template with a little CSS and JavaScript,
// all embedded in the binary (no framework, no CDN), and every page reads
// without JavaScript. A user logs in with a Vault token, which is checked
// with the read API's own authorization (server.Server.CanRead: read on
// the app's status control path, which configs/policies/auditor.hcl
// grants) and exchanged for a server-side session. The cookie holds only
// a random session id (HttpOnly, SameSite=Strict, Secure under TLS); the
// token stays in the daemon's memory, is re-checked on every page (so a
// revoked token loses the console within the read cache's TTL) and never
// reaches a page. Every POST (logout included) carries the session's CSRF
// token, and the login form a double-submit token.
//
// The pages show only what the JSON API and the audit package already
// compute: the apps overview is built from server.Status (the daemon's
// status provider, with the scheduler's next rotation), the audit trail is
// read with audit.Scan, verified with audit.VerifyFile (through a Verify
// function the daemon supplies, run with the auditor's own token) and
// exported with audit.NewCSVWriter. No page ever holds a secret.
package console
