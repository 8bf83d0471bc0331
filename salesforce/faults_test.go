package salesforce_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

var updateFaults = flag.Bool("update-faults", false, "rewrite FAULTS.md from the fault table")

// Outcomes of a fault, as the engine sees them.
const (
	outcomeRetriedOK  = "retried, succeeded"
	outcomeRetriedOut = "retried, gave up"
	outcomeFinal      = "final"
	outcomeReconcile  = "needs reconcile"
)

// faultEnv is what a fault scenario runs against.
type faultEnv struct {
	sim    *sfsim.Sim
	c      *salesforce.Client
	app    rotator.AppRef
	cons   rotator.Consumer
	staged rotator.StagedCredential // set when the scenario needs a staged entry
}

type faultCase struct {
	name  string
	call  string // the client call, for the table
	fault sfsim.Fault
	stage bool // stage a credential before injecting the fault
	// timeout is the client's RequestTimeout (default 10s, generous so a
	// loaded CI machine does not add spurious retries).
	timeout time.Duration
	run     func(ctx context.Context, e *faultEnv) error
	// want is the sentinel the error must match (nil: success).
	want    error
	outcome string
	// minCalls..maxCalls requests must reach the faulted route (net/http
	// may replay a GET once on a reset).
	minCalls, maxCalls int
	// reconcile re-reads Salesforce's state after an ambiguous failure and
	// checks what the engine would find; its text goes in the table.
	reconcile     func(t *testing.T, ctx context.Context, e *faultEnv)
	reconcileText string
}

