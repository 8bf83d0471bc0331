//go:build integration

package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

// loadPolicy reads configs/policies/<name>.hcl.
func loadPolicy(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", "policies", name+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// asToken returns an adapter client logged in with tok.
func asToken(t testing.TB, srv *vaulttest.Server, tok string) *Client {
	t.Helper()
	return rootClient(t, srv, func(o *Options) { o.Auth.Token = rotator.NewSecret(tok) })
}

// rawAs returns a vault/api client with tok.
func rawAs(t testing.TB, srv *vaulttest.Server, tok string) *vaultapi.Client {
	t.Helper()
	c := srv.Client(t)
	c.SetToken(tok)
	return c
}

type policyCase struct {
	name    string
	allowed bool
	do      func(ctx context.Context) error
}

func runPolicyCases(t *testing.T, cases []policyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(t.Context())
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("want allowed, got %v", err)
			case !tc.allowed && !errors.Is(err, rotator.ErrPermission) && !isStatus(err, 403):
				t.Fatalf("want permission denied, got %v", err)
			}
		})
	}
}

func TestPoliciesOnRealVault(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	ctx := t.Context()
	for _, name := range []string{"ecarotator", "operator", "auditor"} {
		writePolicy(t, root, name, loadPolicy(t, name))
	}
	writePolicy(t, root, "app-reader-billing", strings.ReplaceAll(loadPolicy(t, "app-reader"), "APP_NAME", "billing"))
	if err := root.Sys().Mount("transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("transit/keys/ecarotator-audit", nil); err != nil {
		t.Fatal(err)
	}
	rc := rootClient(t, srv)
	for _, app := range []string{"billing", "payroll"} {
		if _, err := rc.WriteCredentials(ctx, "salesforce/"+app, creds(app+"-key", app+"-secret"), rotator.WriteOptions{RotationID: "seed"}); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Save(ctx, app, rotator.JournalEntry{App: app, Pending: rotator.Credentials{Key: "k", Secret: rotator.NewSecret("staged")}}, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	kv := root.KVv2("secret")
	if _, err := kv.Put(ctx, "ecarotator/devhubs/main", map[string]any{FieldPrivateKey: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "ecarotator/audit/events/000001", map[string]any{"event": "{}"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "unrelated/thing", map[string]any{"x": "y"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "ecarotator/webhooks/ops", map[string]any{"hmac_key": "k"}); err != nil {
		t.Fatal(err)
	}

	t.Run("the daemon policy", func(t *testing.T) {
		tok := tokenWith(t, root, "ecarotator", "ecarotator")
		d, raw := asToken(t, srv, tok), rawAs(t, srv, tok)
		var lease rotator.Lease
		runPolicyCases(t, []policyCase{
			{"creates a new app path with its metadata", true, func(ctx context.Context) error {
				_, err := d.WriteCredentials(ctx, "salesforce/newapp", creds("k", "s"), rotator.WriteOptions{RotationID: "r1"})
				return err
			}},
			{"reads an app path", true, func(ctx context.Context) error { _, _, err := d.ReadCredentials(ctx, "salesforce/billing"); return err }},
			{"writes a new version with cas and updates its metadata", true, func(ctx context.Context) error {
				_, err := d.WriteCredentials(ctx, "salesforce/billing", creds("k2", "s2"), rotator.WriteOptions{CAS: 1, RotationID: "r2"})
				return err
			}},
			{"lists app history", true, func(ctx context.Context) error { _, err := d.History(ctx, "salesforce/billing"); return err }},
			{"saves, loads and clears a journal", true, func(ctx context.Context) error {
				if _, err := d.Save(ctx, "newapp", rotator.JournalEntry{App: "newapp"}, 0, nil); err != nil {
					return err
				}
				if _, _, err := d.Load(ctx, "newapp"); err != nil {
					return err
				}
				return d.Clear(ctx, "newapp", nil)
			}},
			{"acquires a lease", true, func(ctx context.Context) error {
				var err error
				lease, err = d.Acquire(ctx, "billing", "d", time.Minute)
				return err
			}},
			{"checks and releases it", true, func(ctx context.Context) error {
				if err := d.Check(ctx, lease); err != nil {
					return err
				}
				return d.Release(ctx, lease)
			}},
			{"reads its Dev Hub key", true, func(ctx context.Context) error {
				_, err := d.LoadJWTKey(ctx, "ecarotator/devhubs/main", "")
				return err
			}},
			{"appends to the audit path", true, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Put(ctx, "ecarotator/audit/records/000002", map[string]any{"event": "{}"})
				return err
			}},
			{"MACs with the audit transit key", true, func(ctx context.Context) error {
				_, err := raw.Logical().WriteWithContext(ctx, "transit/hmac/ecarotator-audit/sha2-256", map[string]any{"input": "aGVsbG8="})
				return err
			}},
			{"renews its token", true, func(ctx context.Context) error { _, err := raw.Auth().Token().RenewSelfWithContext(ctx, 0); return err }},
			{"cannot destroy an app's history", false, func(ctx context.Context) error {
				return kvErr(raw.KVv2("secret").DeleteMetadata(ctx, "salesforce/billing"))
			}},
			{"reads a webhook HMAC key (L5)", true, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Get(ctx, "ecarotator/webhooks/ops")
				return err
			}},
			{"cannot shrink an app's history with max_versions (L6)", false, func(ctx context.Context) error {
				_, err := raw.Logical().WriteWithContext(ctx, "secret/metadata/salesforce/billing", map[string]any{"max_versions": 1})
				return err
			}},
			{"cannot shrink it with max_versions as a string either (L6)", false, func(ctx context.Context) error {
				_, err := raw.Logical().WriteWithContext(ctx, "secret/metadata/salesforce/billing", map[string]any{"max_versions": "1"})
				return err
			}},
			{"cannot expire an app's history with delete_version_after (L6)", false, func(ctx context.Context) error {
				_, err := raw.Logical().WriteWithContext(ctx, "secret/metadata/salesforce/billing", map[string]any{"delete_version_after": "1s"})
				return err
			}},
			{"cannot destroy a version (L6)", false, func(ctx context.Context) error {
				return kvErr(raw.KVv2("secret").Destroy(ctx, "salesforce/billing", []int{1}))
			}},
			{"cannot read an operator's TOTP seed", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Get(ctx, "ecarotator/mfa/seeds/0000000a-0000-4000-8000-00000000000a")
				return err
			}},
			{"cannot read paths outside its prefixes", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Get(ctx, "unrelated/thing")
				return err
			}},
			{"cannot overwrite its Dev Hub credentials", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Put(ctx, "ecarotator/devhubs/main", map[string]any{"x": "y"})
				return err
			}},
			{"cannot read the transit key", false, func(ctx context.Context) error {
				_, err := raw.Logical().ReadWithContext(ctx, "transit/keys/ecarotator-audit")
				return err
			}},
			{"cannot write control paths", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Put(ctx, "ecarotator/control/billing/rotate", map[string]any{"x": "y"})
				return err
			}},
			{"cannot change policies", false, func(ctx context.Context) error {
				return raw.Sys().PutPolicyWithContext(ctx, "x", `path "*" { capabilities = ["sudo"] }`)
			}},
		})
	})

	t.Run("the app reader policy for billing", func(t *testing.T) {
		tok := tokenWith(t, root, "billing-app", "app-reader-billing")
		a, raw := asToken(t, srv, tok), rawAs(t, srv, tok)
		runPolicyCases(t, []policyCase{
			{"reads billing's credentials", true, func(ctx context.Context) error {
				sc, _, err := a.ReadCredentials(ctx, "salesforce/billing")
				if err == nil && sc.Current.Key == "" {
					err = errors.New("empty credentials")
				}
				return err
			}},
			{"cannot read another app", false, func(ctx context.Context) error { _, _, err := a.ReadCredentials(ctx, "salesforce/payroll"); return err }},
			{"cannot read the journal", false, func(ctx context.Context) error { _, _, err := a.Load(ctx, "billing"); return err }},
			{"cannot read billing's metadata", false, func(ctx context.Context) error { _, err := a.History(ctx, "salesforce/billing"); return err }},
			{"cannot write billing's path", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Put(ctx, "salesforce/billing", map[string]any{"consumer_key": "x"})
				return err
			}},
			{"cannot read the Dev Hub key", false, func(ctx context.Context) error {
				_, err := a.LoadJWTKey(ctx, "ecarotator/devhubs/main", "")
				return err
			}},
		})
	})

	t.Run("the operator policy", func(t *testing.T) {
		tok := tokenWith(t, root, "alice", "operator")
		o, raw := asToken(t, srv, tok), rawAs(t, srv, tok)
		can := func(app, action string, want bool) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				ok, err := rc.CanControl(ctx, rotator.NewSecret(tok), app, action)
				if err != nil {
					return err
				}
				if ok != want {
					return errors.New("capability check disagrees with the policy")
				}
				return nil
			}
		}
		runPolicyCases(t, []policyCase{
			{"may rotate any app now", true, can("billing", ActionRotate, true)},
			{"may revoke a previous pair", true, can("payroll", ActionRevoke, true)},
			{"may ask the daemon to reveal (M6)", true, can("billing", ActionReveal, true)},
			{"may read status through the daemon (M2)", true, func(ctx context.Context) error {
				caps, err := rc.Capabilities(ctx, rotator.NewSecret(tok), rc.ControlPath("billing", "status"))
				if err == nil && !slices.Contains(caps, "read") {
					err = fmt.Errorf("caps on the status control path: %v", caps)
				}
				return err
			}},
			{"cannot write the status control path", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Put(ctx, "ecarotator/control/billing/status", map[string]any{"x": "y"})
				return err
			}},
			{"reads status from app metadata", true, func(ctx context.Context) error { _, err := o.History(ctx, "salesforce/billing"); return err }},
			{"reads who holds a lease", true, func(ctx context.Context) error { _, err := o.readLock(ctx, "test", "billing"); return err }},
			{"cannot read a credential", false, func(ctx context.Context) error { _, _, err := o.ReadCredentials(ctx, "salesforce/billing"); return err }},
			{"cannot read the journal", false, func(ctx context.Context) error { _, _, err := o.Load(ctx, "billing"); return err }},
			{"cannot take a lease", false, func(ctx context.Context) error { _, err := o.Acquire(ctx, "payroll", "alice", time.Minute); return err }},
			{"cannot read the audit trail", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Get(ctx, "ecarotator/audit/events/000001")
				return err
			}},
		})
		id, err := rc.TokenIdentity(ctx, rotator.NewSecret(tok))
		if err != nil || !strings.Contains(id, "alice") {
			t.Fatalf("got identity %q err=%v, want one naming alice", id, err)
		}
	})

	t.Run("the auditor policy", func(t *testing.T) {
		tok := tokenWith(t, root, "auditor", "auditor")
		a, raw := asToken(t, srv, tok), rawAs(t, srv, tok)
		runPolicyCases(t, []policyCase{
			{"reads audit events", true, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Get(ctx, "ecarotator/audit/events/000001")
				return err
			}},
			{"lists audit events", true, func(ctx context.Context) error {
				_, err := raw.Logical().ListWithContext(ctx, "secret/metadata/ecarotator/audit/events")
				return err
			}},
			{"reads app metadata (versions, rotation ids)", true, func(ctx context.Context) error {
				h, err := a.History(ctx, "salesforce/billing")
				if err == nil && len(h) == 0 {
					err = errors.New("no history")
				}
				return err
			}},
			{"cannot read a credential", false, func(ctx context.Context) error { _, _, err := a.ReadCredentials(ctx, "salesforce/billing"); return err }},
			{"cannot read the journal", false, func(ctx context.Context) error { _, _, err := a.Load(ctx, "billing"); return err }},
			{"cannot write the audit trail", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Put(ctx, "ecarotator/audit/events/000009", map[string]any{"event": "forged"})
				return err
			}},
			{"holds no control capability", true, func(ctx context.Context) error {
				ok, err := rc.CanControl(ctx, rotator.NewSecret(tok), "billing", ActionRotate)
				if err == nil && ok {
					err = errors.New("auditor may rotate")
				}
				return err
			}},
		})
	})

	t.Run("the MFA admin policy (L7)", func(t *testing.T) {
		writePolicy(t, root, "mfa-admin", loadPolicy(t, "mfa-admin"))
		raw := rawAs(t, srv, tokenWith(t, root, "mfa-admin", "mfa-admin"))
		const seed = "ecarotator/mfa/seeds/0000000b-0000-4000-8000-00000000000b"
		runPolicyCases(t, []policyCase{
			{"enrolls a new operator (creates a seed)", true, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Put(ctx, seed, map[string]any{"seed": "A", "state": "{}"}, vaultapi.WithCheckAndSet(0))
				return err
			}},
			{"cannot overwrite an enrolled operator's seed", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Put(ctx, seed, map[string]any{"seed": "KNOWN", "state": "{}"})
				return err
			}},
			{"cannot read a seed", false, func(ctx context.Context) error {
				_, err := raw.KVv2("secret").Get(ctx, seed)
				return err
			}},
			{"disables an operator (deletes the seed's metadata)", true, func(ctx context.Context) error {
				return kvErr(raw.KVv2("secret").DeleteMetadata(ctx, seed))
			}},
		})
	})

	t.Run("an invalid caller token is reported as bad credentials", func(t *testing.T) {
		_, err := rc.Capabilities(ctx, rotator.NewSecret("hvs.not-a-token"), rc.ControlPath("billing", ActionRotate))
		wantIs(t, err, ErrBadCredentials)
		_, err = rc.TokenIdentity(ctx, rotator.NewSecret("hvs.not-a-token"))
		wantIs(t, err, ErrBadCredentials)
	})
}

// kvErr passes an error through (DeleteMetadata returns only an error).
func kvErr(err error) error { return err }
