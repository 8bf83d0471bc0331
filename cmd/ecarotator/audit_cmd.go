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
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"
)

// auditFlags are shared by every `ecarotator audit` subcommand.
type auditFlags struct {
	file       string // --file: the log, instead of audit.file from the config
	macKeyFile string // --mac-key-file: lab mode, offline verification with an exported KV key
	publicKey  string // --public-key: offline signature checks with the exported public key
}

// auditEnv is what a subcommand resolved: the config (nil when running
// offline on --file without a config file), the log path, and a Vault
// client when one was needed.
type auditEnv struct {
	cfg  *config.Config
	file string
	vc   *vault.Client
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
func (e *auditEnv) vault() (*vault.Client, error) {
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
linked to the previous one by a SHA-256 hash chain and MAC'd by the daemon
with a Vault transit key. The daemon signs the chain head with a transit
ed25519 key (audit.mac.sign_key) that only it can use, writes the signed
statement into the file (audit.checkpoint records) and anchors it in Vault,
so a forged record, a cut-off tail, a deleted or replaced file all fail
verify. Auditors hold no right that computes a MAC or a signature: online,
verify checks MACs with transit/verify and signatures with the public key;
offline, --public-key FILE (from ` + "`audit public-key`" + `) checks the signatures.

Lab mode (audit.mac.kv_path) uses one symmetric KV key for records and heads;
verify reports it as weaker. --file points at a log directly; without a
config file, list/show/export work on the file alone and verify needs
--public-key, --mac-key-file (lab mode) or --no-mac.

Exit codes: 0 ok; 4 when verify finds tampering (or a torn last line) or
when report finds an app past its max age; 1 runtime errors (Vault, I/O);
2 usage; 3 config.`,
	}
	cmd.PersistentFlags().StringVar(&f.file, "file", "", "audit log file (default: audit.file from the config)")
	cmd.PersistentFlags().StringVar(&f.macKeyFile, "mac-key-file", "", "lab mode: file holding the base64 KV MAC key, for offline verification")
	cmd.PersistentFlags().StringVar(&f.publicKey, "public-key", "", "file holding the signing public key (from `ecarotator audit public-key`), for offline verification")
	cmd.AddCommand(
		c.auditVerifyCommand(f),
		c.auditListCommand(f),
		c.auditShowCommand(f),
		c.auditExportCommand(f),
		c.auditReportCommand(f),
		c.auditFingerprintCommand(f),
		c.auditRepairCommand(f),
		c.auditPublicKeyCommand(f),
		c.auditAnchorCommand(f),
		c.auditCheckpointCommand(f),
	)
	return cmd
}

// verifyNotes is what printVerify says besides the result.
type verifyNotes struct {
	mac    string // how record MACs were checked
	sig    string // how signatures were checked
	anchor string // how the anchor was checked (when none was compared)
	weaker bool   // lab mode
}

func (c *cli) auditVerifyCommand(f *auditFlags) *cobra.Command {
	var noMAC, noAnchor, fromVault, allowUnsigned bool
	var anchorID, anchorFile string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain, MACs, signatures and the Vault anchor; exit 4 on tampering",
		Long: `Reads the log (rotated files first) in one streaming pass and checks: every
record's hash over its canonical content (edits), consecutive sequence
numbers (deleted, reordered or forked records), prev_hash links, every MAC
(records forged without the daemon's key; transit/verify, online only),
every audit.checkpoint signature (the daemon's ed25519 key; offline with
--public-key), and that the log holds the chain anchored in Vault and
reaches its anchored head (a cut-off tail, a deleted or replaced log).
A torn last line left by a crash is reported too. Prints the first
problem's file, line and seq and why, and exits 4.

Offline (--public-key, no Vault): MACs and the anchor cannot be checked;
records after the last signature are then unverified and fail unless
--allow-unsigned-tail (a log still being written). --anchor FILE (from
` + "`audit anchor`" + `) checks an exported anchor offline.

--vault verifies the Vault sink's shared chain instead of the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := c.auditSetup(f, fromVault)
			if err != nil {
				return err
			}
			opts := audit.VerifyOptions{AllowUnsignedTail: allowUnsigned}
			notes := verifyNotes{mac: "NOT checked (--no-mac)", sig: "NOT checked (no public key and no config)", anchor: "not checked (--no-anchor)"}
			lab := env.cfg != nil && wire.AuditLabMode(env.cfg.Audit.MAC)
			if !noMAC {
				switch {
				case f.macKeyFile != "" || env.cfg != nil:
					if opts.MAC, err = env.mac(ctx, f); err != nil {
						return err
					}
					notes.mac = "every record checked (transit/verify: the auditor checks, never computes)"
					if lab || f.macKeyFile != "" {
						notes.mac = "every record checked with the KV key (lab mode)"
						lab = true
					}
				case f.publicKey == "":
					return configError{errors.New("no key: pass --public-key FILE (offline), a config with audit.mac, --mac-key-file (lab mode) or --no-mac")}
				default:
					notes.mac = "NOT checked (offline: the MAC key never leaves Vault); the signatures vouch for the records they cover"
				}
			}
			switch {
			case f.publicKey != "":
				b, err := readBounded(f.publicKey, 64<<10)
				if err != nil {
					return usageError{fmt.Errorf("--public-key: %w", err)}
				}
				pk, err := audit.ParsePublicKeys(b)
				if err != nil {
					return usageError{fmt.Errorf("--public-key: %w", err)}
				}
				opts.Sig = pk
				notes.sig = "ed25519, checked offline with " + f.publicKey
			case lab && opts.MAC != nil:
				opts.Sig = audit.MACSigner(opts.MAC)
				notes.sig = "hmac with the KV key (lab mode)"
			case env.cfg != nil && !lab:
				vc, err := env.vault()
				if err != nil {
					return err
				}
				if opts.Sig, err = wire.AuditSigVerifier(ctx, vc, env.cfg.Audit.MAC, opts.MAC); err != nil {
					return err
				}
				notes.sig = "ed25519, with the public key of transit key " + env.cfg.Audit.MAC.SignKey
			}
			notes.weaker = lab
			if fromVault {
				vc, err := env.vault()
				if err != nil {
					return err
				}
				what := "vault:" + path.Join(env.cfg.Vault.KVMount, env.cfg.Audit.VaultSink.Path)
				res, err := audit.VerifyVault(ctx, vc, env.cfg.Vault.KVMount, env.cfg.Audit.VaultSink.Path, opts)
				notes.sig, notes.anchor = "n/a (the Vault sink)", "the Vault chain head"
				return c.printVerify(what, res, err, notes)
			}
			if env.file == "" {
				return usageError{errors.New("no log: pass --file or a config")}
			}
			switch {
			case anchorFile != "":
				b, err := readBounded(anchorFile, 64<<10)
				if err != nil {
					return usageError{fmt.Errorf("--anchor: %w", err)}
				}
				if opts.Anchor, err = audit.ParseAnchorJSON(b); err != nil {
					return usageError{fmt.Errorf("--anchor: %w", err)}
				}
			case noAnchor:
			case env.cfg == nil:
				notes.anchor = "not checked (offline: pass --anchor FILE from `ecarotator audit anchor` to detect a cut tail)"
			default:
				vc, err := env.vault()
				if err != nil {
					return err
				}
				id := anchorIDFor(env, anchorID)
				a, _, err := audit.ReadAnchor(ctx, vc, env.cfg.Vault.KVMount, env.cfg.Audit.Checkpoints, id)
				if err != nil {
					return err
				}
				if a == nil {
					fmt.Fprintf(c.stdout, "audit log %s: FAILED\n  problem: unanchored\n  why: Vault holds no anchor %q under %s/%s/anchors: the trail was never anchored by this version, or --anchor-id is wrong; nothing proves the log was not cut or replaced\n",
						env.file, id, env.cfg.Vault.KVMount, env.cfg.Audit.Checkpoints)
					return verifyError{errSilent}
				}
				opts.Anchor = a
			}
			res, err := audit.VerifyFile(ctx, env.file, opts)
			return c.printVerify(env.file, res, err, notes)
		},
	}
	cmd.Flags().BoolVar(&noMAC, "no-mac", false, "do not check record MACs (signatures, when available, still vouch for the records they cover)")
	cmd.Flags().BoolVar(&noAnchor, "no-anchor", false, "do not compare the log with its anchor in Vault (a cut tail or a replaced log then goes unnoticed)")
	cmd.Flags().BoolVar(&fromVault, "vault", false, "verify the Vault sink's chain (audit.vault_sink.path) instead of the file")
	cmd.Flags().BoolVar(&allowUnsigned, "allow-unsigned-tail", false, "offline: accept records after the last signature (a log still being written)")
	cmd.Flags().StringVar(&anchorID, "anchor-id", "", "the anchor to compare with (default: audit.anchor_id, else derived from the log path as the daemon does)")
	cmd.Flags().StringVar(&anchorFile, "anchor", "", "compare with an anchor exported by `ecarotator audit anchor` (offline)")
	return cmd
}