func faultCases() []faultCase {
	findApp := func(ctx context.Context, e *faultEnv) error { _, err := e.c.FindApp(ctx, targetECA); return err }
	creds := func(ctx context.Context, e *faultEnv) error {
		_, err := e.c.Credentials(ctx, e.app.ID, e.cons.ID)
		return err
	}
	staged := func(ctx context.Context, e *faultEnv) error {
		_, err := e.c.Staged(ctx, e.app.ID, e.cons.ID)
		return err
	}
	stage := func(ctx context.Context, e *faultEnv) error {
		_, err := e.c.Stage(ctx, e.app.ID, e.cons.ID)
		return err
	}
	promote := func(ctx context.Context, e *faultEnv) error {
		_, err := e.c.Promote(ctx, e.app.ID, e.cons.ID, e.staged.ID)
		return err
	}
	del := func(ctx context.Context, e *faultEnv) error {
		return e.c.DeleteStaged(ctx, e.app.ID, e.cons.ID, e.staged.ID)
	}
	setAccess := func(ctx context.Context, e *faultEnv) error { return e.c.SetSecretAccess(ctx, false) }
	verify := func(ctx context.Context, e *faultEnv) error {
		return salesforce.NewVerifier(salesforce.VerifierOptions{}).Verify(ctx, e.sim.TokenURL(devhub), rotator.Credentials{Key: targetKey, Secret: rotator.NewSecret(targetSecret)})
	}
	slot := func(t *testing.T, ctx context.Context, e *faultEnv) []rotator.StagedCredential {
		t.Helper()
		s, err := e.c.Staged(ctx, e.app.ID, e.cons.ID)
		if err != nil {
			t.Fatalf("re-read staged: %v", err)
		}
		return s
	}
	primary := func(t *testing.T, ctx context.Context, e *faultEnv) string {
		t.Helper()
		k, err := e.c.PrimaryKey(ctx, e.app.ID, e.cons.ID)
		if err != nil {
			t.Fatalf("re-read primary: %v", err)
		}
		return k
	}
	f := func(org, method, route, kind string, count int) sfsim.Fault {
		return sfsim.Fault{Org: org, Method: method, Route: route, Kind: kind, Count: count}
	}
	return []faultCase{
		{name: "a 503 from the login host is retried", call: "token (JWT)", fault: f(sfsim.LoginHost, "POST", sfsim.RouteToken, sfsim.FaultUnavailable, 1), run: findApp, outcome: outcomeRetriedOK, minCalls: 2, maxCalls: 2},
		{name: "a reset on the token request is retried", call: "token (JWT)", fault: f(sfsim.LoginHost, "POST", sfsim.RouteToken, sfsim.FaultResetBefore, 1), run: findApp, outcome: outcomeRetriedOK, minCalls: 2, maxCalls: 2},
		// Strict usage lists only the rotator's own ECA (the one with a token):
		// page 0 (two 503s, then 200) and the empty page 1, then SOQL.
		{name: "two 503s on usage are retried", call: "GET usage", fault: f(devhub, "GET", sfsim.RouteUsage, sfsim.FaultUnavailable, 2), run: findApp, outcome: outcomeRetriedOK, minCalls: 4, maxCalls: 4},
		{name: "a lasting 503 on usage gives up after the backoff bound", call: "GET usage", fault: f(devhub, "GET", sfsim.RouteUsage, sfsim.FaultUnavailable, 0), run: findApp, want: rotator.ErrUnreachable, outcome: outcomeRetriedOut, minCalls: 4, maxCalls: 4},
		{name: "a reset before reading credentials is retried", call: "GET credentials", fault: f(devhub, "GET", sfsim.RouteConsumer, sfsim.FaultResetBefore, 1), run: creds, outcome: outcomeRetriedOK, minCalls: 2, maxCalls: 2},
		{name: "a reset after reading credentials is retried", call: "GET credentials", fault: f(devhub, "GET", sfsim.RouteConsumer, sfsim.FaultResetAfter, 1), run: creds, outcome: outcomeRetriedOK, minCalls: 2, maxCalls: 2},
		{name: "a 503 on GET staged is retried", call: "GET staged", fault: f(devhub, "GET", sfsim.RouteStaged, sfsim.FaultUnavailable, 1), run: staged, outcome: outcomeRetriedOK, minCalls: 2, maxCalls: 2},
		{name: "a slow answer past the request timeout is retried", call: "GET credentials", fault: sfsim.Fault{Org: devhub, Method: "GET", Route: sfsim.RouteConsumer, Kind: sfsim.FaultLatency, Count: 1, Latency: sfsim.Duration(3 * time.Second)}, timeout: time.Second, run: creds, outcome: outcomeRetriedOK, minCalls: 2, maxCalls: 2},
		{name: "the API limit on a read is final", call: "GET credentials", fault: f(devhub, "GET", sfsim.RouteConsumer, sfsim.FaultLimit, 0), run: creds, want: rotator.ErrRateLimited, outcome: outcomeFinal, minCalls: 1, maxCalls: 1},
		{name: "the API limit on POST staged is final, not ambiguous", call: "POST staged", fault: f(devhub, "POST", sfsim.RouteStaged, sfsim.FaultLimit, 0), run: stage, want: rotator.ErrRateLimited, outcome: outcomeFinal, minCalls: 1, maxCalls: 1},
		{name: "a 503 on POST staged is ambiguous and nothing was staged", call: "POST staged", fault: f(devhub, "POST", sfsim.RouteStaged, sfsim.FaultUnavailable, 1), run: stage, want: rotator.ErrAmbiguous, outcome: outcomeReconcile, minCalls: 1, maxCalls: 1,
			reconcileText: "GET staged: slot empty → stage again",
			reconcile: func(t *testing.T, ctx context.Context, e *faultEnv) {
				if s := slot(t, ctx, e); len(s) != 0 {
					t.Errorf("slot %+v, want empty", s)
				}
			}},
		{name: "a reset before POST staged is ambiguous and nothing was staged", call: "POST staged", fault: f(devhub, "POST", sfsim.RouteStaged, sfsim.FaultResetBefore, 1), run: stage, want: rotator.ErrAmbiguous, outcome: outcomeReconcile, minCalls: 1, maxCalls: 1,
			reconcileText: "GET staged: slot empty → stage again",
			reconcile: func(t *testing.T, ctx context.Context, e *faultEnv) {
				if s := slot(t, ctx, e); len(s) != 0 {
					t.Errorf("slot %+v, want empty", s)
				}
			}},
		{name: "a reset after POST staged is ambiguous and the credential exists", call: "POST staged", fault: f(devhub, "POST", sfsim.RouteStaged, sfsim.FaultResetAfter, 1), run: stage, want: rotator.ErrAmbiguous, outcome: outcomeReconcile, minCalls: 1, maxCalls: 1,
			reconcileText: "GET staged: an Active entry we never saw → use it if GET returns its secret, else DELETE it and stage again",
			reconcile: func(t *testing.T, ctx context.Context, e *faultEnv) {
				if s := slot(t, ctx, e); len(s) != 1 || s[0].Status != rotator.StagedActive {
					t.Errorf("slot %+v, want one Active entry", s)
				}
			}},
		{name: "a 503 on PATCH rotate is ambiguous and nothing rotated", call: "PATCH rotate", stage: true, fault: f(devhub, "PATCH", sfsim.RouteStagedItem, sfsim.FaultUnavailable, 1), run: promote, want: rotator.ErrAmbiguous, outcome: outcomeReconcile, minCalls: 1, maxCalls: 1,
			reconcileText: "GET credentials: primary is still the old key, slot still Active → PATCH again",
			reconcile: func(t *testing.T, ctx context.Context, e *faultEnv) {
				if k := primary(t, ctx, e); k != targetKey {
					t.Errorf("primary %q, want the old key", k)
				}
				if s := slot(t, ctx, e); len(s) != 1 || s[0].Status != rotator.StagedActive {
					t.Errorf("slot %+v, want the Active entry", s)
				}
			}},
		{name: "a reset after PATCH rotate is ambiguous and the rotation happened", call: "PATCH rotate", stage: true, fault: f(devhub, "PATCH", sfsim.RouteStagedItem, sfsim.FaultResetAfter, 1), run: promote, want: rotator.ErrAmbiguous, outcome: outcomeReconcile, minCalls: 1, maxCalls: 1,
			reconcileText: "GET credentials: primary is the staged key, slot Rotated → rotation done, go on to verify",
			reconcile: func(t *testing.T, ctx context.Context, e *faultEnv) {
				if k := primary(t, ctx, e); k != e.staged.Key {
					t.Errorf("primary %q, want the staged key", k)
				}
				if s := slot(t, ctx, e); len(s) != 1 || s[0].Status != rotator.StagedRotated {
					t.Errorf("slot %+v, want the Rotated previous pair", s)
				}
			}},
		{name: "a reset before DELETE staged is ambiguous and the entry remains", call: "DELETE staged", stage: true, fault: f(devhub, "DELETE", sfsim.RouteStagedItem, sfsim.FaultResetBefore, 1), run: del, want: rotator.ErrAmbiguous, outcome: outcomeReconcile, minCalls: 1, maxCalls: 1,
			reconcileText: "GET staged: entry still there → DELETE again",
			reconcile: func(t *testing.T, ctx context.Context, e *faultEnv) {
				if s := slot(t, ctx, e); len(s) != 1 {
					t.Errorf("slot %+v, want the entry", s)
				}
			}},
		{name: "a reset after DELETE staged is ambiguous and the entry is gone", call: "DELETE staged", stage: true, fault: f(devhub, "DELETE", sfsim.RouteStagedItem, sfsim.FaultResetAfter, 1), run: del, want: rotator.ErrAmbiguous, outcome: outcomeReconcile, minCalls: 1, maxCalls: 1,
			reconcileText: "GET staged: slot empty (a repeated DELETE answers ErrNotFound) → done",
			reconcile: func(t *testing.T, ctx context.Context, e *faultEnv) {
				if s := slot(t, ctx, e); len(s) != 0 {
					t.Errorf("slot %+v, want empty", s)
				}
				if err := e.c.DeleteStaged(ctx, e.app.ID, e.cons.ID, e.staged.ID); !errors.Is(err, rotator.ErrNotFound) {
					t.Errorf("repeated DELETE = %v, want ErrNotFound", err)
				}
			}},
		{name: "a 503 on updateMetadata is retried because setting a value is idempotent", call: "SOAP updateMetadata", fault: f(devhub, "POST", sfsim.RouteSOAP, sfsim.FaultUnavailable, 1), run: setAccess, outcome: outcomeRetriedOK, minCalls: 2, maxCalls: 2},
		{name: "a reset after updateMetadata is retried because setting a value is idempotent", call: "SOAP updateMetadata", fault: f(devhub, "POST", sfsim.RouteSOAP, sfsim.FaultResetAfter, 1), run: setAccess, outcome: outcomeRetriedOK, minCalls: 2, maxCalls: 2},
		{name: "a 503 on a verification token request is unreachable, not a rejection", call: "Verify (client credentials)", fault: f(devhub, "POST", sfsim.RouteToken, sfsim.FaultUnavailable, 1), run: verify, want: rotator.ErrUnreachable, outcome: "not retried by Verify (VerifyWithRetry retries)", minCalls: 1, maxCalls: 1},
	}
}

