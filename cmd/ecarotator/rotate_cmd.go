package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

// crashHook is set by a build with the crashtest tag (integration crash
// tests); nil in release builds.
var crashHook func(point string) error

// runtime wires the adapters for a command.
func (c *cli) runtime(ctx context.Context, cfg *config.Config, log *zap.Logger, readOnly bool) (*wire.Runtime, error) {
	return wire.New(ctx, cfg, log, wire.RuntimeOptions{Hook: crashHook, NoAudit: readOnly})
}

// operator resolves the caller's identity from their Vault token.
func (c *cli) operator(ctx context.Context, rt *wire.Runtime, reason string) rotator.Actor {
	a := rotator.Actor{Kind: rotator.ActorOperator, Reason: reason}
	if id, err := rt.Vault.TokenIdentity(ctx, rt.Cfg.Vault.Auth.Token); err == nil {
		a.Identity = id
	}
	return a
}

func (c *cli) rotateCommand() *cobra.Command {
	var (
		reason    string
		dryRun    bool
		adopt     bool
		asJSON    bool
		code      string
		serverURL string
		due       bool
		dueApps   []string
	)
	cmd := &cobra.Command{
		Use:   "rotate <app> | rotate --due [--app <app>...]",
		Short: "Rotate one app now, end to end (or plan it with --dry-run)",
		Long: `Runs one rotation of the app: lock, preflight (drift, staged slot), expose,
stage, persist to Vault, rotate, verify at every token URL, commit, finish.
An interrupted rotation (crash, failure) resumes from its journal.

Exit codes: 0 rotated (or nothing to do), 1 failed, 4 the new pair did not
verify (Vault still serves the previous, working pair).

With mfa.enabled in the config, a rotation now is an operator action outside
the schedule and needs the caller's TOTP code (--code).

While the previous pair is inside its overlap, rotating now would revoke it:
that needs the two-person approval of revoke-previous first (retire --revoke,
approve), and the command refuses with the end of the overlap otherwise.

With --server (or ECAROTATOR_SERVER, or server.url) the daemon rotates: it
checks the caller's right, code and the overlap with its own rights.

With --due (the CI/CD one-shot) it rotates every app that is due now, by
the daemon's own decision (the scheduler's "when" without jitter, then the
daemon's "rotate now?" under the same slot lease), so it is safe beside a
running daemon: one slot rotates once. --app limits it to some apps. It
serves the schedule, so it needs no TOTP code even with mfa.enabled.
Exit codes: 0 all due apps rotated (or none was due), 4 a verification
failed, 1 any other failure. --json prints a summary.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if due {
				if len(args) > 0 {
					return usageError{fmt.Errorf("rotate --due takes no app argument; use --app %s", args[0])}
				}
				return nil
			}
			if len(dueApps) > 0 {
				return usageError{errors.New("--app needs --due; rotate one app with: rotate <app>")}
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkReason(reason); err != nil {
				return err
			}
			if due {
				if dryRun || adopt || code != "" || serverURL != "" {
					return usageError{errors.New("--due does not combine with --dry-run, --adopt, --code or --server (use plan to preview)")}
				}
				return c.rotateDue(ctx, dueApps, reason, asJSON)
			}
			if !dryRun {
				if base := c.daemonURL(serverURL); base != "" {
					return c.rotateViaDaemon(ctx, base, args[0], code, reason)
				}
			}
			cfg, log, err := c.setup(false)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if _, ok := cfg.AppByName(args[0]); !ok {
				return usageError{fmt.Errorf("unknown app %q (configured: %s)", args[0], appNames(cfg))}
			}
			rt, err := c.runtime(ctx, cfg, log, dryRun)
			if err != nil {
				return err
			}
			defer rt.Close()
			app, _ := rt.App(args[0])
			if cfg.MFA.Enabled && !dryRun {
				if _, err := c.gate(ctx, rt, log, code, actionRotate, app.Name); err != nil {
					return err
				}
			}
			actor := c.operator(ctx, rt, reason)
			if !dryRun {
				// H3: ending the previous pair's overlap is a revocation;
				// it needs revoke-previous's two-person approval first.
				if err := rt.Engine.CheckOverlap(ctx, app, actor); err != nil {
					return err
				}
			}
			res, err := rt.Engine.Rotate(ctx, app, rotator.Request{Actor: actor, Reason: reason, DryRun: dryRun, Adopt: adopt})
			if asJSON {
				_ = writeJSON(c.stdout, res)
			} else if res.Plan != nil {
				printPlans(c.stdout, []rotator.PlanResult{*res.Plan})
			} else {
				printResult(c.stdout, res)
			}
			if err != nil {
				if errors.Is(err, rotator.ErrVerifyFailed) {
					return verifyError{err}
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would happen; change nothing")
	cmd.Flags().BoolVar(&adopt, "adopt", false, "take over a Vault path that ecarotator did not create")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&code, "code", "", "the caller's current TOTP code (required when mfa.enabled)")
	cmd.Flags().StringVar(&serverURL, "server", "", "base URL of the running daemon (env ECAROTATOR_SERVER, config server.url)")
	cmd.Flags().BoolVar(&due, "due", false, "rotate every app that is due now (CI/CD one-shot; the daemon's decision and leases)")
	cmd.Flags().StringSliceVar(&dueApps, "app", nil, "with --due: only these apps (repeatable or comma-separated)")
	return cmd
}

// rotateViaDaemon asks the daemon to rotate app now (it answers at once;
// the rotation runs in the daemon).
func (c *cli) rotateViaDaemon(ctx context.Context, base, app, code, reason string) error {
	tok, err := c.callerToken()
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "rotate now"
	}
	var out server.Accepted
	if err := apiCall(ctx, base, http.MethodPost, "/api/v1/apps/"+url.PathEscape(app)+"/rotate", tok,
		server.ActionRequest{Reason: reason, MFACode: code}, &out); err != nil {
		return fmt.Errorf("rotate %s: %w", app, err)
	}
	fmt.Fprintf(c.stdout, "rotation of %s accepted by the daemon: operation %s\n", out.App, out.ID)
	return nil
}

func (c *cli) planCommand() *cobra.Command {
	var (
		out       outputFlags
		serverURL string
	)
	cmd := &cobra.Command{
		Use:   "plan [app...]",
		Short: "Show whether and when each app would rotate, and preflight results (no change)",
		Long: `Shows, per app, the policy decision (rotate or not, why, when next) and the
preflight facts (Dev Hub auth, secret-access setting, staged slot, Vault
version, drift). Nothing is changed. With --server (or ECAROTATOR_SERVER) a
running daemon answers; otherwise the config's Vault and Dev Hubs are asked
directly.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			format, err := out.get(cmd)
			if err != nil {
				return err
			}
			if serverURL == "" {
				serverURL = c.getenv("ECAROTATOR_SERVER")
			}
			if serverURL != "" {
				var resp struct {
					Plan []rotator.PlanResult `json:"plan"`
				}
				q := url.Values{}
				for _, a := range args {
					q.Add("app", a)
				}
				path := "/api/v1/plan"
				if len(q) > 0 {
					path += "?" + q.Encode()
				}
				if err := getJSON(ctx, serverURL, path, "plan", rotator.NewSecret(c.getenv("VAULT_TOKEN")), &resp); err != nil {
					return err
				}
				if format != outTable {
					return writeAs(c.stdout, format, resp.Plan)
				}
				printPlans(c.stdout, resp.Plan)
				return nil
			}
			cfg, log, err := c.setup(false)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			for _, a := range args {
				if _, ok := cfg.AppByName(a); !ok {
					return usageError{fmt.Errorf("unknown app %q (configured: %s)", a, appNames(cfg))}
				}
			}
			rt, err := c.runtime(ctx, cfg, log, true)
			if err != nil {
				return err
			}
			defer rt.Close()
			var plans []rotator.PlanResult
			var errs []error
			for _, app := range rt.Apps() {
				if len(args) > 0 && !contains(args, app.Name) {
					continue
				}
				p, err := rt.Engine.Plan(ctx, app, time.Now())
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", app.Name, err))
					continue
				}
				plans = append(plans, p)
			}
			if format != outTable {
				_ = writeAs(c.stdout, format, plans)
			} else {
				printPlans(c.stdout, plans)
			}
			return errors.Join(errs...)
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&serverURL, "server", "", "base URL of a running daemon, e.g. http://127.0.0.1:9464 (env ECAROTATOR_SERVER)")
	return cmd
}

