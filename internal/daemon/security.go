package daemon

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// warnInsecure logs each insecure setting at error level and audits it
// (config.insecure) at every start, so that it cannot go unnoticed.
func (d *Daemon) warnInsecure(ctx context.Context) {
	for _, w := range d.settings().Insecure(d.o.Listen) {
		d.log.Error("insecure setting in effect", zap.String("setting", w))
		d.record(ctx, EventConfigInsecure, map[string]string{"setting": w})
	}
}

// EventConfigInsecure records an insecure setting in effect at start.
const EventConfigInsecure rotator.EventType = "config.insecure"

// mfaEnabled is the effective MFA state: whether rotate-now needs a code.
func (d *Daemon) mfaEnabled() bool { return d.o.Gate != nil }

// effectiveInfo is shown in /readyz and the status API: what the running
// daemon enforces, which after a refused reload may differ from the file.
func (d *Daemon) effectiveInfo() map[string]string {
	approvals := "off"
	if d.srv != nil && d.srv.HasApprovals() {
		approvals = "on"
	}
	return map[string]string{
		"mfa_enabled":           fmt.Sprint(d.mfaEnabled()),
		"revoke_needs_approval": approvals,
	}
}

// AppNames implements server.Namer: the read API authorises before it
// reads Vault.
// The slice is shared and never modified (a reload replaces it): a listing
// of 10,000 apps copies nothing per request.
func (a *api) AppNames() []string {
	d := (*Daemon)(a)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.names
}
