//go:build integration

package integration

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// TestRetireDeletesTheRecordedStagedID: a rotation records the Rotated
// entry's id in Vault (previous_staged_id) — from PATCH rotate's answer
// when it names the entry, else from one listing of the slot (sfsim
// patchOmitsRotated) — and the retirement deletes that entry by id
// without listing the slot; the previous pair stops working.
func TestRetireDeletesTheRecordedStagedID(t *testing.T) {
	for _, omits := range []bool{false, true} {
		name := "the PATCH answer names the Rotated entry"
		if omits {
			name = "the PATCH answer omits it"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{overlap: "{policy: after, after: 1ms}", simSetup: func(c *sfsim.Config) { c.Behavior.PatchOmitsRotated = omits }})
			rt := e.runtime(wire.RuntimeOptions{})
			app, err := rt.App("billing")
			if err != nil {
				t.Fatal(err)
			}
			// The first rotation adopts the path and learns the ECA.
			if _, err := rt.Engine.Rotate(t.Context(), app, rotator.Request{Actor: operator}); err != nil {
				t.Fatal(err)
			}
			e.settingApplied()
			if _, err := rt.Engine.Retire(t.Context(), app); err != nil {
				t.Fatal(err)
			}
			mark := len(e.sim.Requests())
			if _, err := rt.Engine.Rotate(t.Context(), app, rotator.Request{Actor: operator}); err != nil {
				t.Fatal(err)
			}
			e.settingApplied()
			listings := func(from int) (get, del int) {
				for _, r := range e.sim.Requests()[from:] {
					switch {
					case r.Route == sfsim.RouteStaged && r.Method == "GET":
						get++
					case r.Route == sfsim.RouteStagedItem && r.Method == "DELETE":
						del++
					}
				}
				return get, del
			}
			wantGets := 0
			if omits {
				wantGets = 1
			}
			if get, _ := listings(mark); get != wantGets {
				t.Errorf("rotation listed the slot %d times, want %d", get, wantGets)
			}
			sc, _ := e.stored(rt, "billing")
			slot := e.consumer("billing").Staged
			if slot == nil || slot.State != "Rotated" || sc.PreviousStagedID != slot.ID || sc.Previous.IsZero() {
				t.Fatalf("stored previous_staged_id %q, slot %+v", sc.PreviousStagedID, slot)
			}
			prev := sc.Previous
			mark = len(e.sim.Requests())
			if res, err := rt.Engine.Retire(t.Context(), app); err != nil || res.Outcome != rotator.OutcomeOK {
				t.Fatalf("Retire = %+v, %v", res, err)
			}
			if get, del := listings(mark); get != 0 || del != 1 {
				t.Errorf("retire: %d listings, %d deletes; want 0 and 1", get, del)
			}
			if e.consumer("billing").Staged != nil {
				t.Error("the Rotated entry is still in the slot")
			}
			after, _ := e.stored(rt, "billing")
			if !after.Previous.IsZero() || after.PreviousStagedID != "" {
				t.Errorf("path still names the previous pair %s (id %q)", after.Previous.Key, after.PreviousStagedID)
			}
			e.mustReject("retired previous pair", prev, app.VerifyURLs...)
		})
	}
}

// TestForeignStagedMetByTheFirstPost: a fresh rotation POSTs without
// reading the slot; a credential staged by hand refuses that POST, and the
// rotation stops on it like a preflight stop — nothing created or changed
// in Salesforce or Vault, the setting restored, the stop audited, and no
// journal or backoff left behind (the next attempt stops the same way,
// not with ErrBackoff). Once the entry is gone the app rotates.
func TestForeignStagedMetByTheFirstPost(t *testing.T) {
	e := newEnv(t, envOptions{overlap: "{policy: after, after: 1ms}"})
	rt := e.runtime(wire.RuntimeOptions{})
	ctx := t.Context()
	app, err := rt.App("billing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Engine.Rotate(ctx, app, rotator.Request{Actor: operator}); err != nil {
		t.Fatal(err)
	}
	e.settingApplied()
	if _, err := rt.Engine.Retire(ctx, app); err != nil {
		t.Fatal(err)
	}
	hub, _ := rt.Cfg.DevHubByName("devhub")
	sf, err := wire.DevHub(ctx, hub, rt.Vault, e.logger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.SetSecretAccess(ctx, true); err != nil {
		t.Fatal(err)
	}
	e.settingApplied()
	ids := consumerIDs["billing"]
	st := e.consumer("billing")
	ref, err := sf.FindApp(ctx, "Billing")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := sf.Stage(ctx, ref.ID, ids.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.SetSecretAccess(ctx, false); err != nil {
		t.Fatal(err)
	}
	_, before := e.stored(rt, "billing")
	posts := e.stagePosts()
	for try := range 2 {
		_, err := rt.Engine.Rotate(ctx, app, rotator.Request{Actor: operator})
		if !errors.Is(err, rotator.ErrForeignStaged) {
			t.Fatalf("attempt %d: got %v, want ErrForeignStaged", try, err)
		}
		_, after := e.stored(rt, "billing")
		now := e.consumer("billing")
		if after.Version != before.Version || e.stagePosts() != posts || now.Key != st.Key {
			t.Errorf("attempt %d changed something: vault v%d→v%d, posts %d→%d", try, before.Version, after.Version, posts, e.stagePosts())
		}
		if now.Staged == nil || now.Staged.ID != foreign.ID || now.Staged.State != "Active" {
			t.Errorf("attempt %d: slot %+v, want the foreign entry untouched", try, now.Staged)
		}
		if e.sim.SecretAccess("devhub") {
			t.Errorf("attempt %d: secret access left on", try)
		}
	}
	audit, _ := os.ReadFile(e.dir + "/audit.log")
	if strings.Count(string(audit), `"event":"`+string(rotator.EventForeignStaged)+`"`) != 2 {
		t.Error("the foreign stops are not both in the audit trail")
	}
	// The owner removes the entry: the next rotation goes through.
	if err := sf.SetSecretAccess(ctx, true); err != nil {
		t.Fatal(err)
	}
	e.settingApplied()
	if err := sf.DeleteStaged(ctx, ref.ID, ids.id, foreign.ID); err != nil {
		t.Fatal(err)
	}
	if err := sf.SetSecretAccess(ctx, false); err != nil {
		t.Fatal(err)
	}
	if res, err := rt.Engine.Rotate(ctx, app, rotator.Request{Actor: operator}); err != nil || res.Outcome != rotator.OutcomeOK {
		t.Fatalf("after the entry was removed: %+v, %v", res, err)
	}
}
