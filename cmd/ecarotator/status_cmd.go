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
	"github.com/ecarotator/ecarotator/rotator/scheduler"
	"github.com/spf13/cobra"
)

// maxStatusBody bounds a daemon's status answer.
const maxStatusBody = 16 << 20

func (c *cli) statusCommand() *cobra.Command {
	var (
		serverURL string
		out       outputFlags
		watch     bool
		interval  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every app's rotation state (from a running daemon, or from Vault)",
		Long: `Shows one line per app: last rotation, age, next planned rotation, until when
the previous pair stays valid, and the state (ok, in flight, orphaned, failing).

With --server (or ECAROTATOR_SERVER) the running daemon answers, including its
scheduler's next run with jitter. Without it the state is read from Vault and the
next rotation is the next slot of the schedule (window start, before jitter).

With --watch the view refreshes every --interval until interrupted (on a
terminal the screen is redrawn; otherwise each refresh follows the last,
headed by its time). A failed refresh is shown and the watch goes on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			format, err := out.get(cmd)
			if err != nil {
				return err
			}
			if serverURL == "" {
				serverURL = c.getenv("ECAROTATOR_SERVER")
			}
			show := func() error {
				var (
					apps   []server.AppStatus
					daemon map[string]string
				)
				if serverURL != "" {
					apps, daemon, err = fetchStatus(ctx, serverURL, rotator.NewSecret(c.getenv("VAULT_TOKEN")))
				} else {
					apps, err = c.localStatus(ctx)
				}
				if err != nil {
					return err
				}
				if format != outTable {
					return writeAs(c.stdout, format, apps)
				}
				printStatus(c.stdout, apps, c.clock())
				if daemon != nil {
					// What the running daemon enforces (M3): after a refused
					// reload this may differ from the config file.
					fmt.Fprintf(c.stdout, "\ndaemon: mfa enabled %s, revoke needs approval %s\n", daemon["mfa_enabled"], daemon["revoke_needs_approval"])
				}
				return nil
			}
			if !watch {
				return show()
			}
			if interval <= 0 {
				return usageError{fmt.Errorf("--interval must be positive, not %s", interval)}
			}
			return c.watchLoop(ctx, interval, show)
		},
	}
	cmd.Flags().StringVar(&serverURL, "server", "", "base URL of a running daemon, e.g. http://127.0.0.1:9464 (env ECAROTATOR_SERVER)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh every --interval until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "refresh interval of --watch")
	out.add(cmd)
	return cmd
}

// watchLoop calls show now and at every tick until ctx ends (a normal stop:
// nil). A terminal is cleared before each view; other writers get a header
// line with the time. A failed view is reported on stderr and the loop
// goes on.
func (c *cli) watchLoop(ctx context.Context, interval time.Duration, show func() error) error {
	tick, stop := c.ticker(interval)
	defer stop()
	tty := isTerminal(c.stdout)
	for {
		if tty {
			fmt.Fprint(c.stdout, "\x1b[H\x1b[2J")
		}
		fmt.Fprintf(c.stdout, "Every %s: ecarotator status  %s\n\n", interval, c.clock().UTC().Format(time.RFC3339))
		if err := show(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(c.stderr, "ecarotator: status: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if !tty {
				fmt.Fprintln(c.stdout)
			}
		}
	}
}

// fetchStatus asks a running daemon.
// The read API needs the caller's Vault token (read on the apps' status
// control paths, M2): VAULT_TOKEN is sent as X-Vault-Token.
func fetchStatus(ctx context.Context, base string, token rotator.Secret) ([]server.AppStatus, map[string]string, error) {
	// The listing is paged (server.MaxPageSize apps a page): follow "next".
	var (
		apps  []server.AppStatus
		info  map[string]string
		after string
	)
	for range 10000 {
		var out struct {
			Apps   []server.AppStatus `json:"apps"`
			Next   string             `json:"next"`
			Daemon map[string]string  `json:"daemon"`
		}
		path := fmt.Sprintf("/api/v1/apps?limit=%d", server.MaxPageSize)
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		if err := getJSON(ctx, base, path, "status", token, &out); err != nil {
			return nil, nil, err
		}
		apps, info = append(apps, out.Apps...), out.Daemon
		if out.Next == "" || out.Next == after {
			break
		}
		after = out.Next
	}
	return apps, info, nil
}

// getJSON GETs path from a running daemon's API and decodes the JSON answer
// (bounded) into out; what names the request in errors.
func getJSON(ctx context.Context, base, path, what string, token rotator.Secret, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return usageError{fmt.Errorf("--server: %w", err)}
	}
	if !token.IsZero() {
		if req.URL.Scheme != "https" && !config.LoopbackListen(req.URL.Host) {
			return usageError{fmt.Errorf("--server: refusing to send a Vault token over plain http to %s (use https)", req.URL.Host)}
		}
		req.Header.Set("X-Vault-Token", token.Reveal())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s from %s: %w", what, base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
	if err != nil {
		return fmt.Errorf("%s from %s: %w", what, base, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb server.ErrorBody
		_ = json.Unmarshal(body, &eb)
		return fmt.Errorf("%s from %s: HTTP %d %s", what, base, resp.StatusCode, eb.Error)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s from %s: decode: %w", what, base, err)
	}
	return nil
}

// localStatus reads Vault directly (no daemon needed).
func (c *cli) localStatus(ctx context.Context) ([]server.AppStatus, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	log, err := c.logger(cfg, false)
	if err != nil {
		return nil, err
	}
	defer func() { _ = log.Sync() }()
	rt, err := wire.New(ctx, cfg, log, wire.RuntimeOptions{NoAudit: true})
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	now := time.Now()
	var out []server.AppStatus
	for _, a := range cfg.Apps {
		if a.Disabled {
			continue
		}
		out = append(out, localAppStatus(ctx, rt, cfg, a, now))
	}
	return out, nil
}

func localAppStatus(ctx context.Context, rt *wire.Runtime, cfg *config.Config, a config.App, now time.Time) server.AppStatus {
	app := wire.App(cfg, a)
	s := server.AppStatus{Name: a.Name, DevHub: a.DevHub, ECA: a.ECA, VaultPath: app.VaultPath}
	in := rotator.NewInput(app, now)
	st, meta, err := rt.Vault.ReadCredentials(ctx, app.VaultPath)
	switch {
	case err == nil:
		s.ConsumerKey, s.LastRotation, s.PreviousValidUntil = st.Current.Key, st.RotatedAt, st.PreviousValidUntil
		in.SetStored(st, meta)
	case !errors.Is(err, rotator.ErrNotFound):
		s.LastError = "vault: " + err.Error()
	}
	var jp *rotator.JournalEntry
	if j, _, err := rt.Vault.Load(ctx, a.Name); err == nil {
		s.InFlight, s.Orphaned, s.LastError = j.Step != rotator.StepRetire, j.Orphaned, j.LastError
		jp = &j
		in.SetJournal(j)
	}
	if rt.Engine != nil {
		sc := rt.Engine.StrategyOf(ctx, app, jp)
		s.Strategy, s.StrategyWhy = string(sc.Strategy), sc.Why
	}
	// The one decision `plan` and the daemon use: the same next time (the
	// slot's stable start, or the max-age deadline) and reason.
	dec := rotator.PlanChain.Decide(in)
	s.NextRotation, s.NextReason = dec.Next, string(dec.NextReason)
	return s
}

// printStatus writes the status table.
func printStatus(w io.Writer, apps []server.AppStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tORG\tLAST ROTATED\tAGE\tNEXT\tPREVIOUS VALID UNTIL\tSTATE\tSTRATEGY")
	for _, a := range apps {
		strategy := a.Strategy
		if strategy == "" {
			strategy = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.DevHub, stamp(a.LastRotation), age(a.LastRotation, now),
			next(a, now), stamp(a.PreviousValidUntil), state(a), strategy)
	}
	_ = tw.Flush()
	for _, a := range apps {
		if a.StrategyWhy != "" {
			fmt.Fprintf(w, "  %s: strategy %s — %s\n", a.Name, a.Strategy, a.StrategyWhy)
		}
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return shortDur(now.Sub(t))
}

func next(a server.AppStatus, now time.Time) string {
	if a.NextRotation.IsZero() {
		return "-"
	}
	in := a.NextRotation.Sub(now)
	rel := "in " + shortDur(in)
	if in <= 0 {
		rel = "due"
	}
	out := stamp(a.NextRotation) + " (" + rel
	if a.NextReason != "" && a.NextReason != string(scheduler.ReasonScheduled) {
		out += ", " + a.NextReason
	}
	return out + ")"
}

func state(a server.AppStatus) string {
	switch {
	case a.Orphaned:
		return "orphaned"
	case a.InFlight && a.LastError != "":
		return "retrying"
	case a.InFlight:
		return "in flight"
	case a.LastError != "":
		return "failing"
	case a.LastRotation.IsZero():
		return "never rotated"
	}
	return "ok"
}

// shortDur renders a duration to the second, days for long ones.
func shortDur(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	}
	return d.String()
}
