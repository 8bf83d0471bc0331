package salesforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/ecarotator/ecarotator/rotator"
)

// Class is what a failed call means for the caller: whether it may be
// retried, and which rotator sentinel it matches. Retryability is decided
// here and nowhere else in the package.
type Class int

// Error classes. The zero value is ClassFinal so that an error nobody
// classified is never retried.
const (
	// ClassFinal: Salesforce answered no for a reason the engine does not
	// branch on (400 bad request, unsupported_grant_type, 410, 412 …). Not
	// retried; matches no sentinel.
	ClassFinal Class = iota
	// ClassTransient: 5xx, 429, connection reset, timeout on an idempotent
	// call. Retried with backoff; matches rotator.ErrUnreachable.
	ClassTransient
	// ClassRateLimited: REQUEST_LIMIT_EXCEEDED / rate_limit_exceeded (the
	// org's 24 h quota). Never hot-retried; matches rotator.ErrRateLimited.
	ClassRateLimited
	// ClassAuth: Salesforce refused the credentials (invalid_client,
	// invalid_client_id, invalid_grant, inactive_user, inactive_org, or a
	// 401 that survived one re-authentication). Matches rotator.ErrRejected.
	ClassAuth
	// ClassPermission: 403 INSUFFICIENT_ACCESS and friends, the secret-access
	// gate being closed. Matches rotator.ErrPermission.
	ClassPermission
	// ClassNotFound: 404. Matches rotator.ErrNotFound.
	ClassNotFound
	// ClassSlotOccupied: a POST staged found the consumer's single staged
	// slot taken (409, or a 4xx while GET staged shows an entry). Matches
	// rotator.ErrSlotOccupied.
	ClassSlotOccupied
	// ClassAmbiguous: a non-idempotent call (POST staged, PATCH rotate,
	// DELETE staged) failed after it may have reached Salesforce. Matches
	// rotator.ErrAmbiguous and rotator.ErrUnreachable; the caller must
	// re-read state before doing anything else.
	ClassAmbiguous
	// ClassConfig: the token endpoint said the app or org is set up so the
	// request cannot work (app_not_found, no client-credentials run-as
	// user, unsupported_grant_type, a login host for client credentials).
	// Not retried; matches rotator.ErrMisconfigured.
	ClassConfig
)

var classNames = [...]string{
	ClassFinal:        "final",
	ClassTransient:    "transient",
	ClassRateLimited:  "rate-limited",
	ClassAuth:         "auth",
	ClassPermission:   "permission",
	ClassNotFound:     "not-found",
	ClassSlotOccupied: "slot-occupied",
	ClassAmbiguous:    "ambiguous",
	ClassConfig:       "config",
}

// String returns the class's stable lower-case name (used in logs).
func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// ErrBodyTooLarge is returned (wrapped in an *APIError) when a response body
// exceeds Options.MaxBodyBytes.
var ErrBodyTooLarge = errors.New("response body too large")

