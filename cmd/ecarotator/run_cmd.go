package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func (c *cli) runCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: scheduler, HTTP API, metrics, webhooks",
		Long: `Runs the daemon until SIGINT or SIGTERM: every enabled app rotates on its cron
schedule (at a random point of its window, with a max-age safety net and
catch-up after downtime), each Dev Hub within its concurrency limit and API
budget; previous pairs are retired when their overlap ends. Several replicas
may run against one Vault: each slot rotates exactly once.

SIGHUP reloads the config file after validating it; a bad config keeps the
running one and the reason is logged and audited. On SIGINT/SIGTERM running
rotations get scheduler.shutdown_grace to reach a journal boundary; a second
signal exits at once (130).

Exit codes: 0 stopped cleanly, 1 runtime error, 3 config error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			log, err := c.logger(cfg, true)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			return c.runDaemon(cmd.Context(), cfg, log, listen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", `HTTP listen address (overrides server.listen; "-" disables the server)`)
	return cmd
}

// daemonGCPercent is the daemon's GC target unless GOGC is set: a
// long-running process whose heap is mostly its apps' state (tens of MiB
// with 10,000 apps) would otherwise let garbage grow to that size again
// under API load before collecting (issue 14: RSS growth under 20 MiB at
// 500 req/s). The daemon is idle most of the time, so the extra GC work
// costs little.
const daemonGCPercent = 50

// runDaemon starts the daemon and maps SIGHUP to Reload until ctx ends.
func (c *cli) runDaemon(ctx context.Context, cfg *config.Config, log *zap.Logger, listen string) error {
	if c.getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
	d, err := daemon.New(daemon.Options{
		Settings: wire.Daemon(cfg), ConfigPath: c.cfgPath, Logger: log, Listen: listen,
		LoadSettings: func(p string) (*wire.DaemonSettings, error) {
			nc, err := config.Load(p, c.getenv)
			if err != nil {
				return nil, err
			}
			if c.logLevel != "" {
				nc.Log.Level = c.logLevel
			}
			return wire.Daemon(nc), nil
		},
		RuntimeOptions: wire.RuntimeOptions{Hook: crashHook},
	})
	if err != nil {
		return err
	}
	if err := d.EnableMFA(); err != nil { // MFA gate and two-person approvals (internal/daemon/mfa.go)
		_ = d.Close()
		return err
	}
	if a := d.Addr(); a != nil {
		log.Info("http server listening", zap.String("addr", a.String()))
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan struct{})
	defer close(done)
	go func() { // owned: exits when runDaemon returns
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := d.Reload(); err != nil {
					log.Error("SIGHUP: config not reloaded", zap.Error(err))
				}
			}
		}
	}()
	return d.Run(ctx)
}
