package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/rotator"
)

// Errors of this adapter that have no rotator counterpart. Both are matched
// with errors.Is; a sealed error also matches rotator.ErrUnreachable so that
// the engine, which knows only rotator's sentinels, backs off and retries.
var (
	// ErrSealed: Vault answered but is sealed. Errors wrapping it also wrap
	// rotator.ErrUnreachable.
	ErrSealed = errors.New("vault is sealed")
	// ErrBadCredentials: Vault refused the login (wrong role/secret id,
	// rejected JWT) or the configured token is invalid or expired and the
	// auth method cannot log in again.
	ErrBadCredentials = errors.New("vault rejected the credentials")
)

// opError is the one error type the adapter returns for failed Vault calls.
// Its message is one line (operation, path, class, Vault's own messages);
// Unwrap exposes the sentinels it belongs to and the vault/api error, so
// callers use errors.Is for the class and errors.As for *api.ResponseError.
type opError struct {
	op, path string
	kinds    []error
	cause    error
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString("vault: ")
	b.WriteString(e.op)
	if e.path != "" {
		b.WriteString(" ")
		b.WriteString(e.path)
	}
	for _, k := range e.kinds {
		b.WriteString(": ")
		b.WriteString(k.Error())
	}
	if d := detail(e.cause); d != "" {
		b.WriteString(" (")
		b.WriteString(d)
		b.WriteString(")")
	}
	return b.String()
}

func (e *opError) Unwrap() []error {
	out := make([]error, 0, len(e.kinds)+1)
	out = append(out, e.kinds...)
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// newOpError builds an opError of the given kinds without a Vault cause
// (decisions the adapter makes itself: not managed, fenced, locked).
func newOpError(op, path string, kinds ...error) error {
	return &opError{op: op, path: path, kinds: kinds}
}

// wrapErr classifies err (from vault/api or the network) and wraps it with
// the operation and path. It is the one place that decides which sentinel a
// Vault failure belongs to. An error that is already classified is returned
// with the new context prepended; context cancellation passes through
// unchanged in kind.
func wrapErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var oe *opError
	if errors.As(err, &oe) {
		return &opError{op: op, path: path, kinds: oe.kinds, cause: oe.cause}
	}
	return &opError{op: op, path: path, kinds: classify(err), cause: err}
}

// classify returns the sentinels err belongs to (none when it fits no class,
// e.g. a malformed request).
func classify(err error) []error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return classifyStatus(re.StatusCode, re.Errors)
	}
	if isTLSError(err) {
		// A certificate Vault's client does not trust is a configuration
		// problem, not an outage: retrying cannot fix it.
		return nil
	}
	if isNetworkError(err) {
		return []error{rotator.ErrUnreachable}
	}
	return nil
}

// classifyStatus maps an HTTP status and Vault's error messages to sentinels.
// Matching Vault's message text is unavoidable for two cases: a sealed
// server and a check-and-set mismatch share their status codes with other
// failures.
func classifyStatus(code int, msgs []string) []error {
	joined := strings.ToLower(strings.Join(msgs, " "))
	switch {
	case code == http.StatusServiceUnavailable && strings.Contains(joined, "sealed"):
		return []error{ErrSealed, rotator.ErrUnreachable}
	case code == http.StatusBadRequest && strings.Contains(joined, "check-and-set"):
		return []error{rotator.ErrConflict}
	case code == http.StatusForbidden:
		return []error{rotator.ErrPermission}
	case code == http.StatusNotFound:
		return []error{rotator.ErrNotFound}
	case code >= 500, code == http.StatusTooManyRequests, code == http.StatusPreconditionFailed:
		// 429: standby/performance standby; 412: replication not caught up.
		return []error{rotator.ErrUnreachable}
	}
	return nil
}

// isNetworkError reports whether err means Vault could not be reached or the
// connection broke: the outcome of a write is then unknown.
func isNetworkError(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		// The client timeout fires as a deadline; a caller's own deadline
		// also lands here, and for them too Vault did not answer in time.
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// isTLSError reports whether err is a failed certificate verification.
func isTLSError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// detail renders a cause in one line without request bodies: for Vault's
// answers, the status and its error messages (which never echo secrets);
// otherwise the error text (URLs of our requests carry no secrets).
func detail(err error) string {
	if err == nil {
		return ""
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		msgs := make([]string, 0, len(re.Errors))
		for _, m := range re.Errors {
			msgs = append(msgs, strings.Join(strings.Fields(m), " "))
		}
		return fmt.Sprintf("HTTP %d: %s", re.StatusCode, strings.Join(msgs, "; "))
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// isStatus reports whether err is a Vault answer with the given status.
func isStatus(err error, code int) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}