// APIError is every error this package returns for a call that reached (or
// tried to reach) Salesforce. It never carries a raw response body, a token,
// an assertion or a secret: only the status, Salesforce's errorCode (or OAuth
// "error", or SOAP faultcode) and its message.
type APIError struct {
	// Op is the method and route template, e.g. "GET /apps/oauth/usage".
	Op string
	// Status is the HTTP status, 0 when no response was received.
	Status int
	// Code is Salesforce's errorCode, OAuth error or SOAP fault code.
	Code string
	// Message is Salesforce's message / error_description / faultstring,
	// truncated.
	Message string
	// Class decides retryability and the matching rotator sentinel.
	Class Class
	// err is the redacted transport cause (never a *url.Error).
	err error
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("salesforce: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	}
	if e.Code != "" {
		if e.Status != 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.err != nil {
		if e.Status != 0 || e.Code != "" || e.Message != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.err.Error())
	}
	fmt.Fprintf(&b, " (%s)", e.Class)
	return b.String()
}

// Unwrap returns the transport cause (context.DeadlineExceeded, a
// *net.OpError, ErrBodyTooLarge …), if any.
func (e *APIError) Unwrap() error { return e.err }

// Is maps the class onto the rotator sentinels so the engine can branch with
// errors.Is.
func (e *APIError) Is(target error) bool {
	if target == rotator.ErrPackagedStaged {
		// The staged-credentials endpoints refuse a packaged ECA with
		// INVALID_OPERATION ("doesn't apply to packaged external client apps").
		return e.Code == "INVALID_OPERATION" && strings.Contains(strings.ToLower(e.Message), "packaged")
	}
	switch e.Class {
	case ClassTransient:
		return target == rotator.ErrUnreachable
	case ClassRateLimited:
		return target == rotator.ErrRateLimited
	case ClassAuth:
		return target == rotator.ErrRejected
	case ClassPermission:
		return target == rotator.ErrPermission
	case ClassNotFound:
		return target == rotator.ErrNotFound
	case ClassSlotOccupied:
		return target == rotator.ErrSlotOccupied
	case ClassAmbiguous:
		return target == rotator.ErrAmbiguous || target == rotator.ErrUnreachable
	case ClassConfig:
		return target == rotator.ErrMisconfigured
	}
	return false
}

// Retryable reports whether an idempotent call failing with e may be retried
// at once with backoff. Rate limiting is deliberately not retryable here: it
// needs a long pause decided by the scheduler.
func (e *APIError) Retryable() bool { return e.Class == ClassTransient }

// maxMessage bounds the Salesforce message kept in an error.
const maxMessage = 512

func truncate(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxMessage {
		return s[:maxMessage] + "…"
	}
	return s
}

// restError is one element of Salesforce's REST error array.
type restError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// oauthError is the RFC 6749 error body of the token endpoint.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// parseRESTError extracts errorCode and message from a REST error body:
// an array of {message, errorCode} (the documented shape), a bare object, or
// an OAuth {error, error_description} object. Unparseable bodies give "".
func parseRESTError(body []byte) (code, msg string) {
	body = trimJSON(body)
	if len(body) == 0 {
		return "", ""
	}
	var arr []restError
	if body[0] == '[' && json.Unmarshal(body, &arr) == nil && len(arr) > 0 {
		return arr[0].ErrorCode, truncate(arr[0].Message)
	}
	if body[0] == '{' {
		var obj struct {
			restError
			oauthError
		}
		if json.Unmarshal(body, &obj) == nil {
			if obj.ErrorCode != "" || obj.Message != "" {
				return obj.ErrorCode, truncate(obj.Message)
			}
			return obj.Error, truncate(obj.Description)
		}
	}
	return "", ""
}

// classifyREST decides the class of a non-2xx REST or SOAP response.
// idempotent says whether the call may safely be repeated.
func classifyREST(status int, code string, idempotent bool) Class {
	switch {
	case code == "REQUEST_LIMIT_EXCEEDED" || code == "rate_limit_exceeded":
		return ClassRateLimited
	case status == 401:
		return ClassAuth
	case code == "INVALID_SESSION_ID":
		return ClassAuth
	case status == 403:
		return ClassPermission
	case code == "INSUFFICIENT_ACCESS" || code == "INSUFFICIENT_ACCESS_OR_READONLY" || code == "FUNCTIONALITY_NOT_ENABLED" || code == "API_DISABLED_FOR_ORG":
		return ClassPermission
	case status == 404:
		return ClassNotFound
	case status == 409:
		return ClassSlotOccupied
	case status == 429:
		// Salesforce rejects a 429 before doing anything, so it is not
		// ambiguous even for a mutation; only idempotent calls retry it.
		return ClassTransient
	case status >= 500:
		if idempotent {
			return ClassTransient
		}
		return ClassAmbiguous
	}
	return ClassFinal
}

// classifyOAuth decides the class of a token endpoint error from its code
// alone.
func classifyOAuth(status int, code string) Class { return classifyOAuthError(status, code, "") }

// Token endpoint error descriptions that say "configuration", not "wrong
// credentials". Matching Salesforce's text is deliberate: it is outside
// input, the only signal inside invalid_grant.
var configGrantTexts = []string{
	"no client credentials user enabled",
	"request not supported on this domain",
	"not installed in this org",
}

// classifyOAuthError decides the class of a token endpoint error. The
// vocabulary (errors seen from Salesforce, doc or field reports):
//
//	invalid_client, invalid_client_credentials   wrong secret          → auth (rejected)
//	invalid_client_id                            unknown/unpropagated key → auth (rejected)
//	invalid_grant: user hasn't approved this consumer,
//	  expired authorization code (a JWT past its exp), invalid assertion,
//	  audience is invalid, authentication failure → auth (rejected)
//	invalid_grant: no client credentials user enabled,
//	  request not supported on this domain        → config
//	app_not_found (ECA not installed in the org)  → config
//	unsupported_grant_type (flow not enabled)     → config
//	inactive_user, inactive_org, unauthorized_client → auth (rejected)
//	rate_limit_exceeded                           → rate-limited
//	no code: 5xx/429 → transient, 401 → auth, 403 → permission, else final
func classifyOAuthError(status int, code, desc string) Class {
	switch code {
	case "app_not_found", "unsupported_grant_type":
		return ClassConfig
	case "invalid_grant":
		d := strings.ToLower(desc)
		for _, t := range configGrantTexts {
			if strings.Contains(d, t) {
				return ClassConfig
			}
		}
		return ClassAuth
	case "invalid_client", "invalid_client_id", "invalid_client_credentials", "inactive_user", "inactive_org", "unauthorized_client":
		return ClassAuth
	case "rate_limit_exceeded":
		return ClassRateLimited
	case "":
		if status == 429 || status >= 500 {
			return ClassTransient
		}
		if status == 401 {
			return ClassAuth
		}
		if status == 403 {
			return ClassPermission
		}
		return ClassFinal
	}
	if status == 429 || status >= 500 {
		return ClassTransient
	}
	return ClassFinal
}

// transportError turns a failure to get a response into an *APIError. The
// *url.Error wrapper (which carries the URL) is dropped; its cause is kept
// so errors.Is(err, context.DeadlineExceeded) still works. notSent reports
// whether the request provably never left this process (a dial failure), in
// which case even a mutation may be retried.
func transportError(op string, err error, idempotent bool) (apiErr *APIError, notSent bool) {
	err = redactErr(err)
	notSent = isDialError(err)
	class := ClassTransient
	if !idempotent && !notSent {
		// The request may have been applied before the connection died
		// (a caller cancellation or timeout included): unknown outcome.
		class = ClassAmbiguous
	}
	return &APIError{Op: op, Class: class, err: err}, notSent
}

// isDialError reports whether err happened while connecting, i.e. before any
// byte of the request was written.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// redactErr keeps the error chain but replaces any *url.Error inside with
// its cause; the remaining net errors name only addresses, never paths or
// query strings.
func redactErr(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) {
			return err
		}
		err = ue.Err
	}
}

// gateClosed reports whether a Salesforce message reads like the
// "Allow access to External Client App consumer secrets via REST API" setting
// being off. The exact errorCode is unconfirmed; these are the wordings
// integrators have seen. Matching Salesforce's text here is deliberate: it
// is outside input, not one of our errors.
func gateClosed(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "not currently enabled") || strings.Contains(m, "feature is not enabled") || strings.Contains(m, "not enabled for this user")
}

// scrub replaces every occurrence of the given secrets in s with a
// redaction marker. Empty and very short secrets are ignored.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}
