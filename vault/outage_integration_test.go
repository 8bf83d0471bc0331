//go:build integration

package vault

import (
	"errors"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

func TestVaultStoppedMidRotationIsUnreachableThenRecovers(t *testing.T) {
	srv := vaulttest.StartPersistent(t)
	c := rootClient(t, srv, func(o *Options) { o.Timeout = 3 * time.Second })
	ctx := t.Context()
	v, err := c.WriteCredentials(ctx, "salesforce/outage", creds("k1", "s1"), rotator.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(ctx, "outage", "me", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e := rotator.JournalEntry{App: "outage", Step: rotator.StepStage, Pending: rotator.Credentials{Key: "k2", Secret: rotator.NewSecret("s2")}}
	jv, err := c.Save(ctx, "outage", e, 0, &l)
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop() // Vault goes away between persisting the staged pair and the commit

	tests := []struct {
		name string
		do   func() error
	}{
		{"the commit write", func() error {
			_, err := c.WriteCredentials(ctx, "salesforce/outage", creds("k2", "s2"), rotator.WriteOptions{CAS: v, Lease: &l})
			return err
		}},
		{"a read", func() error { _, _, err := c.ReadCredentials(ctx, "salesforce/outage"); return err }},
		{"a journal save", func() error { _, err := c.Save(ctx, "outage", e, jv, &l); return err }},
		{"a lease check", func() error { return c.Check(ctx, l) }},
		{"an acquire", func() error { _, err := c.Acquire(ctx, "other", "me", time.Minute); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" fails as unreachable while Vault is stopped", func(t *testing.T) {
			err := tt.do()
			wantIs(t, err, rotator.ErrUnreachable)
			if errors.Is(err, rotator.ErrConflict) || errors.Is(err, rotator.ErrFenced) || errors.Is(err, rotator.ErrPermission) {
				t.Fatalf("an outage must not look like a decision: %v", err)
			}
		})
	}

	srv.Restart(t)
	got, gv, err := c.Load(ctx, "outage")
	if err != nil || gv != jv || got.Pending.Secret.Reveal() != "s2" {
		t.Fatalf("journal after restart: v=%d err=%v", gv, err)
	}
	nv, err := c.WriteCredentials(ctx, "salesforce/outage", creds("k2", "s2"), rotator.WriteOptions{CAS: v, Lease: &l})
	if err != nil || nv != v+1 {
		t.Fatalf("commit after restart: v=%d err=%v", nv, err)
	}
	if err := c.Release(ctx, l); err != nil {
		t.Fatal(err)
	}
}

func TestSealedVaultIsReportedAsSealedThenRecovers(t *testing.T) {
	srv := vaulttest.StartPersistent(t)
	c := rootClient(t, srv)
	ctx := t.Context()
	v, err := c.WriteCredentials(ctx, "salesforce/sealed", creds("k1", "s1"), rotator.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Seal(); err != nil {
		t.Fatal(err)
	}

	_, _, err = c.ReadCredentials(ctx, "salesforce/sealed")
	wantIs(t, err, ErrSealed)
	wantIs(t, err, rotator.ErrUnreachable)
	_, err = c.WriteCredentials(ctx, "salesforce/sealed", creds("k2", "s2"), rotator.WriteOptions{CAS: v})
	wantIs(t, err, ErrSealed)
	_, err = c.Acquire(ctx, "sealed", "me", time.Minute)
	wantIs(t, err, ErrSealed)

	if err := srv.Unseal(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "writes after unseal", func() error {
		_, err := c.WriteCredentials(ctx, "salesforce/sealed", creds("k2", "s2"), rotator.WriteOptions{CAS: v})
		return err
	})
	got, _, err := c.ReadCredentials(ctx, "salesforce/sealed")
	if err != nil || got.Current.Key != "k2" {
		t.Fatalf("got %q err=%v, want k2", got.Current.Key, err)
	}
}

func TestAppRoleClientRidesOutARestart(t *testing.T) {
	srv := vaulttest.StartPersistent(t)
	root := srv.Client(t)
	roleID, secretID := appRole(t, root, "restart", "1h", "1h")
	c, err := appRoleClient(t, srv, roleID, func(a *AuthOptions) { a.SecretID = rotator.NewSecret(secretID) })
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.WriteCredentials(ctx, "salesforce/restart", creds("k1", "s1"), rotator.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, _, err = c.ReadCredentials(ctx, "salesforce/restart")
	wantIs(t, err, rotator.ErrUnreachable)
	srv.Restart(t)
	if _, err := c.WriteCredentials(ctx, "salesforce/restart", creds("k2", "s2"), rotator.WriteOptions{CAS: 1}); err != nil {
		t.Fatalf("write after restart with the same AppRole token: %v", err)
	}
}