func TestFaultTable(t *testing.T) {
	cases := faultCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, nil)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			c, logs := simClient(t, sim, func(o *salesforce.Options) { o.RequestTimeout = timeout })
			e := &faultEnv{sim: sim, c: c}
			ctx := t.Context()
			if tc.fault.Route != sfsim.RouteToken || tc.fault.Org != sfsim.LoginHost {
				e.app, e.cons = target(t, c)
			} else {
				// Resolve ids through a throwaway client so this one still
				// has to authenticate under the fault.
				other, _ := simClient(t, sim)
				e.app, e.cons = target(t, other)
			}
			if tc.stage {
				s, err := c.Stage(ctx, e.app.ID, e.cons.ID)
				if err != nil {
					t.Fatal(err)
				}
				e.staged = s
			}
			sim.ResetRequests()
			sim.SetFaults([]sfsim.Fault{tc.fault})
			err := tc.run(ctx, e)
			sim.SetFaults(nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.outcome != outcomeReconcile && errors.Is(err, rotator.ErrAmbiguous) {
				t.Errorf("err = %v is ambiguous, want %s", err, tc.outcome)
			}
			if got := countRequests(sim, tc.fault.Org, tc.fault.Method, tc.fault.Route); got < tc.minCalls || got > tc.maxCalls {
				t.Errorf("requests on the faulted route = %d, want %d..%d", got, tc.minCalls, tc.maxCalls)
			}
			if err != nil {
				noLeak(t, "error", err.Error(), e.staged.Secret.Reveal())
			}
			for _, l := range logs.All() {
				noLeak(t, "log", l.Message+fmt.Sprint(l.ContextMap()), e.staged.Secret.Reveal())
			}
			if tc.reconcile != nil {
				tc.reconcile(t, ctx, e)
			}
		})
	}
	t.Run("FAULTS.md matches the table", func(t *testing.T) {
		want := faultsMarkdown(cases)
		if *updateFaults {
			if err := os.WriteFile("FAULTS.md", []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile("FAULTS.md")
		if err != nil {
			t.Fatalf("%v (run go test -run TestFaultTable -update-faults ./salesforce/)", err)
		}
		if string(got) != want {
			t.Errorf("FAULTS.md is stale; run go test -run TestFaultTable -update-faults ./salesforce/")
		}
	})
}

func sentinelName(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{
		{rotator.ErrAmbiguous, "ErrAmbiguous"}, {rotator.ErrRateLimited, "ErrRateLimited"}, {rotator.ErrUnreachable, "ErrUnreachable"},
		{rotator.ErrRejected, "ErrRejected"}, {rotator.ErrNotFound, "ErrNotFound"}, {rotator.ErrPermission, "ErrPermission"}, {rotator.ErrSlotOccupied, "ErrSlotOccupied"},
	} {
		if err == s.err {
			return "`rotator." + s.name + "`"
		}
	}
	return "— (success)"
}

func faultsMarkdown(cases []faultCase) string {
	var b strings.Builder
	b.WriteString("# Salesforce client: fault table\n\n")
	b.WriteString("Generated from `TestFaultTable` in `faults_test.go`, which runs every row against the simulator\n")
	b.WriteString("(`salesforce/sfsim`) over real loopback HTTP. Regenerate with\n")
	b.WriteString("`go test -run TestFaultTable -update-faults ./salesforce/`.\n\n")
	b.WriteString("Retries use the client's backoff (4 attempts in the test). POST staged, PATCH rotate and DELETE staged are\n")
	b.WriteString("never retried once they may have reached Salesforce: the error matches `rotator.ErrAmbiguous` (and\n")
	b.WriteString("`rotator.ErrUnreachable`) and the engine re-reads state as the last column says. A connection that\n")
	b.WriteString("was provably never opened (dial failure) is retried even for those calls.\n\n")
	b.WriteString("| scenario | call | injected fault | requests | error matches | outcome | reconcile by |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, c := range cases {
		fault := c.fault.Kind
		if c.fault.Count > 0 {
			fault += fmt.Sprintf(" ×%d", c.fault.Count)
		} else {
			fault += " (every request)"
		}
		calls := fmt.Sprint(c.minCalls)
		if c.maxCalls != c.minCalls {
			calls += fmt.Sprintf("–%d", c.maxCalls)
		}
		rec := c.reconcileText
		if rec == "" {
			rec = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s on %s %s | %s | %s | %s | %s |\n", c.name, c.call, fault, c.fault.Method, c.fault.Route, calls, sentinelName(c.want), c.outcome, rec)
	}
	b.WriteString("\nError class → sentinel: transient → `ErrUnreachable`; rate-limited → `ErrRateLimited`; auth → `ErrRejected`;\n")
	b.WriteString("permission → `ErrPermission`; not-found → `ErrNotFound`; slot-occupied → `ErrSlotOccupied`; ambiguous →\n")
	b.WriteString("`ErrAmbiguous` and `ErrUnreachable`; config → `ErrMisconfigured`; final → none (inspect `*salesforce.APIError`).\n")
	b.WriteString(metadataFaultsMarkdown()) // mdapi_faults_test.go
	b.WriteString(uncertaintyMarkdown())
	return b.String()
}
