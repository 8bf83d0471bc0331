package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/rotator"
	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spf13/cobra"
)

// auditFlags are shared by every `ecarotator audit` subcommand.
type auditFlags struct {
	file       string // --file: the log, instead of audit.file from the config
	macKeyFile string // --mac-key-file: offline verification with an exported key
}

// auditEnv is what a subcommand resolved: the config (nil when running
// offline on --file without a config file), the log path, and a Vault
// client when one was needed.
type auditEnv struct {
	cfg  *config.Config
	file string
	vc   *vaultapi.Client
}

// auditSetup loads the config unless the command can run offline: with
// --file and no config file present, list/show/export/verify work on the
// file alone.
func (c *cli) auditSetup(f *auditFlags, needConfig bool) (*auditEnv, error) {
	env := &auditEnv{file: f.file}
	if !needConfig && f.file != "" {
		if _, err := os.Stat(c.cfgPath); err != nil {
			return env, nil
		}
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	env.cfg = cfg
	if env.file == "" {
		env.file = cfg.Audit.File
	}
	return env, nil
}

// vault returns the auditor's Vault client (built once).
func (e *auditEnv) vault() (*vaultapi.Client, error) {
	if e.vc != nil {
		return e.vc, nil
	}
	if e.cfg == nil {
		return nil, configError{errors.New("this needs Vault: pass a config (-c) or run where ecarotator.yaml is")}
	}
	vc, err := auditVaultClient(e.cfg)
	if err != nil {
		return nil, err
	}
	e.vc = vc
	return vc, nil
}

// mac resolves the MAC key: --mac-key-file, else audit.mac from the config.
func (e *auditEnv) mac(ctx context.Context, f *auditFlags) (audit.MACer, error) {
	if f.macKeyFile != "" {
		return auditMAC(ctx, e.cfg, nil, f.macKeyFile)
	}
	if e.cfg == nil {
		return nil, configError{errors.New("no MAC key: pass --mac-key-file, a config with audit.mac, or --no-mac")}
	}
	vc, err := e.vault()
	if err != nil {
		return nil, err
	}
	return auditMAC(ctx, e.cfg, vc, "")
}

// auditCommand is `ecarotator audit`: the auditor's view of the trail.
func (c *cli) auditCommand() *cobra.Command {
	f := &auditFlags{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, list, show, export and report on the audit trail",
		Long: `The audit trail is an append-only file of JSON records (one per line), each
linked to the previous one by a SHA-256 hash chain and signed with a MAC
whose key lives in Vault (transit, or a KV key). Signed checkpoints of the
chain head are kept in Vault so a cut-off tail is detectable.

The MAC key comes from audit.mac in the config (a transit key, or a KV key;
default KV path ecarotator/audit/mac-key), read with VAULT_TOKEN (the auditor's
own token). --file points at a log directly; without a config
file, list/show/export work on the file alone and verify needs
--mac-key-file (a base64 key) or --no-mac.

Exit codes: 0 ok; 4 when verify finds tampering (or a torn last line) or
when report finds an app past its max age; 1 runtime errors (Vault, I/O);
2 usage; 3 config.`,
	}
	cmd.PersistentFlags().StringVar(&f.file, "file", "", "audit log file (default: audit.file from the config)")
	cmd.PersistentFlags().StringVar(&f.macKeyFile, "mac-key-file", "", "file holding the base64 MAC key, for offline verification (default: audit.mac from the config)")
	cmd.AddCommand(
		c.auditVerifyCommand(f),
		c.auditListCommand(f),
		c.auditShowCommand(f),
		c.auditExportCommand(f),
		c.auditReportCommand(f),
		c.auditFingerprintCommand(f),
		c.auditRepairCommand(f),
	)
	return cmd
}

func (c *cli) auditVerifyCommand(f *auditFlags) *cobra.Command {
	var noMAC, noCheckpoint, fromVault bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain, every MAC and the checkpoint; exit 4 on tampering",
		Long: `Reads the log (rotated files first) in one streaming pass and checks: every
record's hash over its canonical content (edits), consecutive sequence
numbers (deleted or reordered lines), prev_hash links, every MAC (records
forged without the key), and that the log reaches the signed checkpoint in
Vault (a cut-off tail). A torn last line left by a crash is reported too.
Prints the first bad record's file, line and seq and why, and exits 4.

--vault verifies the Vault sink's shared chain instead of the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := c.auditSetup(f, fromVault)
			if err != nil {
				return err
			}
			opts := audit.VerifyOptions{}
			if !noMAC {
				if opts.MAC, err = env.mac(ctx, f); err != nil {
					return err
				}
			}
			cpNote := "not checked (--no-checkpoint)"
			if !noCheckpoint && !fromVault {
				if env.cfg == nil {
					cpNote = "not checked (no config, so no Vault)"
				} else if env.cfg.Audit.Checkpoints != "" {
					vc, err := env.vault()
					if err != nil {
						return err
					}
					cpNote = "none written yet for this chain"
					mount, p := env.cfg.Vault.KVMount, env.cfg.Audit.Checkpoints
					opts.Checkpoint = func(ctx context.Context, chain string) (*audit.Checkpoint, error) {
						cp, _, err := audit.ReadCheckpoint(ctx, vc, mount, p, chain)
						return cp, err
					}
				}
			}
			var res *audit.VerifyResult
			what := env.file
			if fromVault {
				vc, err := env.vault()
				if err != nil {
					return err
				}
				what = "vault:" + path.Join(env.cfg.Vault.KVMount, env.cfg.Audit.VaultSink.Path)
				res, err = audit.VerifyVault(ctx, vc, env.cfg.Vault.KVMount, env.cfg.Audit.VaultSink.Path, opts)
				if err == nil || errors.Is(err, audit.ErrTampered) {
					cpNote = "the Vault chain head"
				}
				return c.printVerify(what, res, err, cpNote)
			}
			if env.file == "" {
				return usageError{errors.New("no log: pass --file or a config")}
			}
			res, err = audit.VerifyFile(ctx, env.file, opts)
			return c.printVerify(what, res, err, cpNote)
		},
	}
	cmd.Flags().BoolVar(&noMAC, "no-mac", false, "check the hash chain only (does NOT detect a forger who recomputes hashes)")
	cmd.Flags().BoolVar(&noCheckpoint, "no-checkpoint", false, "do not compare the tail with the checkpoint in Vault")
	cmd.Flags().BoolVar(&fromVault, "vault", false, "verify the Vault sink's chain (audit.vault_sink.path) instead of the file")
	return cmd
}

func (c *cli) printVerify(what string, res *audit.VerifyResult, err error, cpNote string) error {
	w := c.stdout
	var te *audit.TamperError
	if errors.As(err, &te) {
		fmt.Fprintf(w, "audit log %s: FAILED\n", what)
		loc := te.File
		if te.Line > 0 {
			loc = fmt.Sprintf("%s line %d", te.File, te.Line)
		}
		if te.Seq > 0 {
			loc += fmt.Sprintf(" (seq %d)", te.Seq)
		}
		fmt.Fprintf(w, "  first bad record: %s\n  problem: %s\n  why: %s\n", loc, te.Kind, te.Reason)
		if res != nil && res.Records > 0 {
			fmt.Fprintf(w, "  verified before it: %d record(s), up to seq %d\n", res.Records, res.LastSeq)
		}
		return verifyError{errSilent}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "audit log %s: OK\n", what)
	fmt.Fprintf(w, "  records: %d (seq 1..%d) in %d file(s), chain %s\n", res.Records, res.LastSeq, len(res.Files), orDash(res.Chain))
	fmt.Fprintf(w, "  head: %s\n", orDash(res.Head))
	if res.MACChecked {
		fmt.Fprintln(w, "  MAC: every record checked")
	} else {
		fmt.Fprintln(w, "  MAC: NOT checked (--no-mac): a forger who recomputes the hashes would not be detected")
	}
	if cp := res.Checkpoint; cp != nil {
		fmt.Fprintf(w, "  checkpoint: seq %d of %s reached and matching\n", cp.Seq, cp.Time.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "  checkpoint: %s\n", cpNote)
	}
	for _, r := range res.Repairs {
		fmt.Fprintf(w, "  repaired: torn line %s:%d (offset %d) sealed by audit.repair seq %d\n", r.File, r.Line, r.Offset, r.RepairSeq)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// filterFlags are list's and export's record filters.
type filterFlags struct {
	app, org, actor, outcome, rotation, since, until string
	events                                           []string
}

func (ff *filterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&ff.app, "app", "", "only this app")
	fl.StringVar(&ff.org, "org", "", "only this org (Dev Hub)")
	fl.StringSliceVar(&ff.events, "event", nil, "only these event types (repeat or comma-separate), e.g. rotation.failed")
	fl.StringVar(&ff.actor, "actor", "", "only this actor kind (scheduler, operator, system) or operator identity")
	fl.StringVar(&ff.outcome, "outcome", "", "only this outcome (ok, failed, skipped, denied)")
	fl.StringVar(&ff.rotation, "rotation", "", "only this rotation id")
	fl.StringVar(&ff.since, "since", "", "from this time on (RFC 3339 or YYYY-MM-DD, UTC)")
	fl.StringVar(&ff.until, "until", "", "before this time (RFC 3339 or YYYY-MM-DD, UTC)")
}

func parseWhen(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageError{fmt.Errorf("--%s %q: want RFC 3339 (2026-11-01T09:00:00Z) or YYYY-MM-DD", flag, s)}
}

func (ff *filterFlags) filter() (audit.Filter, error) {
	f := audit.Filter{App: ff.app, Org: ff.org, Actor: ff.actor, Outcome: rotator.Outcome(ff.outcome), RotationID: ff.rotation}
	switch f.Outcome {
	case "", rotator.OutcomeOK, rotator.OutcomeFailed, rotator.OutcomeSkipped, rotator.OutcomeDenied:
	default:
		return f, usageError{fmt.Errorf("--outcome %q: want ok, failed, skipped or denied", ff.outcome)}
	}
	for _, e := range ff.events {
		f.Events = append(f.Events, rotator.EventType(strings.TrimSpace(e)))
	}
	var err error
	if f.Since, err = parseWhen("since", ff.since); err != nil {
		return f, err
	}
	if f.Until, err = parseWhen("until", ff.until); err != nil {
		return f, err
	}
	return f, nil
}

// skipped warns about unparsable lines on stderr.
func (c *cli) skipped(s audit.SkippedLine) {
	fmt.Fprintf(c.stderr, "warning: %s:%d skipped: %v (run `ecarotator audit verify`)\n", s.File, s.Line, s.Err)
}

func (c *cli) auditListCommand(f *auditFlags) *cobra.Command {
	var ff filterFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List records, filtered; a table or JSON lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flt, err := ff.filter()
			if err != nil {
				return err
			}
			env, err := c.auditSetup(f, false)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.stdout)
				return audit.Scan(cmd.Context(), env.file, flt, func(r *audit.Record) error { return enc.Encode(r) }, c.skipped)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tAPP\tSTEP\tOUTCOME\tACTOR\tROTATION")
			n := 0
			err = audit.Scan(cmd.Context(), env.file, flt, func(r *audit.Record) error {
				n++
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339), r.Type,
					orDash(r.App), orDash(string(r.Step)), orDash(string(r.Outcome)), actorString(r.Actor), orDash(r.RotationID))
				return nil
			}, c.skipped)
			if err != nil {
				return err
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "%d record(s)\n", n)
			return nil
		},
	}
	ff.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines (the records as stored) instead of a table")
	return cmd
}

func actorString(a rotator.Actor) string {
	s := string(a.Kind)
	if a.Identity != "" {
		s += ":" + a.Identity
	}
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) auditShowCommand(f *auditFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show <rotation-id>",
		Short: "Tell the story of one rotation, step by step",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := c.auditSetup(f, false)
			if err != nil {
				return err
			}
			s, err := audit.StoryOf(cmd.Context(), env.file, args[0])
			if err != nil {
				return err
			}
			if len(s.Records) == 0 {
				return fmt.Errorf("audit: no records for rotation %q in %s", args[0], env.file)
			}
			c.printStory(s)
			return nil
		},
	}
}

func (c *cli) printStory(s *audit.Story) {
	w := c.stdout
	first := s.Records[0]
	fmt.Fprintf(w, "rotation %s\n", s.RotationID)
	fmt.Fprintf(w, "  app %s  org %s  eca %s  consumer key %s\n", orDash(s.App), orDash(first.Org), orDash(first.ECA), orDash(first.ConsumerKey))
	who := actorString(first.Actor)
	if first.Actor.Reason != "" {
		who += " (" + first.Actor.Reason + ")"
	}
	fmt.Fprintf(w, "  started %s by %s\n", s.Started.UTC().Format(time.RFC3339), who)
	if s.Ended.IsZero() {
		fmt.Fprintf(w, "  outcome: %s\n\n", s.Outcome)
	} else {
		fmt.Fprintf(w, "  outcome: %s at %s (after %s)\n\n", s.Outcome, s.Ended.UTC().Format(time.RFC3339), s.Ended.Sub(s.Started).Round(time.Second))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\t+TIME\tEVENT\tSTEP\tOUTCOME\tDETAILS")
	for _, r := range s.Records {
		fmt.Fprintf(tw, "%d\t+%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Sub(s.Started).Round(time.Millisecond), r.Type,
			orDash(string(r.Step)), orDash(string(r.Outcome)), recordDetails(r))
	}
	_ = tw.Flush()
}

// recordDetails renders a record's particulars on one line.
func recordDetails(r *audit.Record) string {
	var parts []string
	if r.VaultPath != "" {
		p := "vault " + r.VaultPath
		if r.VaultVersion != 0 {
			p += fmt.Sprintf(" v%d", r.VaultVersion)
		}
		parts = append(parts, p)
	}
	if r.Fingerprint != "" {
		parts = append(parts, "secret "+r.Fingerprint)
	}
	if r.Error != "" {
		parts = append(parts, "error: "+r.Error)
	}
	keys := make([]string, 0, len(r.Details))
	for k := range r.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+r.Details[k])
	}
	if r.Actor.Kind == rotator.ActorOperator {
		parts = append(parts, "by "+actorString(r.Actor))
	}
	return strings.Join(parts, "; ")
}

func (c *cli) auditExportCommand(f *auditFlags) *cobra.Command {
	var ff filterFlags
	var format string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export records as a JSON array or CSV, with list's filters",
		Long: `Writes the (filtered) records to stdout: --format json gives one JSON array
of the records as stored (hash, prev_hash and mac included, so an export can
be re-verified record by record); --format csv gives one row per record with
details as a JSON object. Streams: memory stays flat whatever the log size.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flt, err := ff.filter()
			if err != nil {
				return err
			}
			if format != "json" && format != "csv" {
				return usageError{fmt.Errorf("--format %q: want json or csv", format)}
			}
			env, err := c.auditSetup(f, false)
			if err != nil {
				return err
			}
			if format == "csv" {
				cw, err := audit.NewCSVWriter(c.stdout)
				if err != nil {
					return err
				}
				if err := audit.Scan(cmd.Context(), env.file, flt, cw.Write, c.skipped); err != nil {
					return err
				}
				return cw.Flush()
			}
			return exportJSON(cmd.Context(), c.stdout, env.file, flt, c.skipped)
		},
	}
	ff.add(cmd)
	cmd.Flags().StringVar(&format, "format", "json", "json or csv")
	return cmd
}