// anchorIDFor is the anchor verify compares with: --anchor-id, else
// audit.anchor_id, else the id the writer derives from the log's path.
func anchorIDFor(env *auditEnv, flag string) string {
	if flag != "" {
		return flag
	}
	if env.cfg != nil && env.cfg.Audit.AnchorID != "" {
		return env.cfg.Audit.AnchorID
	}
	return audit.DefaultAnchorID(env.file)
}

// readBounded reads a small file, refusing anything over limit bytes.
func readBounded(name string, limit int64) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return b, nil
}

func (c *cli) printVerify(what string, res *audit.VerifyResult, err error, n verifyNotes) error {
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
	fmt.Fprintf(w, "  MAC: %s\n", n.mac)
	if res.SigMode != "" {
		fmt.Fprintf(w, "  signatures: %s: %d checkpoint(s) valid; records up to seq %d signed", n.sig, res.Signatures, res.SignedSeq)
		if res.Unsigned > 0 {
			fmt.Fprintf(w, "; %d later record(s) not signed yet", res.Unsigned)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "  signatures: %s\n", n.sig)
	}
	if n.weaker {
		fmt.Fprintln(w, "  WEAKER lab mode (audit.mac.kv_path): anyone who can read the KV key can forge records and anchors; use transit in production")
	}
	if a := res.Anchor; a != nil {
		fmt.Fprintf(w, "  anchor: %s — chain %s, seq %d of %s reached and matching\n", a.ID, a.Chain, a.Seq, a.Time.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "  anchor: %s\n", n.anchor)
	}
	for _, r := range res.Repairs {
		fmt.Fprintf(w, "  repaired: torn line %s:%d (offset %d) sealed by audit.repair seq %d\n", r.File, r.Line, r.Offset, r.RepairSeq)
	}
	for _, r := range res.Resets {
		fmt.Fprintf(w, "  anchor reset by audit.repair seq %d: the log was %s (%s); the previous anchor said chain %s reached seq %d at %s\n",
			r.RepairSeq, r.Problem, r.Found, r.Old.Chain, r.Old.Seq, r.Old.Time.UTC().Format(time.RFC3339))
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
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List records, filtered; a table, JSON lines or a YAML stream",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := out.get(cmd)
			if err != nil {
				return err
			}
			flt, err := ff.filter()
			if err != nil {
				return err
			}
			env, err := c.auditSetup(f, false)
			if err != nil {
				return err
			}
			switch format {
			case outJSON:
				enc := json.NewEncoder(c.stdout)
				return audit.Scan(cmd.Context(), env.file, flt, func(r *audit.Record) error { return enc.Encode(r) }, c.skipped)
			case outYAML:
				enc := yaml.NewEncoder(c.stdout)
				enc.SetIndent(2)
				err := audit.Scan(cmd.Context(), env.file, flt, func(r *audit.Record) error {
					doc, err := jsonTree(r)
					if err != nil {
						return err
					}
					return enc.Encode(doc)
				}, c.skipped)
				if cerr := enc.Close(); err == nil {
					err = cerr
				}
				return err
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
	out.add(cmd)
	cmd.Flags().Lookup("json").Usage = "same as --output json: JSON lines, the records as stored"
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
			sec, err := vc.ReadDocVersion(ctx, app.VaultPath, version)
			if err != nil {
				return fmt.Errorf("vault: read %s/%s: %w", env.cfg.Vault.KVMount, app.VaultPath, err)
			}
			w := c.stdout
			fmt.Fprintf(w, "app %s  path %s/%s  version %d\n", app.Name, env.cfg.Vault.KVMount, app.VaultPath, sec.Version)
			if !sec.Created.IsZero() {
				fmt.Fprintf(w, "  created: %s\n", sec.Created.UTC().Format(time.RFC3339))
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
		Short: "Seal a torn last line, or record a lost/replaced log and move its anchor (audited)",
		Long: `Two situations stop the daemon from writing (fail closed), and repair handles
both with an audit.repair record, signed, linked and anchored like any other:

- a torn last line (a crash in the middle of an append): the fragment is
  kept as evidence, ended with a newline, and the record names its line,
  offset, length and SHA-256; verify then reports the repair;
- a log that does not reach its anchor in Vault (deleted, cut, replaced):
  after you tried to restore it from a backup, repair records what the
  anchor said and what was found, and moves the anchor to the log as it is.
  verify then lists the reset; the old anchor stays in the record and in
  the KV version history of the anchor.

Nothing is deleted or rewritten. It needs the daemon's Vault rights (MAC
and sign with the transit keys, write the anchor) and names who and why.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if operator == "" || reason == "" {
				return usageError{errors.New("--operator and --reason are required: the repair record names who repaired and why")}
			}
			open, file, done, err := c.auditWriter(ctx, f, false)
			if err != nil {
				return err
			}
			defer done()
			extra := audit.Options{RepairActor: rotator.Actor{Kind: rotator.ActorOperator, Identity: operator, Reason: reason}}
			var torn *audit.TornTailError
			var lost *audit.AnchorError
			for range 3 {
				l, err := open(extra)
				switch {
				case err == nil:
					seq, _, _ := l.Head()
					if err := l.Close(); err != nil {
						return err
					}
					if torn == nil && lost == nil {
						fmt.Fprintf(c.stdout, "%s: reaches its anchor and has no torn last line; nothing to repair\n", file)
						return nil
					}
					if torn != nil {
						fmt.Fprintf(c.stdout, "%s: sealed the torn line %d (%d bytes at offset %d) with an audit.repair record\n", file, torn.Line, torn.Length, torn.Offset)
					}
					if lost != nil {
						fmt.Fprintf(c.stdout, "%s: was %s (%s); recorded with an audit.repair record and moved anchor %q from chain %s seq %d to this log\n",
							file, lost.Problem, lost.Found, lost.Anchor.ID, lost.Anchor.Chain, lost.Anchor.Seq)
					}
					fmt.Fprintf(c.stdout, "head now at seq %d; run `ecarotator audit verify`\n", seq)
					return nil
				case errors.As(err, &torn) && !extra.RepairTornTail:
					extra.RepairTornTail = true
				case errors.As(err, &lost) && !extra.RepairAnchor:
					extra.RepairAnchor = true
				default:
					return err
				}
			}
			return errors.New("audit repair: the log still does not open after repairing")
		},
	}
	cmd.Flags().StringVar(&operator, "operator", "", "who performs the repair (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, e.g. an incident id (recorded)")
	return cmd
}

// auditWriter returns how repair and checkpoint open the log as a writer:
// with a config, exactly as the daemon does (transit keys, anchor; needs
// the daemon's Vault rights), sharing the file with it under its lock;
// without one (unless needConfig), offline on --file with the lab key of
// --mac-key-file.
func (c *cli) auditWriter(ctx context.Context, f *auditFlags, needConfig bool) (func(audit.Options) (*audit.Log, error), string, func(), error) {
	env, err := c.auditSetup(f, needConfig)
	if err != nil {
		return nil, "", nil, err
	}
	if env.file == "" {
		return nil, "", nil, usageError{errors.New("no log: pass --file or a config")}
	}
	if env.cfg == nil {
		mac, err := env.mac(ctx, f)
		if err != nil {
			return nil, "", nil, err
		}
		return func(extra audit.Options) (*audit.Log, error) {
			extra.File, extra.MAC = env.file, mac
			return audit.New(ctx, extra)
		}, env.file, func() {}, nil
	}
	cfg := env.cfg
	cfg.Audit.File = env.file
	log, err := c.logger(cfg, false)
	if err != nil {
		return nil, "", nil, err
	}
	vo, err := wire.VaultOptions(cfg, log)
	if err != nil {
		return nil, "", nil, configError{err}
	}
	vc, err := vault.New(ctx, vo)
	if err != nil {
		return nil, "", nil, fmt.Errorf("vault: %w", err)
	}
	return func(extra audit.Options) (*audit.Log, error) {
			return wire.AuditLogWith(ctx, cfg, vc, log, extra)
		}, env.file, func() {
			_ = vc.Close()
			_ = log.Sync()
		}, nil
}

func (c *cli) auditCheckpointCommand(f *auditFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign and anchor the log's head now (e.g. before archiving or exporting it)",
		Long: `Appends an audit.checkpoint record that signs the current head with the
transit ed25519 key and advances the anchor in Vault, so that an offline
` + "`verify --public-key`" + ` covers every record up to now. Safe while the daemon
runs: it takes the log's lock and catches up with the daemon's records
first. Needs the daemon's Vault rights (sign, write the anchor).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			open, file, done, err := c.auditWriter(ctx, f, true)
			if err != nil {
				return err
			}
			defer done()
			l, err := open(audit.Options{})
			if err != nil {
				return err
			}
			if err := l.Checkpoint(ctx); err != nil {
				_ = l.Close()
				return err
			}
			seq, _, chain := l.Head()
			if err := l.Close(); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s: head of chain %s signed and anchored at seq %d\n", file, chain, seq-1)
			return nil
		},
	}
	return cmd
}

func (c *cli) auditPublicKeyCommand(f *auditFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "public-key",
		Short: "Export the public key that checks the chain-head signatures (for offline verify)",
		Long: `Reads the public half of the transit signing key (audit.mac.sign_key) with
your VAULT_TOKEN — read on transit/keys/<key>, which the auditor policy
grants and which can compute nothing — and writes it as JSON (every key
version). Keep it with the archived logs: ` + "`ecarotator audit verify --file LOG --public-key FILE`" + `
then needs no Vault at all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := c.auditSetup(f, true)
			if err != nil {
				return err
			}
			if wire.AuditLabMode(env.cfg.Audit.MAC) {
				return configError{errors.New("lab mode (audit.mac.kv_path) has no public key: heads are MAC'd with the KV key; use transit")}
			}
			vc, err := env.vault()
			if err != nil {
				return err
			}
			pk, err := audit.ReadTransitPublicKeys(cmd.Context(), vc, env.cfg.Audit.MAC.TransitMount, env.cfg.Audit.MAC.SignKey)
			if err != nil {
				return err
			}
			return writeOut(c.stdout, out, func(w io.Writer) error { return audit.WritePublicKeys(w, pk) })
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of stdout")
	return cmd
}

func (c *cli) auditAnchorCommand(f *auditFlags) *cobra.Command {
	var out, anchorID string
	cmd := &cobra.Command{
		Use:   "anchor",
		Short: "Export the log's signed anchor from Vault (for offline verify --anchor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := c.auditSetup(f, true)
			if err != nil {
				return err
			}
			vc, err := env.vault()
			if err != nil {
				return err
			}
			id := anchorIDFor(env, anchorID)
			a, _, err := audit.ReadAnchor(cmd.Context(), vc, env.cfg.Vault.KVMount, env.cfg.Audit.Checkpoints, id)
			if err != nil {
				return err
			}
			if a == nil {
				return fmt.Errorf("audit: no anchor %q under %s/%s/anchors", id, env.cfg.Vault.KVMount, env.cfg.Audit.Checkpoints)
			}
			return writeOut(c.stdout, out, func(w io.Writer) error { return audit.WriteAnchorJSON(w, a) })
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&anchorID, "anchor-id", "", "which anchor (default: audit.anchor_id, else derived from the log path)")
	return cmd
}

// writeOut writes with fn to the file out (mode 0644: public material), or
// to stdout when out is empty.
func writeOut(stdout io.Writer, out string, fn func(io.Writer) error) error {
	if out == "" {
		return fn(stdout)
	}
	fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := fn(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
