package main

import (
	"errors"
)

// Exit codes. Scripts and CI depend on them; do not renumber.
const (
	ExitOK             = 0 // success
	ExitRuntime        = 1 // a runtime failure (Vault, Salesforce, I/O)
	ExitUsage          = 2 // bad flags or arguments
	ExitConfig         = 3 // the config file is missing or invalid
	ExitVerification   = 4 // a rotation's proof failed, or audit verify found tampering
	ExitNotImplemented = 5 // the subcommand is declared but not built yet
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

type notImplementedError struct{ what, issue string }

func (e notImplementedError) Error() string {
	return e.what + ": not implemented yet (" + e.issue + ")"
}

func exitCode(err error) int {
	var (
		ue usageError
		ce configError
		ve verifyError
		ne notImplementedError
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
	case errors.As(err, &ne):
		return ExitNotImplemented
	default:
		if isCobraUsage(err) {
			return ExitUsage
		}
		return ExitRuntime
	}
}