func exportJSON(ctx context.Context, w io.Writer, file string, flt audit.Filter, skip func(audit.SkippedLine)) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	sep := "\n"
	err := audit.Scan(ctx, file, flt, func(r *audit.Record) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		sep = ",\n"
		_, err = w.Write(b)
		return err
	}, skip)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n]\n")
	return err
}

func (c *cli) auditReportCommand(f *auditFlags) *cobra.Command {
	var at string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Compliance report: was every app rotated within its max age? Exit 4 if not",
		Long: `For each app in the config: the last successful rotation, its age against
the app's max_age, failed and orphaned rotations (in total and since the last
success) and manual (operator) actions. Ends with a compliance summary line.

Exit code 4 when any enabled app is past its max age or has no successful
rotation on record; 0 when all are compliant. Disabled apps are listed but
not counted. --at evaluates the report as of a past time (e.g. quarter end).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := c.auditSetup(f, true)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			if at != "" {
				if now, err = parseWhen("at", at); err != nil {
					return err
				}
			}
			apps := make([]audit.ReportApp, len(env.cfg.Apps))
			for i, a := range env.cfg.Apps {
				apps[i] = audit.ReportApp{Name: a.Name, MaxAge: a.MaxAge.D(), Disabled: a.Disabled}
			}
			rep, err := audit.BuildReport(cmd.Context(), env.file, apps, now)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				c.printReport(rep)
			}
			if rep.NonCompliant > 0 {
				return verifyError{errSilent}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "evaluate as of this time (RFC 3339 or YYYY-MM-DD; default now)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func (c *cli) printReport(rep *audit.Report) {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tLAST SUCCESS\tAGE\tMAX AGE\tFAILURES\tSINCE LAST OK\tMANUAL\tSTATUS")
	var bad []string
	for _, a := range rep.Apps {
		last, age := "never", "-"
		if !a.LastSuccess.IsZero() {
			last, age = a.LastSuccess.UTC().Format(time.RFC3339), days(a.Age)
		}
		status := "ok"
		switch {
		case a.Disabled:
			status = "disabled"
		case !a.Compliant:
			status = "PAST MAX AGE"
			if a.LastSuccess.IsZero() {
				status = "NEVER ROTATED"
			}
			bad = append(bad, a.App+": "+a.Reason)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", a.App, last, age, days(a.MaxAge), a.Failures, a.FailuresSince, a.Manual, status)
	}
	_ = tw.Flush()
	total := rep.Compliant + rep.NonCompliant
	if rep.NonCompliant == 0 {
		fmt.Fprintf(c.stdout, "compliance: COMPLIANT — %d/%d app(s) rotated within max age as of %s\n", rep.Compliant, total, rep.Now.Format(time.RFC3339))
		return
	}
	fmt.Fprintf(c.stdout, "compliance: NON-COMPLIANT — %d/%d app(s) rotated within max age as of %s (%s)\n",
		rep.Compliant, total, rep.Now.Format(time.RFC3339), strings.Join(bad, "; "))
}

func days(d time.Duration) string { return fmt.Sprintf("%.1fd", d.Hours()/24) }

func (c *cli) auditFingerprintCommand(f *auditFlags) *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "fingerprint <app>",
		Short: "Print the fingerprints of a KV version of an app's credentials",
		Long: `Reads a version of the app's Vault path (<kv_mount>/<vault_path>) with your
own VAULT_TOKEN and prints the keyed fingerprints of consumer_secret and
previous_consumer_secret, so you can tell which version a fingerprint in the
audit trail belongs to. The secrets themselves are never printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			env, err := c.auditSetup(f, true)
			if err != nil {
				return err
			}
			app, ok := env.cfg.AppByName(args[0])
			if !ok {
				return usageError{fmt.Errorf("no app %q in %s", args[0], c.cfgPath)}
			}
			mac, err := env.mac(ctx, f)
			if err != nil {
				return err
			}
			fpKey, err := mac.FingerprintKey(ctx)
			if err != nil {
				return err
			}
			vc, err := env.vault()
			if err != nil {
				return err
			}
			kv := vc.KVv2(env.cfg.Vault.KVMount)
			var sec *vaultapi.KVSecret
			if version > 0 {
				sec, err = kv.GetVersion(ctx, app.VaultPath, version)
			} else {
				sec, err = kv.Get(ctx, app.VaultPath)
			}
			if err != nil {
				return fmt.Errorf("vault: read %s/%s: %w", env.cfg.Vault.KVMount, app.VaultPath, err)
			}
			w := c.stdout
			v := 0
			if sec.VersionMetadata != nil {
				v = sec.VersionMetadata.Version
			}
			fmt.Fprintf(w, "app %s  path %s/%s  version %d\n", app.Name, env.cfg.Vault.KVMount, app.VaultPath, v)
			if sec.VersionMetadata != nil && !sec.VersionMetadata.CreatedTime.IsZero() {
				fmt.Fprintf(w, "  created: %s\n", sec.VersionMetadata.CreatedTime.UTC().Format(time.RFC3339))
			}
			if k, _ := sec.Data["consumer_key"].(string); k != "" {
				fmt.Fprintf(w, "  consumer_key: %s\n", k)
			}
			for _, field := range []string{"consumer_secret", "previous_consumer_secret"} {
				s, _ := sec.Data[field].(string)
				fp := audit.FingerprintWith(fpKey, s)
				if fp == "" {
					fp = "(none)"
				}
				fmt.Fprintf(w, "  %s fingerprint: %s\n", field, fp)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "KV version (default: the current one)")
	return cmd
}

