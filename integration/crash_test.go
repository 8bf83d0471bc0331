//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// crashPoints are the engine's hook points of a first rotation (which also
// adopts the hand-made Vault path): every step boundary and both sides of
// every external mutation. "after:stage" is the window between the POST
// staged response and the Vault write.
var crashPoints = []string{
	"after:lock",
	"step:preflight",
	"before:open_secret_access", "after:open_secret_access", "step:expose",
	"before:adopt", "after:adopt",
	"before:stage", "after:stage", "step:stage",
	"step:persist",
	"before:promote", "after:promote", "step:rotate",
	"step:verify",
	"before:write_credentials", "after:write_credentials", "step:commit",
	"before:close_secret_access", "after:close_secret_access",
	"before:clear_journal",
}

// TestCrashAtEveryPointResumesExactlyOnce kills a real `ecarotator rotate`
// process with SIGKILL at each point, then runs it again. Afterwards:
// I1 Vault's current pair authenticates everywhere; I2 it is Salesforce's
// primary (nothing was held only in memory) and no Active staged credential
// is left over; I5 the secret-access setting is back at its prior value;
// the simulator applied exactly one POST staged; the audit chain verifies.
func TestCrashAtEveryPointResumesExactlyOnce(t *testing.T) {
	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t, envOptions{lockTTL: "2s"})
			code, killed, _, errOut := e.cli([]string{"ECAROTATOR_CRASH_AT=" + point}, "rotate", "billing", "--reason", "crash test")
			if !killed {
				t.Fatalf("the process was not killed at %s (exit %d): the point was never reached\n%s", point, code, errOut)
			}

			// Restart until the crashed holder's lease has expired.
			deadline := time.Now().Add(30 * time.Second)
			var out string
			for {
				code, _, out, errOut = e.cli(nil, "rotate", "billing", "--reason", "after crash")
				if code == 0 || time.Now().After(deadline) || !strings.Contains(errOut, rotator.ErrLocked.Error()) {
					break
				}
				time.Sleep(200 * time.Millisecond) // polling the lease's expiry, bounded by deadline
			}
			if code != 0 {
				t.Fatalf("rerun after crash at %s: exit %d\nstdout:\n%s\nstderr:\n%s", point, code, out, errOut)
			}

			rt := e.runtime(wire.RuntimeOptions{NoAudit: true})
			app, _ := rt.App("billing")
			sc, meta := e.stored(rt, "billing")
			sf := e.consumer("billing")
			old := initial["billing"]
			if sc.Current.Key == old.Key {
				t.Fatalf("I1: no rotation happened")
			}
			e.mustAuth("I1 current pair", sc.Current, app.VerifyURLs...)
			if sc.Current.Key != sf.Key || sc.Current.Secret.Reveal() != sf.Secret {
				t.Errorf("I2: Vault current %s differs from Salesforce's primary %s", sc.Current.Key, sf.Key)
			}
			if !meta.Managed {
				t.Error("path not marked managed")
			}
			if sf.Staged != nil && sf.Staged.State == sfsim.StateActive {
				t.Errorf("an Active staged credential %s was left over", sf.Staged.ID)
			}
			if e.sim.SecretAccess("devhub") {
				t.Error("I5: secret access left on; its prior value was off")
			}
			if n := e.stagePosts(); n != 1 {
				t.Errorf("Salesforce applied %d POST staged, want exactly 1", n)
			}
			if sc.Previous.Key != old.Key {
				t.Errorf("previous pair in Vault = %q, want the initial key", sc.Previous.Key)
			}
			if _, _, err := rt.Vault.Load(t.Context(), "billing"); err == nil {
				t.Error("journal not cleared after the rotation completed")
			}
			if code, _, out, errOut := e.cli(nil, "audit", "verify"); code != 0 {
				t.Errorf("audit verify after crash: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}
