//go:build integration

package vault

import (
	"context"
	"errors"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap/zaptest"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

// rootClient returns an adapter client logged in with srv's root token.
func rootClient(t testing.TB, srv *vaulttest.Server, mod ...func(*Options)) *Client {
	t.Helper()
	o := Options{
		Address: srv.Addr,
		Auth:    AuthOptions{Method: AuthToken, Token: rotator.NewSecret(srv.Token)},
		Logger:  zaptest.NewLogger(t),
		Timeout: 10 * time.Second,
	}
	for _, m := range mod {
		m(&o)
	}
	c, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// creds builds a StoredCredentials value with recognisable contents.
func creds(key, secret string) rotator.StoredCredentials {
	return rotator.StoredCredentials{
		Current:    rotator.Credentials{Key: key, Secret: rotator.NewSecret(secret)},
		TokenURL:   "https://example.my.salesforce.com/services/oauth2/token",
		RotatedAt:  time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC),
		RotationID: "rot-" + key,
	}
}

// eventually polls cond until it returns nil or the deadline passes. It is
// the only way these tests wait: on a condition, with a deadline.
func eventually(t testing.TB, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, limit, err)
		}
		time.Sleep(25 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// writePolicy installs an HCL policy under name.
func writePolicy(t testing.TB, root *vaultapi.Client, name, hcl string) {
	t.Helper()
	if err := root.Sys().PutPolicy(name, hcl); err != nil {
		t.Fatalf("put policy %s: %v", name, err)
	}
}

// tokenWith creates a token carrying the given policies (and the default
// policy, as real tokens have).
func tokenWith(t testing.TB, root *vaultapi.Client, display string, policies ...string) string {
	t.Helper()
	s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: policies, DisplayName: display, TTL: "1h"})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return s.Auth.ClientToken
}

func wantIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one matching %v", err, target)
	}
}

var _ = context.Background
