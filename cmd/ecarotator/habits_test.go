package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpHoldsEveryFlag walks the whole command tree (completion and help
// included) and checks that each command's --help names every flag it
// accepts, local and inherited, each with a description.
func TestHelpHoldsEveryFlag(t *testing.T) {
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	root := c.rootCommand()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(cmd *cobra.Command)
	n := 0
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
		n++
		path := strings.Fields(cmd.CommandPath())[1:]
		code, out, stderr := runCLI(t, nil, append(path, "--help")...)
		if code != ExitOK {
			t.Errorf("%s --help: exit %d: %s", cmd.CommandPath(), code, stderr)
			return
		}
		check := func(f *pflag.Flag) {
			if f.Hidden {
				t.Errorf("%s: flag --%s is hidden from --help", cmd.CommandPath(), f.Name)
			}
			if strings.TrimSpace(f.Usage) == "" {
				t.Errorf("%s: flag --%s has no description", cmd.CommandPath(), f.Name)
			}
			if !strings.Contains(out, "--"+f.Name) {
				t.Errorf("%s --help lacks --%s", cmd.CommandPath(), f.Name)
			}
		}
		cmd.LocalFlags().VisitAll(check)
		cmd.InheritedFlags().VisitAll(check)
	}
	walk(root)
	if n < 20 {
		t.Errorf("walked %d commands, want the whole tree", n)
	}
}

func TestCompletionScriptsAreGenerated(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, stderr := runCLI(t, nil, "completion", shell)
		if code != ExitOK || !strings.Contains(out, "ecarotator") || len(out) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), stderr)
		}
	}
	// Flag values complete too: --output offers its formats.
	code, out, _ := runCLI(t, nil, "__complete", "status", "--output", "")
	if code != ExitOK || !strings.Contains(out, "table\njson\nyaml") {
		t.Errorf("__complete status --output: exit %d, %q", code, out)
	}
	// Subcommands complete.
	_, out, _ = runCLI(t, nil, "__complete", "rot")
	if !strings.Contains(out, "rotate") {
		t.Errorf("__complete rot: %q", out)
	}
}

func TestCLILogLevelIsQuietUnlessVerbose(t *testing.T) {
	tests := []struct {
		verbose int
		env     string
		info    bool
		debug   bool
	}{
		{verbose: 0, info: false, debug: false},
		{verbose: 1, info: true, debug: false},
		{verbose: 2, info: true, debug: true},
		{verbose: 0, env: "debug", info: true, debug: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("-v x%d env %q", tt.verbose, tt.env), func(t *testing.T) {
			var buf bytes.Buffer
			c := &cli{stderr: &buf, verbose: tt.verbose, getenv: func(k string) string {
				if k == "ECAROTATOR_LOG_LEVEL" {
					return tt.env
				}
				return ""
			}}
			log, err := c.logger(nil, false)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("vault: logged in")
			log.Debug("salesforce call")
			log.Warn("a warning")
			_ = log.Sync()
			got := buf.String()
			if strings.Contains(got, "logged in") != tt.info || strings.Contains(got, "salesforce call") != tt.debug || !strings.Contains(got, "a warning") {
				t.Errorf("log output %q: want info=%t debug=%t and the warning", got, tt.info, tt.debug)
			}
		})
	}
}

func TestErrorsCarryAHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		want string
	}{
		{"a usage error points at --help", usageError{errors.New("x")}, ExitUsage, "--help`"},
		{"a config error points at config validate", configError{errors.New("x")}, ExitConfig, "config validate"},
		{"a refused Vault login names the auth settings", fmt.Errorf("login: %w", vault.ErrBadCredentials), ExitRuntime, "VAULT_TOKEN"},
		{"a held lease says to retry", fmt.Errorf("rotate: %w", rotator.ErrLocked), ExitRuntime, "run again in a moment"},
		{"any other runtime error suggests -v", errors.New("boom"), ExitRuntime, "-v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hint(tt.err, tt.code, nil); !strings.Contains(got, tt.want) {
				t.Errorf("hint = %q, want it to contain %q", got, tt.want)
			}
		})
	}
	code, _, stderr := runCLI(t, nil, "status", "--bogus")
	if code != ExitUsage || !strings.Contains(stderr, "hint: see `ecarotator status --help`") {
		t.Errorf("status --bogus: exit %d, stderr %q", code, stderr)
	}
}
