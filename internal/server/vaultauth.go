package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ecarotator/ecarotator/rotator"
)

// Capabilities is what VaultAuthorizer needs from Vault: the capabilities
// the caller's own token holds on a path (sys/capabilities-self). The vault
// adapter's *vault.Client provides it.
type Capabilities interface {
	Capabilities(ctx context.Context, token rotator.Secret, path string) ([]string, error)
}

// TokenIdentities names the caller's token for the audit trail (the vault
// adapter's TokenIdentity). Optional for VaultAuthorizer.
type TokenIdentities interface {
	TokenIdentity(ctx context.Context, token rotator.Secret) (string, error)
}

// VaultAuthorizer authorises operator actions with Vault policies: the
// caller's token must hold "update" (or "root") on ControlPath(app,
// action), e.g. secret/data/ecarotator/control/billing/rotate, which
// configs/policies/operator.hcl grants. Vault stays the single place where
// who-may-do-what is written down.
type VaultAuthorizer struct {
	Caps Capabilities
	// ControlPath maps an app and action to the full API path checked
	// (the vault adapter's ControlPath).
	ControlPath func(app, action string) string
	// Identity, when set, names the caller; otherwise the identity is
	// "vault-token".
	Identity TokenIdentities
	// BadToken lists the adapter's errors that mean the token itself is
	// invalid (vault.ErrBadCredentials); they answer 401.
	BadToken []error
}

var _ Authorizer = (*VaultAuthorizer)(nil)

// Authorize implements Authorizer.
func (a *VaultAuthorizer) Authorize(ctx context.Context, token rotator.Secret, app, action string) (string, error) {
	if a.Caps == nil || a.ControlPath == nil {
		return "", errors.New("server: vault authorizer is not configured")
	}
	if token.IsZero() {
		return "", ErrUnauthenticated
	}
	caps, err := a.Caps.Capabilities(ctx, token, a.ControlPath(app, action))
	if err != nil {
		return "", a.wrap("capabilities", err)
	}
	if !hasCap(caps, action) {
		return "", fmt.Errorf("%w: %s on %s", ErrForbidden, action, app)
	}
	if a.Identity == nil {
		return "vault-token", nil
	}
	id, err := a.Identity.TokenIdentity(ctx, token)
	if err != nil {
		return "", a.wrap("token identity", err)
	}
	return id, nil
}

func (a *VaultAuthorizer) wrap(op string, err error) error {
	for _, bad := range a.BadToken {
		if errors.Is(err, bad) {
			return fmt.Errorf("%w: %s: %w", ErrUnauthenticated, op, err)
		}
	}
	if errors.Is(err, rotator.ErrPermission) {
		return fmt.Errorf("%w: %s: %w", ErrForbidden, op, err)
	}
	return fmt.Errorf("server: authorize: %s: %w", op, err)
}

// hasCap reports whether caps allow action: "update" on a control path
// (rotate, revoke, reveal), "read" for the read API (M2), or root.
func hasCap(caps []string, action string) bool {
	need := "update"
	if action == ActionStatus {
		need = "read"
	}
	return slices.Contains(caps, need) || slices.Contains(caps, "root")
}
