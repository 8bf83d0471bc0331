//go:build integration

package integration

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

var operator = rotator.Actor{Kind: rotator.ActorOperator, Identity: "it-operator", Reason: "integration test"}

// TestRotationUnderEachOverlapPolicy runs a real rotation (real Vault, sfsim
// over loopback HTTP) of an ECA installed in two subscriber orgs, under each
// overlap policy: the new pair is in Vault and authenticates at every token
// URL; the previous pair works during the overlap and stops working after
// retirement.
func TestRotationUnderEachOverlapPolicy(t *testing.T) {
	tests := []struct {
		name    string
		overlap string
		// retire moves time past the overlap and retires.
		retire func(t *testing.T, e *env, rt *wire.Runtime, clock *rotatortest.Clock, app rotator.App)
		// wantPrevious: the previous pair is kept (and valid) after the commit.
		wantPrevious bool
		wantUntil    time.Duration // previous_valid_until - rotation time (approx.)
	}{
		{
			name: "salesforce-expiry keeps the previous pair until Salesforce lets it lapse", overlap: "{policy: salesforce-expiry}",
			wantPrevious: true, wantUntil: 30 * 24 * time.Hour,
			retire: func(t *testing.T, e *env, rt *wire.Runtime, clock *rotatortest.Clock, app rotator.App) {
				if _, err := rt.Engine.Retire(t.Context(), app); err != nil {
					t.Fatalf("early retire: %v", err)
				}
				if sc, _ := e.stored(rt, "billing"); sc.Previous.IsZero() {
					t.Fatal("retire before the overlap ended dropped the previous pair")
				}
				e.sim.Advance(30*24*time.Hour + time.Hour)
				clock.Advance(30*24*time.Hour + time.Hour)
				if _, err := rt.Engine.Retire(t.Context(), app); err != nil {
					t.Fatalf("retire after expiry: %v", err)
				}
			},
		},
		{
			name: "after: 1h deletes the previous pair once the grace period ended", overlap: "{policy: after, after: 1h}",
			wantPrevious: true, wantUntil: time.Hour,
			retire: func(t *testing.T, e *env, rt *wire.Runtime, clock *rotatortest.Clock, app rotator.App) {
				clock.Advance(time.Hour + time.Minute)
				if _, err := rt.Engine.Retire(t.Context(), app); err != nil {
					t.Fatalf("retire: %v", err)
				}
			},
		},
		{
			name: "immediate revokes the previous pair at commit", overlap: "{policy: immediate}",
			wantPrevious: false,
			retire:       func(*testing.T, *env, *wire.Runtime, *rotatortest.Clock, rotator.App) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{overlap: tt.overlap})
			start := time.Now()
			clock := rotatortest.NewClock(start)
			rt := e.runtime(wire.RuntimeOptions{Clock: clock})
			app, err := rt.App("billing")
			if err != nil {
				t.Fatal(err)
			}
			urls := app.VerifyURLs
			if len(urls) != 3 {
				t.Fatalf("billing should verify at the Dev Hub and two subscriber orgs, got %v", urls)
			}
			res, err := rt.Engine.Rotate(t.Context(), app, rotator.Request{Actor: operator})
			if err != nil || res.Outcome != rotator.OutcomeOK {
				t.Fatalf("rotate: %+v, %v\nlogs:\n%s", res, err, e.logs)
			}

			sc, meta := e.stored(rt, "billing")
			old := initial["billing"]
			sf := e.consumer("billing")
			if !meta.Managed {
				t.Error("app path lacks the managed-by marker after adoption")
			}
			if sc.Current.Key == old.Key || sc.Current.Key != sf.Key || sc.Current.Secret.Reveal() != sf.Secret {
				t.Fatalf("Vault current %s is not Salesforce's new primary %s", sc.Current.Key, sf.Key)
			}
			if sc.RotationID != res.RotationID || sc.TokenURL == "" {
				t.Errorf("rotation id %q / token url %q not written", sc.RotationID, sc.TokenURL)
			}
			e.mustAuth("new pair", sc.Current, urls...)
			if tt.wantPrevious {
				if sc.Previous.Key != old.Key || !sc.Previous.Secret.Equal(old.Secret) {
					t.Fatalf("previous pair in Vault = %s, want the initial pair", sc.Previous.Key)
				}
				if got := sc.PreviousValidUntil.Sub(start); got < tt.wantUntil-time.Minute || got > tt.wantUntil+time.Minute {
					t.Errorf("previous_valid_until is %s after the rotation, want about %s", got, tt.wantUntil)
				}
				e.mustAuth("previous pair during overlap", old, urls...)
			} else {
				if !sc.Previous.IsZero() {
					t.Fatalf("immediate policy kept previous pair %s", sc.Previous.Key)
				}
				e.mustReject("previous pair after immediate revoke", old, urls...)
			}

			tt.retire(t, e, rt, clock, app)
			sc, _ = e.stored(rt, "billing")
			if !sc.Previous.IsZero() || !sc.PreviousValidUntil.IsZero() {
				t.Errorf("after retirement Vault still holds previous %s until %s", sc.Previous.Key, sc.PreviousValidUntil)
			}
			e.mustReject("previous pair after retirement", old, urls...)
			e.mustAuth("current pair after retirement", sc.Current, urls...)
			if e.sim.SecretAccess("devhub") {
				t.Error("secret access left on (prior value was off)")
			}
		})
	}
}