func (c *cli) retireCommand() *cobra.Command {
	var (
		revoke    bool
		reason    string
		code      string
		serverURL string
	)
	cmd := &cobra.Command{
		Use:   "retire <app>",
		Short: "Retire the previous pair when its overlap has ended (--revoke: now)",
		Long: `Retire drops the previous pair from the app's Vault path once the overlap
policy says so, deleting Salesforce's Rotated slot where the policy asks.
With --revoke the previous pair is revoked at once (break-glass): the caller
proves their TOTP code (--code) and a pending approval is created; a second,
different operator carries it out with "ecarotator approve <id> --code ...".
With --server (or ECAROTATOR_SERVER, or server.url) the request goes through
the daemon, which checks the code with its own rights: the documented way.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkReason(reason); err != nil {
				return err
			}
			if revoke {
				if base := c.daemonURL(serverURL); base != "" {
					return c.requestRevokeViaDaemon(ctx, base, args[0], code, reason)
				}
			}
			cfg, log, err := c.setup(false)
			if err != nil {
				return err
			}
			if _, ok := cfg.AppByName(args[0]); !ok {
				return usageError{fmt.Errorf("unknown app %q", args[0])}
			}
			rt, err := c.runtime(ctx, cfg, log, false)
			if err != nil {
				return err
			}
			defer rt.Close()
			app, _ := rt.App(args[0])
			if revoke {
				return c.requestRevoke(ctx, rt, log, app.Name, code, reason)
			}
			res, err := rt.Engine.Retire(ctx, app)
			printResult(c.stdout, res)
			return err
		},
	}
	cmd.Flags().BoolVar(&revoke, "revoke", false, "request revoking the previous pair now, whatever the policy (MFA + a second operator)")
	cmd.Flags().StringVar(&code, "code", "", "the caller's current TOTP code (with --revoke)")
	cmd.Flags().StringVar(&serverURL, "server", "", "with --revoke: base URL of the running daemon (env ECAROTATOR_SERVER, config server.url)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail)")
	return cmd
}

func printResult(w io.Writer, r rotator.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) {
		s := fmt.Sprint(v)
		if s == "" || s == "0" || s == "false" {
			return
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, s)
	}
	row("app", r.App)
	row("outcome", r.Outcome)
	row("rotation id", r.RotationID)
	row("step", r.Step)
	row("resumed", r.Resumed)
	row("consumer key", r.ConsumerKey)
	row("previous key", r.PreviousKey)
	row("vault version", r.VaultVersion)
	row("fingerprint", r.Fingerprint)
	row("attempts", r.Attempts)
	if !r.NextAttemptAt.IsZero() {
		row("next attempt", r.NextAttemptAt.UTC().Format(time.RFC3339))
	}
	row("orphaned", r.Orphaned)
	row("strategy", r.Strategy)
	if r.Strategy == rotator.StrategyMetadata {
		row("downtime window", r.Downtime)
	}
	_ = tw.Flush()
}

func printPlans(w io.Writer, plans []rotator.PlanResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tROTATE\tREASON\tNEXT\tDEV HUB\tSECRET ACCESS\tSTAGED\tVAULT\tDRIFT\tPROBLEMS")
	for _, p := range plans {
		next := "-"
		if !p.Decision.Next.IsZero() {
			// The time and reason the daemon's scheduler uses (one decision).
			next = p.Decision.Next.UTC().Format(time.RFC3339) + " " + string(p.Decision.NextReason)
		}
		access := string(p.SecretAccessMode)
		if p.SecretAccess != nil {
			access += fmt.Sprintf(" (on=%t)", *p.SecretAccess)
		}
		staged := "empty"
		if len(p.Staged) > 0 {
			var parts []string
			for _, s := range p.Staged {
				parts = append(parts, string(s.Status))
			}
			staged = strings.Join(parts, ",")
		}
		if p.ForeignStaged {
			staged += " (foreign)"
		}
		vault := fmt.Sprintf("v%d", p.VaultVersion)
		if p.NeedsAdopt {
			vault += " (adopt)"
		}
		hub := "ok"
		if !p.DevHubOK {
			hub = "FAIL"
		} else if p.ReadsGated {
			hub = "ok (reads gated until the setting opens)"
		}
		probs := "-"
		if len(p.Problems) > 0 {
			probs = strings.Join(p.Problems, "; ")
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\n", p.App, p.WouldRotate, p.Decision.Reason, next, hub, access, staged, vault, p.Drift, probs)
	}
	_ = tw.Flush()
	for _, p := range plans {
		if p.Decision.Message != "" {
			fmt.Fprintf(w, "  %s: %s\n", p.App, p.Decision.Message)
		}
		if p.Strategy.Strategy != "" {
			fmt.Fprintf(w, "  %s: strategy %s — %s\n", p.App, p.Strategy.Strategy, p.Strategy.Why)
		}
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func appNames(cfg *config.Config) string {
	names := make([]string, len(cfg.Apps))
	for i, a := range cfg.Apps {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
