package salesforce_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// mdFaultCase is one row of the metadata-strategy fault table: a fault or
// behaviour switch of the simulator, the client call it hits, and what the
// engine does about the outcome.
type mdFaultCase struct {
	name     string
	call     string
	injected string                // for the table
	fault    *sfsim.Fault          // a generic fault, armed just before the call
	behavior func(*sfsim.Behavior) // a switch, set at start
	run      func(ctx context.Context, e *mdFaultEnv) error
	want     error // sentinel the error matches (nil: success)
	outcome  string
	// check inspects Salesforce's state afterwards, as the engine would.
	check     func(t *testing.T, ctx context.Context, e *mdFaultEnv)
	reconcile string
}

type mdFaultEnv struct {
	sim *sfsim.Sim
	c   *salesforce.Client
	s   rotator.OAuthSettings // retrieved before the fault
	id  string                // deploy id when the call returned one
}

func metadataFaultCases() []mdFaultCase {
	deploy := func(ctx context.Context, e *mdFaultEnv) error {
		id, err := e.c.Deploy(ctx, e.s, false, true)
		e.id = id
		return err
	}
	deployAndPoll := func(polls int) func(ctx context.Context, e *mdFaultEnv) error {
		return func(ctx context.Context, e *mdFaultEnv) error {
			id, err := e.c.Deploy(ctx, e.s, false, true)
			if err != nil {
				return err
			}
			e.id = id
			for range polls {
				st, err := e.c.DeployStatus(ctx, id)
				if err != nil {
					return err
				}
				if st.Done && !st.Success {
					return fmt.Errorf("%v: %w", st.Errors, rotator.ErrDeployFailed)
				}
				if st.Done {
					return nil
				}
			}
			return rotator.ErrDeployTimeout
		}
	}
	retrieve := func(ctx context.Context, e *mdFaultEnv) error {
		s, err := e.c.GlobalOAuth(ctx, targetECA)
		if err == nil && s.Secret.IsZero() {
			return rotator.ErrSecretUnreadable
		}
		return err
	}
	rotated := func(want bool) func(t *testing.T, ctx context.Context, e *mdFaultEnv) {
		return func(t *testing.T, ctx context.Context, e *mdFaultEnv) {
			t.Helper()
			cs, err := e.sim.ConsumerState(devhub, targetECA, consumerID(t, e.sim))
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.Secret != targetSecret; got != want {
				t.Errorf("secret rotated = %v, want %v", got, want)
			}
		}
	}
	soap := func(kind string) *sfsim.Fault {
		return &sfsim.Fault{Org: devhub, Method: "POST", Route: sfsim.RouteSOAP, Kind: kind, Count: 1}
	}
	return []mdFaultCase{
		{name: "a deploy with a component error fails without effect", call: "deploy + checkDeployStatus", injected: "deployComponentError",
			behavior: func(b *sfsim.Behavior) { b.DeployComponentError = "Invalid callback URL" }, run: deployAndPoll(5), want: rotator.ErrDeployFailed,
			outcome: "final (status Failed, componentFailures)", check: rotated(false),
			reconcile: "nothing changed (rollbackOnError): attempt fails with the problems, settings restored, backoff"},
		{name: "a deploy that never finishes is bounded", call: "deploy + checkDeployStatus", injected: "deployNeverFinishes",
			behavior: func(b *sfsim.Behavior) { b.DeployNeverFinishes = true }, run: deployAndPoll(5), want: rotator.ErrDeployTimeout,
			outcome: "polling bounded by deploy_timeout", check: rotated(false),
			reconcile: "journal keeps the deploy id; every later attempt polls that id, never deploys again"},
		{name: "a reset after the deploy was accepted is ambiguous and the deploy runs", call: "deploy", injected: "deployResetAfterAccept ×1",
			behavior: func(b *sfsim.Behavior) { b.DeployResetAfterAccept = 1 }, run: deploy, want: rotator.ErrAmbiguous,
			outcome: "needs reconcile", check: rotated(true),
			reconcile: "re-read the pair: secret fingerprint differs from the journal's → the deploy ran; read and persist it (one deploy)"},
		{name: "a 503 on deploy is ambiguous and nothing was deployed", call: "deploy", injected: "503 ×1 on POST soap",
			fault: soap(sfsim.FaultUnavailable), run: deploy, want: rotator.ErrAmbiguous, outcome: "needs reconcile", check: rotated(false),
			reconcile: "re-read the pair until deploy_timeout: unchanged → the deploy never ran → deploy once more"},
		{name: "a reset before the deploy is ambiguous and nothing was deployed", call: "deploy", injected: "reset-before ×1 on POST soap",
			fault: soap(sfsim.FaultResetBefore), run: deploy, want: rotator.ErrAmbiguous, outcome: "needs reconcile", check: rotated(false),
			reconcile: "re-read the pair until deploy_timeout: unchanged → the deploy never ran → deploy once more"},
		{name: "a 503 on retrieve is retried because a retrieve only reads", call: "retrieve", injected: "503 ×1 on POST soap",
			fault: soap(sfsim.FaultUnavailable), run: retrieve, outcome: outcomeRetriedOK, check: rotated(false)},
		{name: "a retrieve without the secret cannot read the new pair", call: "retrieve", injected: "consumerSecretInRetrieve: false",
			behavior: func(b *sfsim.Behavior) { b.ConsumerSecretInRetrieve = new(bool) }, run: retrieve, want: rotator.ErrSecretUnreadable,
			outcome: "secret absent", check: rotated(false),
			reconcile: "secret_read auto reads by REST; secret_read metadata refuses before any deploy (read probe)"},
		{name: "the staged endpoints refuse a packaged ECA", call: "GET staged", injected: "distributionState: Packaged",
			run: func(ctx context.Context, e *mdFaultEnv) error {
				app, cons := targetFor(ctx, e.c)
				_, err := e.c.Staged(ctx, app.ID, cons.ID)
				return err
			}, want: rotator.ErrPackagedStaged, outcome: outcomeFinal, check: rotated(false),
			reconcile: "strategy auto picks metadata (a cached Local is read again on this refusal); strategy staged fails in preflight naming strategy: metadata"},
	}
}

