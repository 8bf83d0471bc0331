package main

import "strings"

// isCobraUsage tells cobra's own argument errors apart from runtime errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.Contains(msg, "arg(s)") || strings.HasPrefix(msg, "required flag")
}
