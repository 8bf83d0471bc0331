package daemon

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/console"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

// consoleUI builds the auditor console for the HTTP server (/ui/). It
// reads what the JSON API reads (the same status provider, authorised by
// the server's CanRead) and the audit file; it is off when the daemon
// writes no audit file.
func (d *Daemon) consoleUI() func(s *server.Server) http.Handler {
	if d.set.AuditFile == "" {
		return nil
	}
	return func(s *server.Server) http.Handler {
		c, err := console.New(console.Options{
			Status:    (*api)(d),
			Names:     func(context.Context) ([]string, error) { return (*api)(d).AppNames(), nil },
			Reader:    s,
			Versions:  d.versions,
			AuditFile: d.set.AuditFile,
			Verify:    d.verifyAudit,
			Secure:    d.set.Server.TLSCert != "",
			Now:       d.o.Clock.Now,
			Logger:    d.log.Named("console"),
		})
		if err != nil {
			// Only a template that does not parse gets here: a build bug
			// the console's unit tests catch.
			d.log.Error("auditor console disabled: " + err.Error())
			return http.NotFoundHandler()
		}
		return c
	}
}

// versions lists the Vault versions of app's path (metadata only).
func (d *Daemon) versions(ctx context.Context, name string) ([]rotator.VersionInfo, error) {
	app, ok := d.app(name)
	if !ok {
		return nil, fmt.Errorf("app %s: %w", name, rotator.ErrNotFound)
	}
	return d.rt.Vault.History(ctx, app.VaultPath)
}

// verifyAudit verifies the audit file as `ecarotator audit verify` does,
// with the caller's own token: record MACs through transit/verify, head
// signatures with the sign key's public key, and the anchored head, all
// of which the auditor policy grants (and nothing that computes a MAC).
func (d *Daemon) verifyAudit(ctx context.Context, token rotator.Secret) (*audit.VerifyResult, error) {
	vc, err := d.rt.Vault.As(token)
	if err != nil {
		return nil, fmt.Errorf("audit verify: vault client: %w", err)
	}
	return d.settings().VerifyAudit(ctx, vc)
}