func targetFor(ctx context.Context, c *salesforce.Client) (rotator.AppRef, rotator.Consumer) {
	app, _ := c.FindApp(ctx, targetECA)
	cons, _ := c.Consumers(ctx, app.ID)
	if len(cons) == 0 {
		return app, rotator.Consumer{}
	}
	return app, cons[0]
}

func TestMetadataFaultTable(t *testing.T) {
	for _, tc := range metadataFaultCases() {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, func(cfg *sfsim.Config) {
				packaged(cfg)
				if tc.behavior != nil {
					tc.behavior(&cfg.Behavior)
				}
			})
			c, logs := simClient(t, sim)
			ctx := t.Context()
			e := &mdFaultEnv{sim: sim, c: c}
			if !strings.HasPrefix(tc.call, "retrieve") {
				s, err := c.GlobalOAuth(ctx, targetECA)
				if err != nil {
					t.Fatal(err)
				}
				e.s = s
			}
			if tc.fault != nil {
				sim.SetFaults([]sfsim.Fault{*tc.fault})
			}
			err := tc.run(ctx, e)
			sim.SetFaults(nil)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("err = %v, want success", err)
			case tc.want == rotator.ErrPackagedStaged:
				var ae *salesforce.APIError
				if !errors.Is(err, tc.want) || !errors.As(err, &ae) || ae.Class != salesforce.ClassFinal || ae.Code != "INVALID_OPERATION" {
					t.Fatalf("err = %v, want a final APIError matching ErrPackagedStaged", err)
				}
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if deploys := len(sim.MetadataDeploys()); strings.HasPrefix(tc.call, "deploy") && tc.fault == nil && deploys != 1 {
				t.Errorf("deploys = %d, want exactly 1", deploys)
			}
			if err != nil {
				noLeak(t, "error", err.Error())
			}
			for _, l := range logs.All() {
				noLeak(t, "log", l.Message+fmt.Sprint(l.ContextMap()))
			}
			tc.check(t, ctx, e)
		})
	}
}

// metadataFaultsMarkdown is the metadata section of FAULTS.md.
func metadataFaultsMarkdown() string {
	var b strings.Builder
	b.WriteString("\n## Metadata strategy (packaged ECAs)\n\n")
	b.WriteString("Generated from `metadataFaultCases` in `mdapi_faults_test.go` (`TestMetadataFaultTable` runs every row\n")
	b.WriteString("against the simulator; engine-level recovery of each row is in `engine_metadata_test.go` and the SIGKILL tests\n")
	b.WriteString("in `integration/metadata_test.go`). A deploy is never retried by the client; retrieve, listMetadata,\n")
	b.WriteString("checkRetrieveStatus and checkDeployStatus only read and are retried.\n\n")
	b.WriteString("| scenario | call | injected fault or switch | error matches | outcome | reconcile by |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, c := range metadataFaultCases() {
		want := sentinelName(c.want)
		switch c.want {
		case rotator.ErrPackagedStaged:
			want = "`rotator.ErrPackagedStaged`, final `*salesforce.APIError` (400 INVALID_OPERATION)"
		case rotator.ErrDeployFailed:
			want = "`rotator.ErrDeployFailed`"
		case rotator.ErrDeployTimeout:
			want = "`rotator.ErrDeployTimeout`"
		case rotator.ErrSecretUnreadable:
			want = "`rotator.ErrSecretUnreadable`"
		}
		rec := c.reconcile
		if rec == "" {
			rec = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.name, c.call, c.injected, want, c.outcome, rec)
	}
	return b.String()
}
