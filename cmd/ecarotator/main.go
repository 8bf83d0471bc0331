// Command ecarotator rotates the OAuth consumer secrets of Salesforce
// External Client Apps through the Dev Hub org that owns them, keeps the new
// credentials in HashiCorp Vault KV v2, and records every step in a
// tamper-evident audit trail.
//
// One binary: the daemon (`run`) and the operator and auditor CLI. Exit codes
// are documented in exitcodes.go and the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/logging"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run is the one place that maps errors to exit codes. A first SIGINT or
// SIGTERM cancels the context (graceful stop); a second exits 130 at once.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second signal kills the process
	}()
	return execute(ctx, args, stdin, stdout, stderr, getenv)
}

// execute runs the CLI with the given context; tests call it directly.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	return (&cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}).runArgs(ctx, args)
}

// runArgs runs the command line args on c.
func (c *cli) runArgs(ctx context.Context, args []string) int {
	stdout, stderr := c.stdout, c.stderr
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if !errors.Is(err, errSilent) {
		fmt.Fprintf(stderr, "ecarotator: %v\n", err)
		if h := hint(err, code, cmd); h != "" && ctx.Err() == nil {
			fmt.Fprintf(stderr, "hint: %s\n", h)
		}
	}
	return code
}

// cli holds what every subcommand shares.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	cfgPath   string
	logLevel  string
	logFormat string
	verbose   int

	// now and newTicker are the CLI's clock (status --watch); tests inject
	// fakes, nil means package time.
	now       func() time.Time
	newTicker func(d time.Duration) (<-chan time.Time, func())
}

// clock returns the current time.
func (c *cli) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// ticker returns a channel that ticks every d and its stop function.
func (c *cli) ticker(d time.Duration) (<-chan time.Time, func()) {
	if c.newTicker != nil {
		return c.newTicker(d)
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ecarotator",
		Short: "Rotate Salesforce External Client App secrets into HashiCorp Vault",
		Long: `ecarotator rotates the OAuth consumer key and secret of Salesforce External
Client Apps through the Dev Hub org that owns them (Connect REST staged
credentials), keeps every new pair in Vault KV v2 before the next step,
proves it with a real token request, and records each step in a
tamper-evident audit trail.

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 config error,
4 verification failure (a rotation's proof did not pass, audit verify found
tampering, or audit report found an app past its max age).`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	def := c.getenv("ECAROTATOR_CONFIG")
	if def == "" {
		def = "ecarotator.yaml"
	}
	root.PersistentFlags().StringVarP(&c.cfgPath, "config", "c", def, "config file (env ECAROTATOR_CONFIG)")
	root.PersistentFlags().StringVar(&c.logLevel, "log-level", "", "debug|info|warn|error (overrides -v, config and ECAROTATOR_LOG_LEVEL)")
	root.PersistentFlags().CountVarP(&c.verbose, "verbose", "v", "CLI commands: -v logs progress (info), -vv debug; quiet (warnings and errors) by default")
	root.PersistentFlags().StringVar(&c.logFormat, "log-format", "", "json|console (default: json for run, console otherwise)")
	root.AddCommand(
		c.runCommand(),
		c.rotateCommand(),
		c.planCommand(),
		c.retireCommand(),
		c.statusCommand(),
		c.doctorCommand(),
		c.auditCommand(),
		c.mfaCommand(),
		c.revealCommand(),
		c.approveCommand(),
		c.configCommand(),
		c.versionCommand(),
	)
	return root
}

// loadConfig loads and validates the config; flags win over file and env.
func (c *cli) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(c.cfgPath, c.getenv)
	if err != nil {
		return nil, configError{err}
	}
	if c.logLevel != "" {
		cfg.Log.Level = c.logLevel
	}
	if c.logFormat != "" {
		cfg.Log.Format = c.logFormat
	}
	return cfg, nil
}

// setup loads the config and builds the command's logger (the prologue of
// every command that works on a config).
func (c *cli) setup(daemon bool) (*config.Config, *zap.Logger, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	log, err := c.logger(cfg, daemon)
	if err != nil {
		return nil, nil, err
	}
	return cfg, log, nil
}

// logger builds the logger for a command: JSON for the daemon, console for
// the CLI unless configured otherwise. Logs go to stderr.
//
// The daemon logs at the config's log.level. CLI commands are quiet on
// success: warnings and errors only, -v adds progress (info), -vv debug;
// ECAROTATOR_LOG_LEVEL and --log-level still set the level outright.
func (c *cli) logger(cfg *config.Config, daemon bool) (*zap.Logger, error) {
	format, level := logging.FormatConsole, "info"
	if daemon {
		format = logging.FormatJSON
	}
	if cfg != nil {
		if cfg.Log.Format != "" {
			format = cfg.Log.Format
		}
		level = cfg.Log.Level
	}
	if !daemon {
		level = cliLevel(c.verbose, c.getenv("ECAROTATOR_LOG_LEVEL"))
	}
	if c.logFormat != "" {
		format = c.logFormat
	}
	if c.logLevel != "" {
		level = c.logLevel
	}
	l, err := logging.New(c.stderr, format, level)
	if err != nil {
		return nil, usageError{err}
	}
	return l, nil
}

// cliLevel is a CLI command's log level: env wins, then -v counts.
func cliLevel(verbose int, env string) string {
	switch {
	case env != "":
		return env
	case verbose >= 2:
		return "debug"
	case verbose == 1:
		return "info"
	default:
		return "warn"
	}
}

// hint is one line that tells the user what to try after err (empty when
// there is nothing useful to add).
func hint(err error, code int, cmd *cobra.Command) string {
	path := "ecarotator"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	switch {
	case code == ExitUsage:
		return "see `" + path + " --help`"
	case code == ExitConfig:
		return "`ecarotator config validate` lists every problem with its field path"
	case errors.Is(err, vault.ErrBadCredentials):
		return "check VAULT_TOKEN or vault.auth in the config (method, role, token source)"
	case errors.Is(err, vault.ErrSealed):
		return "Vault is sealed: unseal it, then run the command again"
	case errors.Is(err, rotator.ErrLocked), errors.Is(err, rotator.ErrInFlight):
		return "another holder (a daemon, or another run) is working on this app: run again in a moment"
	case errors.Is(err, rotator.ErrOrphaned):
		return "`ecarotator status` and `ecarotator plan` show the app's journal; resolve it, then rotate"
	case errors.Is(err, rotator.ErrUnreachable):
		return "check the network path to Vault and Salesforce; run again with -v for details"
	case code == ExitRuntime:
		return "run again with -v (or -vv) for details"
	}
	return ""
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(c.stdout, "ecarotator %s\n", version)
			return nil
		},
	}
}
