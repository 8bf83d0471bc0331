//go:build integration

package integration

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// TestDaemonReplicas runs three `ecarotator run` processes against one
// real Vault and the simulator. The first replica is killed (SIGKILL, by
// the crashtest hook) between a POST staged and its Vault write; the two
// others start, wait for its leases to expire and finish that rotation from
// the journal; then the killed replica comes back and all three keep
// rotating on "@every" slots. The simulator's request log must show every
// app promoted exactly once per slot: never two promotes of one app less
// than a period apart, and at least a few slots served.
//
// The Dev Hub runs with secret_access: always_on (the simulator's setting
// on): in toggle mode the engine serialises an org's rotations on its
// secret-access ledger, which is tested elsewhere.
func TestDaemonReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("two minutes of real time")
	}
	const period = 15 * time.Second
	e := newEnv(t, envOptions{simSetup: func(c *sfsim.Config) {
		for i := range c.Orgs {
			if c.Orgs[i].DevHub {
				c.Orgs[i].SecretAccess = true
			}
		}
	}})
	cfgs := make([]string, 3)
	for i := range cfgs {
		cfgs[i] = e.writeDaemonConfig(fmt.Sprintf("replica%d", i), daemonConfig{
			Schedule: "@every 15s", Window: "3s", LockTTL: "6s", SecretAccess: "always_on", Concurrency: 2,
		})
	}
	// Each app is adopted and rotated once by hand, so every replica plans
	// from the same rotated_at.
	for app := range initial {
		e.cfgPath = cfgs[0]
		if code, _, _, stderr := e.cli(nil, "rotate", app, "--reason", "setup"); code != 0 {
			t.Fatalf("setup rotate %s: exit %d\n%s", app, code, stderr)
		}
	}
	rt := e.runtimeFor(cfgs[0])
	setup := e.promotes()

	// Replica 0 dies at its first rotation, after Salesforce staged the new
	// pair and before the pair reached Vault.
	r0 := e.startProc("replica0-crash", cfgs[0], "ECAROTATOR_CRASH_AT=after:stage")
	eventually(t, 3*period, "replica 0 to be killed mid-rotation", r0.exited)
	var victim string
	var journal rotator.JournalEntry
	for app := range initial {
		if j, _, err := rt.Vault.Load(t.Context(), app); err == nil {
			victim, journal = app, j
		} else if !errors.Is(err, rotator.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if victim == "" {
		t.Fatalf("replica 0 exited (%v) without leaving a journal:\n%s", r0.err, tail(r0.out.String(), 30))
	}
	t.Logf("replica 0 killed while rotating %s (journal step %s, rotation %s)", victim, journal.Step, journal.RotationID)

	r1 := e.startProc("replica1", cfgs[1])
	r2 := e.startProc("replica2", cfgs[2])
	eventually(t, 4*period, "the killed rotation to be finished by another replica", func() bool {
		_, _, err := rt.Vault.Load(t.Context(), victim)
		st, _, rerr := rt.Vault.ReadCredentials(t.Context(), "salesforce/"+victim)
		return errors.Is(err, rotator.ErrNotFound) && rerr == nil && st.RotationID == journal.RotationID
	})
	r0 = e.startProc("replica0", cfgs[0])
	// Three replicas side by side for a few slots.
	deadline := time.Now().Add(4 * period)
	eventually(t, 5*period, "four more periods", func() bool { return time.Now().After(deadline) })
	for _, p := range []*proc{r0, r1, r2} {
		p.stop(t)
		if p.err != nil {
			t.Errorf("%s exited with %v", p.name, p.err)
		}
	}

	// The replicas really competed: runs that found their slot served by
	// another replica, and rotations done by more than one replica.
	served, rotators := 0, 0
	for _, p := range []*proc{r0, r1, r2} {
		out := p.out.String()
		served += strings.Count(out, `"verdict":"SlotServed"`)
		n := strings.Count(out, `"msg":"rotation succeeded"`)
		if n > 0 {
			rotators++
		}
		t.Logf("%s: %d rotations succeeded, %d runs found the slot served", p.name, n, strings.Count(out, `"verdict":"SlotServed"`))
	}
	if served == 0 || rotators < 2 {
		t.Errorf("no competition seen: %d served slots skipped, %d replicas rotated", served, rotators)
	}

	all := e.promotes()
	for app := range initial {
		times := all[app][len(setup[app]):]
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
		if len(times) < 3 {
			t.Errorf("%s: %d promotes while three replicas ran, want at least 3", app, len(times))
		}
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap < period-time.Second {
				t.Errorf("%s: promotes %d and %d only %s apart (period %s): a slot was rotated twice", app, i-1, i, gap, period)
			}
		}
		// Vault's pair is Salesforce's primary and authenticates.
		if _, _, err := rt.Vault.Load(t.Context(), app); !errors.Is(err, rotator.ErrNotFound) {
			t.Errorf("%s: journal left behind (%v)", app, err)
		}
		st, _ := e.stored(rt, app)
		if got := e.consumer(app).Key; got != st.Current.Key {
			t.Errorf("%s: salesforce primary %s, vault current %s", app, got, st.Current.Key)
		}
		e.mustAuth(app+" after the replicas", st.Current, e.sim.TokenURL("devhub"))
		t.Logf("%s: %d promotes by the replicas", app, len(times))
	}
}
