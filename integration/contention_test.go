//go:build integration

package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
)

// TestEveryAppOfADevHubRotatesAtOnceInToggleMode is issue 14's item 5 on
// the real Vault: the three apps of one Dev Hub (toggle mode, strict
// simulator, 2 s setting delay) rotate at the same time, each from its own
// replica, sharing one opening of the secret-access setting through the
// ledger in Vault. Meeting another rotation's opening or restore is
// waiting: every app ends rotated, no attempt is recorded as failed, none
// is orphaned, no journal is left and the setting ends off.
func TestEveryAppOfADevHubRotatesAtOnceInToggleMode(t *testing.T) {
	e := newEnv(t, envOptions{})
	names := []string{"billing", "support", "analytics"}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	waits := make([]int, len(names))
	rts := make([]*wire.Runtime, len(names))
	for i, name := range names {
		rts[i] = e.runtime(wire.RuntimeOptions{Holder: "replica-" + name})
	}
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app, err := rts[i].App(name)
			if err != nil {
				errs[i] = err
				return
			}
			for ctx.Err() == nil {
				res, err := rts[i].Engine.Rotate(ctx, app, rotator.Request{Actor: operator})
				if err == nil && res.Outcome == rotator.OutcomeOK {
					errs[i] = nil
					return
				}
				errs[i] = err
				if !errors.Is(err, rotator.ErrLocked) {
					return // a real failure: reported below
				}
				waits[i]++ // another rotation holds the setting's opening or restore: look again
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s did not rotate (after %d waits): %v", names[i], waits[i], err)
		}
	}
	t.Logf("waits for another rotation: %v", waits)
	for i, name := range names {
		sc, _ := e.stored(rts[i], name)
		if sc.Current.Key == initial[name].Key || sc.Current.Key != e.consumer(name).Key {
			t.Errorf("%s: vault holds %s, salesforce's primary is %s (initial %s)", name, sc.Current.Key, e.consumer(name).Key, initial[name].Key)
		}
		if _, _, err := rts[i].Vault.Load(t.Context(), name); !errors.Is(err, rotator.ErrNotFound) {
			t.Errorf("%s: journal left behind (%v)", name, err)
		}
	}
	if e.sim.SecretAccess("devhub") {
		t.Error("I5: secret access left on")
	}
	trail, err := os.ReadFile(filepath.Join(e.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []rotator.EventType{rotator.EventRotationFailed, rotator.EventRotationOrphaned} {
		if strings.Contains(string(trail), `"`+string(bad)+`"`) {
			t.Errorf("the audit trail records %s: contention must not count as a failure", bad)
		}
	}
}
