package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// isCobraUsage tells cobra's own argument errors apart from runtime errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.Contains(msg, "arg(s)") || strings.HasPrefix(msg, "required flag")
}

// notImplemented declares a subcommand whose issue has not landed yet: it
// says so and exits 5, never silently succeeding.
func notImplemented(use, short, issue string) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short + " (not implemented yet)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notImplementedError{what: cmd.CommandPath(), issue: issue}
		},
	}
}
