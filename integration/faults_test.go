//go:build integration

package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// TestFaultMatrix injects each fault with the simulator or by taking Vault
// away, and checks the stated outcome: the rotation either completes
// (exactly one POST staged) or stops with the apps' Vault path still on a
// pair Salesforce accepts, the secret-access setting restored, and a later
// attempt completing the rotation.
func TestFaultMatrix(t *testing.T) {
	type fixture struct {
		e     *env
		clock *rotatortest.Clock
		rt    *wire.Runtime
		app   rotator.App
	}
	tests := []struct {
		name       string
		opts       envOptions
		faults     []sfsim.Fault
		setup      func(t *testing.T, f *fixture) // before the first attempt
		hook       func(f *fixture) func(string) error
		wantErr    error                          // nil: the first attempt succeeds
		beforeNext func(t *testing.T, f *fixture) // between a failed attempt and the next
	}{
		{
			name: "503 bursts on reads are retried and the rotation completes",
			faults: []sfsim.Fault{
				{Org: "devhub", Route: sfsim.RouteUsage, Kind: sfsim.FaultUnavailable, Count: 2},
				{Org: "devhub", Route: sfsim.RouteConsumer, Kind: sfsim.FaultUnavailable, Count: 2},
				{Org: "devhub", Route: sfsim.RouteStaged, Method: "GET", Kind: sfsim.FaultUnavailable, Count: 1},
			},
		},
		{
			name:    "REQUEST_LIMIT_EXCEEDED on POST staged stops the attempt with nothing lost",
			faults:  []sfsim.Fault{{Org: "devhub", Route: sfsim.RouteStaged, Method: "POST", Kind: sfsim.FaultLimit, Count: 1}},
			wantErr: rotator.ErrRateLimited,
		},
		{
			name:   "a connection reset after POST staged was applied is reconciled without a second POST",
			faults: []sfsim.Fault{{Org: "devhub", Route: sfsim.RouteStaged, Method: "POST", Kind: sfsim.FaultResetAfter, Count: 1}},
		},
		{
			name:   "a connection reset after PATCH rotate was applied is reconciled",
			faults: []sfsim.Fault{{Org: "devhub", Route: sfsim.RouteStagedItem, Method: "PATCH", Kind: sfsim.FaultResetAfter, Count: 1}},
		},
		{
			name:   "a connection reset before PATCH rotate is reconciled and the staged pair promoted",
			faults: []sfsim.Fault{{Org: "devhub", Route: sfsim.RouteStagedItem, Method: "PATCH", Kind: sfsim.FaultResetBefore, Count: 1}},
		},
		{
			name: "propagation delay beyond the verify timeout leaves Vault on the working previous pair",
			opts: envOptions{verifyTO: "30s"},
			setup: func(t *testing.T, f *fixture) {
				f.e.sim.SetPropagationDelay(time.Hour)
			},
			wantErr: rotator.ErrVerifyFailed,
			beforeNext: func(t *testing.T, f *fixture) {
				f.e.sim.SetPropagationDelay(0) // the new pair has propagated
			},
		},
		{
			name: "Vault down during persist (after the POST staged response) loses nothing",
			opts: envOptions{persistent: true, lockTTL: "2s"},
			hook: func(f *fixture) func(string) error {
				return func(p string) error {
					if p == "after:stage" {
						f.e.vault.Stop()
					}
					return nil
				}
			},
			wantErr: rotator.ErrUnreachable,
			beforeNext: func(t *testing.T, f *fixture) {
				f.e.vault.Restart(t)
			},
		},
		{
			name: "Vault down during commit keeps apps on the previous pair until the retry commits",
			opts: envOptions{persistent: true, lockTTL: "2s"},
			hook: func(f *fixture) func(string) error {
				return func(p string) error {
					if p == "before:write_credentials" {
						f.e.vault.Stop()
					}
					return nil
				}
			},
			wantErr: rotator.ErrUnreachable,
			beforeNext: func(t *testing.T, f *fixture) {
				f.e.vault.Restart(t)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fixture{e: newEnv(t, tt.opts), clock: rotatortest.NewClock(time.Now())}
			f.e.sim.SetFaults(tt.faults)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			newRuntime := func(hook func(string) error, holder string) *wire.Runtime {
				return f.e.runtime(wire.RuntimeOptions{
					Clock:  f.clock,
					Hook:   hook,
					Holder: holder,
					Sleep:  func(ctx context.Context, d time.Duration) error { f.clock.Advance(d); return ctx.Err() },
				})
			}
			var hook func(string) error
			if tt.hook != nil {
				hook = tt.hook(f)
			}
			f.rt = newRuntime(hook, "replica-1")
			f.app, _ = f.rt.App("billing")
			old := initial["billing"]

			res, err := f.rt.Engine.Rotate(t.Context(), f.app, rotator.Request{Actor: operator})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("rotate: %+v %v\n%s", res, err, f.e.logs)
				}
			} else {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("rotate: got %v, want %v\n%s", err, tt.wantErr, f.e.logs)
				}
				if tt.beforeNext != nil {
					tt.beforeNext(t, f)
				}
				// What applications read is still a pair Salesforce accepts (I1).
				rt := newRuntime(nil, "replica-2")
				sc, _ := f.e.stored(rt, "billing")
				if sc.Current.Key != old.Key {
					t.Errorf("after a failed attempt Vault's current pair changed to %s", sc.Current.Key)
				}
				f.e.mustAuth("I1 after a failed attempt", sc.Current, f.app.VerifyURLs...)
				if f.e.sim.SecretAccess("devhub") {
					t.Error("I5: secret access left on after the failed attempt")
				}
				// The next attempt (past its backoff, after the lease lapsed) completes.
				f.clock.Advance(24 * time.Hour)
				deadline := time.Now().Add(30 * time.Second)
				for {
					res, err = rt.Engine.Rotate(t.Context(), f.app, rotator.Request{Actor: operator})
					if !errors.Is(err, rotator.ErrLocked) || time.Now().After(deadline) {
						break
					}
					time.Sleep(100 * time.Millisecond) // polling the crashed holder's lease expiry
				}
				if err != nil {
					t.Fatalf("next attempt: %+v %v\n%s", res, err, f.e.logs)
				}
				f.rt = rt
			}
			sc, _ := f.e.stored(f.rt, "billing")
			sf := f.e.consumer("billing")
			if sc.Current.Key == old.Key || sc.Current.Key != sf.Key || sc.Current.Secret.Reveal() != sf.Secret {
				t.Fatalf("Vault current %s, Salesforce primary %s, initial %s", sc.Current.Key, sf.Key, old.Key)
			}
			f.e.mustAuth("new pair", sc.Current, f.app.VerifyURLs...)
			if n := f.e.stagePosts(); n != 1 {
				t.Errorf("Salesforce applied %d POST staged, want exactly 1", n)
			}
			if sf.Staged != nil && sf.Staged.State == sfsim.StateActive {
				t.Errorf("an Active staged credential was left over")
			}
			if f.e.sim.SecretAccess("devhub") {
				t.Error("I5: secret access left on")
			}
		})
	}
}
