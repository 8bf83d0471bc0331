package main

import (
	"errors"
)

// Exit codes. Scripts and CI depend on them; do not renumber.
const (
	ExitOK           = 0 // success
	ExitRuntime      = 1 // a runtime failure (Vault, Salesforce, I/O)
	ExitUsage        = 2 // bad flags or arguments
	ExitConfig       = 3 // the config file is missing or invalid
	ExitVerification = 4 // a rotation's proof failed, audit verify found tampering, or audit report found an app past max age
)

// errSilent marks an error already reported to the user.
var errSilent = errors.New("already reported")

type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

type verifyError struct{ err error }

func (e verifyError) Error() string { return e.err.Error() }
func (e verifyError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var (
		ue usageError
		ce configError
		ve verifyError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ce):
		return ExitConfig
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ve):
		return ExitVerification
	default:
		if isCobraUsage(err) {
			return ExitUsage
		}
		return ExitRuntime
	}
}
