package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/console"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
)

// consoleUI builds the auditor console for the HTTP server (/ui/). It
// reads what the JSON API reads (the same status provider, authorised by
// the server's CanRead) and the audit file; it is off when the daemon
// writes no audit file.
func (d *Daemon) consoleUI() func(s *server.Server) http.Handler {
	if d.cfg.Audit.File == "" {
		return nil
	}
	return func(s *server.Server) http.Handler {
		c, err := console.New(console.Options{
			Status:    (*api)(d),
			Names:     func(context.Context) ([]string, error) { return (*api)(d).AppNames(), nil },
			Reader:    s,
			Versions:  d.versions,
			AuditFile: d.cfg.Audit.File,
			Verify:    d.verifyAudit,
			Secure:    d.cfg.Server.TLSCert != "",
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
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	vc, err := d.rt.Vault.As(token)
	if err != nil {
		return nil, fmt.Errorf("audit verify: vault client: %w", err)
	}
	mac, err := wire.AuditMAC(ctx, vc, cfg.Vault.KVMount, cfg.Audit.MAC, false)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	sig, err := wire.AuditSigVerifier(ctx, vc, cfg.Audit.MAC, mac)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	id := cfg.Audit.AnchorID
	if id == "" {
		id = audit.DefaultAnchorID(cfg.Audit.File)
	}
	// The anchor is read before the file: the daemon appends, then
	// anchors, so the file always reaches an anchor read first.
	anchor, _, err := audit.ReadAnchor(ctx, vc, cfg.Vault.KVMount, cfg.Audit.Checkpoints, id)
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w", err)
	}
	if anchor == nil {
		return nil, errors.New("audit verify: the trail is not anchored yet")
	}
	return audit.VerifyFile(ctx, cfg.Audit.File, audit.VerifyOptions{MAC: mac, Sig: sig, Anchor: anchor})
}