// TestFullRotationLeaksNoSecret rotates every app and then searches the
// logs, the audit trail and the CLI's output for every secret Salesforce
// ever held for them.
func TestFullRotationLeaksNoSecret(t *testing.T) {
	e := newEnv(t, envOptions{})
	rt := e.runtime(wire.RuntimeOptions{})
	for _, name := range []string{"billing", "support", "analytics"} {
		app, _ := rt.App(name)
		if res, err := rt.Engine.Rotate(t.Context(), app, rotator.Request{Actor: operator}); err != nil {
			t.Fatalf("rotate %s: %+v %v", name, res, err)
		}
		sc, _ := e.stored(rt, name)
		e.mustAuth(name, sc.Current, app.VerifyURLs...)
	}
	// Support has two consumers; only the named one rotated.
	other, err := e.sim.ConsumerState("devhub", "Support", "888DH0000000004AAA")
	if err != nil {
		t.Fatal(err)
	}
	if other.Key != "3MVG9DEMO.support.consumer.key.0000000000000000000000000000000000000000000004" {
		t.Errorf("the unnamed Support consumer was rotated: %s", other.Key)
	}
	_ = rt.Close()

	var outputs strings.Builder
	outputs.WriteString(e.logs.String())
	audit, err := os.ReadFile(e.dir + "/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	outputs.Write(audit)
	for _, args := range [][]string{{"plan"}, {"audit", "list"}, {"audit", "export", "--format", "json"}, {"audit", "export", "--format", "csv"}, {"audit", "verify"}, {"rotate", "billing", "--dry-run"}} {
		code, _, out, errOut := e.cli(nil, args...)
		if code != 0 {
			t.Errorf("ecarotator %v: exit %d\n%s", args, code, errOut)
		}
		outputs.WriteString(out + errOut)
	}
	all := outputs.String()
	if !strings.Contains(all, "rotation.succeeded") {
		t.Fatal("outputs do not contain the rotations; the search below would prove nothing")
	}
	for _, s := range e.secretsSeen() {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("a consumer secret (%d chars) appears in logs, audit trail or CLI output", len(s))
		}
	}
	if strings.Contains(all, e.vault.Token) {
		t.Error("the Vault token appears in logs, audit trail or CLI output")
	}
}

// TestDriftAndForeignStagedStopWithoutMutation changes Salesforce behind
// ecarotator's back: a rotation done by hand (drift) and a credential staged
// by hand (foreign). Each stops the rotation with its own error, changes
// nothing in Salesforce or Vault, and lands in the audit trail.
func TestDriftAndForeignStagedStopWithoutMutation(t *testing.T) {
	e := newEnv(t, envOptions{})
	rt := e.runtime(wire.RuntimeOptions{})
	ctx := t.Context()
	billing, _ := rt.App("billing")
	if _, err := rt.Engine.Rotate(ctx, billing, rotator.Request{Actor: operator}); err != nil {
		t.Fatal(err)
	}
	// Out-of-band changes through a second, independent Salesforce client.
	hub, _ := rt.Cfg.DevHubByName("devhub")
	sf, err := wire.DevHub(ctx, hub, rt.Vault, e.logger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.SetSecretAccess(ctx, true); err != nil {
		t.Fatal(err)
	}
	e.settingApplied() // a human waits for the setting before staging by hand
	ref, err := sf.FindApp(ctx, "Billing")
	if err != nil {
		t.Fatal(err)
	}
	cons, _ := sf.Consumers(ctx, ref.ID)
	slot, _ := sf.Staged(ctx, ref.ID, cons[0].ID)
	for _, s := range slot {
		_ = sf.DeleteStaged(ctx, ref.ID, cons[0].ID, s.ID)
	}
	st, err := sf.Stage(ctx, ref.ID, cons[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sf.Promote(ctx, ref.ID, cons[0].ID, st.ID); err != nil {
		t.Fatal(err)
	}
	analytics, _ := rt.App("analytics")
	aref, _ := sf.FindApp(ctx, "Analytics")
	acons, _ := sf.Consumers(ctx, aref.ID)
	if _, err := sf.Stage(ctx, aref.ID, acons[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := sf.SetSecretAccess(ctx, false); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		app   rotator.App
		want  error
		event string
	}{
		{"a pair rotated by hand is drift", billing, rotator.ErrDrift, string(rotator.EventDriftDetected)},
		{"a credential staged by hand is foreign", analytics, rotator.ErrForeignStaged, string(rotator.EventForeignStaged)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before := e.stored(rt, tt.app.Name)
			posts, sfBefore := e.stagePosts(), e.consumer(tt.app.Name)
			_, err := rt.Engine.Rotate(ctx, tt.app, rotator.Request{Actor: operator})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			_, after := e.stored(rt, tt.app.Name)
			sfAfter := e.consumer(tt.app.Name)
			if after.Version != before.Version || e.stagePosts() != posts || sfAfter.Key != sfBefore.Key {
				t.Errorf("something changed: vault v%d→v%d, posts %d→%d, primary %s→%s",
					before.Version, after.Version, posts, e.stagePosts(), sfBefore.Key, sfAfter.Key)
			}
			if (sfBefore.Staged == nil) != (sfAfter.Staged == nil) || (sfAfter.Staged != nil && sfAfter.Staged.ID != sfBefore.Staged.ID) {
				t.Error("the staged slot changed")
			}
			if e.sim.SecretAccess("devhub") {
				t.Error("secret access left on")
			}
			audit, _ := os.ReadFile(e.dir + "/audit.log")
			if !strings.Contains(string(audit), `"event":"`+tt.event+`"`) {
				t.Errorf("audit trail lacks %s", tt.event)
			}
		})
	}
}
