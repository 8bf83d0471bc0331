package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
)

var errBadToken = errors.New("vault rejected the credentials") // stands in for vault.ErrBadCredentials

// fakeVault answers Capabilities from a table keyed by path.
type fakeVault struct {
	caps    map[string][]string
	err     error
	idErr   error
	gotPath string
	gotTok  string
}

func (f *fakeVault) Capabilities(_ context.Context, token rotator.Secret, path string) ([]string, error) {
	f.gotPath, f.gotTok = path, token.Reveal()
	if f.err != nil {
		return nil, f.err
	}
	return f.caps[path], nil
}

func (f *fakeVault) TokenIdentity(context.Context, rotator.Secret) (string, error) {
	if f.idErr != nil {
		return "", f.idErr
	}
	return "approle-alice (entity 5f1c)", nil
}

func controlPath(app, action string) string {
	return "secret/data/ecarotator/control/" + app + "/" + action
}

func TestVaultAuthorizer(t *testing.T) {
	tests := []struct {
		name     string
		vault    *fakeVault
		app      string
		action   string
		identity bool
		wantID   string
		wantErr  error
	}{
		{"update on the control path authorizes", &fakeVault{caps: map[string][]string{controlPath("billing", ActionRotate): {"update"}}}, "billing", ActionRotate, true, "approle-alice (entity 5f1c)", nil},
		{"a root token authorizes", &fakeVault{caps: map[string][]string{controlPath("billing", ActionRevoke): {"root"}}}, "billing", ActionRevoke, false, "vault-token", nil},
		{"read only is forbidden", &fakeVault{caps: map[string][]string{controlPath("billing", ActionRotate): {"read"}}}, "billing", ActionRotate, true, "", ErrForbidden},
		{"a grant for another app is forbidden", &fakeVault{caps: map[string][]string{controlPath("crm", ActionRotate): {"update"}}}, "billing", ActionRotate, true, "", ErrForbidden},
		{"rotate rights do not grant revoke", &fakeVault{caps: map[string][]string{controlPath("billing", ActionRotate): {"update"}}}, "billing", ActionRevoke, true, "", ErrForbidden},
		{"an invalid token is unauthenticated", &fakeVault{err: fmt.Errorf("vault: capabilities: %w", errBadToken)}, "billing", ActionRotate, true, "", ErrUnauthenticated},
		{"a policy denial is forbidden", &fakeVault{err: fmt.Errorf("vault: %w", rotator.ErrPermission)}, "billing", ActionRotate, true, "", ErrForbidden},
		{"an identity lookup with a bad token is unauthenticated", &fakeVault{caps: map[string][]string{controlPath("billing", ActionRotate): {"update"}}, idErr: errBadToken}, "billing", ActionRotate, true, "", ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &VaultAuthorizer{Caps: tt.vault, ControlPath: controlPath, BadToken: []error{errBadToken}}
			if tt.identity {
				a.Identity = tt.vault
			}
			id, err := a.Authorize(t.Context(), rotator.NewSecret("hvs.caller"), tt.app, tt.action)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authorize = %q, %v; want error %v", id, err, tt.wantErr)
			}
			if id != tt.wantID {
				t.Errorf("identity %q, want %q", id, tt.wantID)
			}
			if want := controlPath(tt.app, tt.action); tt.vault.gotPath != want || tt.vault.gotTok != "hvs.caller" {
				t.Errorf("asked Vault about %q with %q, want %q with the caller's token", tt.vault.gotPath, tt.vault.gotTok, want)
			}
		})
	}
	t.Run("a Vault outage is neither 401 nor 403", func(t *testing.T) {
		a := &VaultAuthorizer{Caps: &fakeVault{err: rotator.ErrUnreachable}, ControlPath: controlPath, BadToken: []error{errBadToken}}
		_, err := a.Authorize(t.Context(), rotator.NewSecret("hvs.caller"), "billing", ActionRotate)
		if err == nil || errors.Is(err, ErrForbidden) || errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authorize = %v, want an error that is neither", err)
		}
		if status, _, _ := classify(fmt.Errorf("%w: %w", rotator.ErrUnreachable, err)); status != 503 {
			t.Errorf("the handler would answer %d, want 503", status)
		}
	})
	t.Run("an empty token never reaches Vault", func(t *testing.T) {
		v := &fakeVault{}
		a := &VaultAuthorizer{Caps: v, ControlPath: controlPath}
		if _, err := a.Authorize(t.Context(), rotator.Secret{}, "billing", ActionRotate); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authorize = %v, want ErrUnauthenticated", err)
		}
		if v.gotPath != "" {
			t.Error("Vault was asked")
		}
	})
	t.Run("AuthorizerFunc adapts a function", func(t *testing.T) {
		var az Authorizer = AuthorizerFunc(func(_ context.Context, _ rotator.Secret, app, action string) (string, error) {
			return app + ":" + action, nil
		})
		if id, err := az.Authorize(t.Context(), rotator.NewSecret("t"), "billing", ActionRotate); err != nil || id != "billing:rotate" {
			t.Errorf("Authorize = %q, %v", id, err)
		}
	})
}