func (c *cli) auditRepairCommand(f *auditFlags) *cobra.Command {
	var operator, reason string
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Seal a torn last line (left by a crash) with an audit.repair record",
		Long: `After a crash in the middle of an append, the log ends with an incomplete
line and the daemon refuses to write to it (fail closed). repair keeps the
fragment as evidence: it ends it with a newline and appends an audit.repair
record, signed and linked to the last good record, that names the
fragment's line, offset, length and SHA-256. verify then reports the repair
instead of failing. Nothing is deleted or rewritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if operator == "" || reason == "" {
				return usageError{errors.New("--operator and --reason are required: the repair record names who repaired and why")}
			}
			env, err := c.auditSetup(f, false)
			if err != nil {
				return err
			}
			if env.file == "" {
				return usageError{errors.New("no log: pass --file or a config")}
			}
			mac, err := env.mac(ctx, f)
			if err != nil {
				return err
			}
			actor := rotator.Actor{Kind: rotator.ActorOperator, Identity: operator, Reason: reason}
			l, err := audit.New(ctx, audit.Options{File: env.file, MAC: mac})
			if err == nil {
				fmt.Fprintf(c.stdout, "%s: no torn last line; nothing to repair\n", env.file)
				return l.Close()
			}
			var torn *audit.TornTailError
			if !errors.As(err, &torn) {
				return err
			}
			l, err = audit.New(ctx, audit.Options{File: env.file, MAC: mac, RepairTornTail: true, RepairActor: actor})
			if err != nil {
				return err
			}
			seq, _, _ := l.Head()
			if err := l.Close(); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s: sealed the torn line %d (%d bytes at offset %d) with audit.repair seq %d\n",
				env.file, torn.Line, torn.Length, torn.Offset, seq)
			return nil
		},
	}
	cmd.Flags().StringVar(&operator, "operator", "", "who performs the repair (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, e.g. an incident id (recorded)")
	return cmd
}
