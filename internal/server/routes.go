package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/logging"
	"github.com/ecarotator/ecarotator/rotator"
)

// Error codes in ErrorBody.Code.
const (
	CodeBadRequest      = "bad_request"
	CodeUnauthenticated = "unauthenticated"
	CodeForbidden       = "forbidden"
	CodeMFARequired     = "mfa_required"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	// CodePreviousInOverlap: rotate-now would revoke a previous pair that
	// is still inside its overlap (H3); the message says until when and
	// how to ask for the two-person approval.
	CodePreviousInOverlap = "previous_in_overlap"
	CodeTooLarge          = "body_too_large"
	CodeUnavailable       = "unavailable"
	CodeNotImplemented    = "not_implemented"
	CodeBadHost           = "bad_host"
	CodeEntityRequired    = "entity_required"
	CodeRateLimited       = "rate_limited"
	CodeOverloaded        = "overloaded"
	CodeInternal          = "internal"
)

// HeaderRequestID carries the request id on every answer.
const HeaderRequestID = "X-Request-Id"

type ridKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ridKey{}).(string)
	return id
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	if s.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttpHandler(s.opts.Gatherer))
	}
	mux.HandleFunc("GET /api/v1/apps", s.apps)
	mux.HandleFunc("GET /api/v1/apps/{name}", s.app)
	mux.HandleFunc("GET /api/v1/plan", s.plan)
	mux.HandleFunc("POST /api/v1/apps/{name}/rotate", s.action(ActionRotate))
	mux.HandleFunc("POST /api/v1/apps/{name}/revoke-previous", s.action(ActionRevoke))
	mux.HandleFunc("POST /api/v1/approvals/{id}/approve", s.approve)
	mux.HandleFunc("POST /api/v1/apps/{name}/reveal", s.reveal)
	if s.opts.UI != nil {
		ui := s.opts.UI(s)
		mux.Handle("/ui/", ui)
		mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusSeeOther))
	}
	return s.middleware(s.checkHost(s.shed(jsonErrors(mux, s))))
}

// captureWriter records what the mux's own 404/405 handler would answer.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header         { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) { return len(b), nil }
func (c *captureWriter) WriteHeader(code int)        { c.status = code }

// jsonErrors turns the mux's plain-text "404 page not found" and "405
// method not allowed" into JSON error bodies (keeping the Allow header).
func jsonErrors(mux *http.ServeMux, s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		c := &captureWriter{header: http.Header{}}
		h.ServeHTTP(c, r)
		if c.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", c.header.Get("Allow"))
			s.fail(w, r, http.StatusMethodNotAllowed, CodeBadRequest, "method not allowed")
			return
		}
		s.fail(w, r, http.StatusNotFound, CodeNotFound, "no such route")
	})
}

// statusWriter remembers the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware adds the request id, bounds the body, recovers from panics
// and logs one line per request. It never logs headers: they hold tokens.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := s.opts.NewID()
		w.Header().Set(HeaderRequestID, id)
		r = r.WithContext(context.WithValue(r.Context(), ridKey{}, id))
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.opts.Logger.Error("http handler panicked", zap.String("request_id", id), zap.String("path", r.URL.Path), zap.Any("panic", p))
				if sw.status == 0 {
					s.fail(sw, r, http.StatusInternalServerError, CodeInternal, "internal error")
				}
			}
			lvl := zap.DebugLevel
			if strings.HasPrefix(r.URL.Path, "/api/") {
				lvl = zap.InfoLevel
			}
			s.opts.Logger.Log(lvl, "http request", zap.String("request_id", id), zap.String("method", r.Method),
				zap.String("path", r.URL.Path), zap.Int("status", sw.status), zap.Duration("duration", time.Since(start)))
		}()
		next.ServeHTTP(sw, r)
	})
}

// fail writes an ErrorBody. msg is a fixed sentence chosen by the caller,
// never an error's text: that could quote a path or a token.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg, Code: code, RequestID: requestID(r.Context())})
}

// failErr maps an interface error to an answer and logs the cause.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	status, code, msg := classify(err)
	// The overlap refusal's text is built from the app name and a time
	// only (no path, no secret): it tells the operator how to proceed.
	if oe, ok := errors.AsType[*rotator.OverlapError](err); ok {
		msg = oe.Error()
	}
	log := s.opts.Logger.Warn
	if status >= 500 {
		log = s.opts.Logger.Error
	}
	log(what+" failed", zap.String("request_id", requestID(r.Context())), zap.String(logging.KeyApp, r.PathValue("name")), logging.Err(err))
	s.fail(w, r, status, code, msg)
}

// classify decides, in one place, the HTTP answer for an error.
func classify(err error) (status int, code, msg string) {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, CodeUnauthenticated, "a valid Vault token is required"
	case errors.Is(err, ErrNoEntity):
		return http.StatusForbidden, CodeEntityRequired, "break-glass needs a Vault token with an identity entity (log in through an auth method)"
	case errors.Is(err, ErrMFA):
		return http.StatusForbidden, CodeMFARequired, "a valid MFA code is required"
	case errors.Is(err, ErrForbidden), errors.Is(err, rotator.ErrPermission):
		return http.StatusForbidden, CodeForbidden, "not authorized for this action"
	case errors.Is(err, rotator.ErrNotFound):
		return http.StatusNotFound, CodeNotFound, "app not found"
	case errors.Is(err, rotator.ErrInFlight), errors.Is(err, rotator.ErrLocked):
		return http.StatusConflict, CodeConflict, "another operation is in flight for this app"
	case errors.Is(err, rotator.ErrPreviousInOverlap):
		return http.StatusConflict, CodePreviousInOverlap, "the previous pair is inside its overlap: revoke it with the two-person approval first"
	case errors.Is(err, rotator.ErrOrphaned):
		return http.StatusConflict, CodeConflict, "app is orphaned: an operator must clear it first"
	case errors.Is(err, rotator.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, CodeUnavailable, "a dependency is unavailable; try again"
	default:
		return http.StatusInternalServerError, CodeInternal, "internal error"
	}
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ok := true
	for _, c := range s.opts.Ready {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadyTimeout)
		err := c.Check(ctx)
		cancel()
		if err != nil {
			ok = false
			checks[c.Name] = "failing"
			s.opts.Logger.Warn("readiness check failing", zap.String("check", c.Name), logging.Err(err))
			continue
		}
		checks[c.Name] = "ok"
	}
	body := map[string]any{"status": "ready", "checks": checks}
	if len(s.opts.Insecure) > 0 {
		body["warnings"] = s.opts.Insecure
	}
	if s.opts.Info != nil {
		body["info"] = s.opts.Info()
	}
	if !ok {
		body["status"] = "not ready"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) apps(w http.ResponseWriter, r *http.Request) {
	if s.opts.Status == nil {
		s.fail(w, r, http.StatusNotImplemented, CodeNotImplemented, "status is not available")
		return
	}
	names, err := s.appNames(r.Context())
	if err != nil {
		s.failErr(w, r, "list apps", err)
		return
	}
	// One page (?limit, ?after=<last name>): only its apps are authorised
	// and read.
	names, next, err := page(names, r.URL.Query())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	allowed, ok := s.authorizeRead(w, r, names)
	if !ok {
		return
	}
	var apps []AppStatus
	if ns, isNamed := s.opts.Status.(NamedStatus); isNamed {
		apps, err = ns.AppsNamed(r.Context(), allowed)
	} else {
		apps, err = s.opts.Status.Apps(r.Context())
	}
	if err != nil {
		s.failErr(w, r, "list apps", err)
		return
	}
	// Only the apps the caller may read are listed.
	out := make([]AppStatus, 0, len(allowed))
	for _, a := range apps {
		if slices.Contains(allowed, a.Name) {
			out = append(out, a)
		}
	}
	body := map[string]any{"apps": out}
	if next != "" {
		body["next"] = next // pass as ?after= for the next page
	}
	if s.opts.Info != nil {
		body["daemon"] = s.opts.Info() // the effective MFA state (M3)
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) app(w http.ResponseWriter, r *http.Request) {
	if s.opts.Status == nil {
		s.fail(w, r, http.StatusNotImplemented, CodeNotImplemented, "status is not available")
		return
	}
	if _, ok := s.authorizeRead(w, r, []string{r.PathValue("name")}); !ok {
		return
	}
	d, err := s.opts.Status.App(r.Context(), r.PathValue("name"))
	if err != nil {
		s.failErr(w, r, "app status", err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// plan answers GET /api/v1/plan?app=a&app=b (or ?app=a,b); no app means all.
func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	if s.opts.Status == nil {
		s.fail(w, r, http.StatusNotImplemented, CodeNotImplemented, "status is not available")
		return
	}
	var names []string
	for _, v := range r.URL.Query()["app"] {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	named := len(names) > 0
	if !named {
		all, err := s.appNames(r.Context())
		if err != nil {
			s.failErr(w, r, "plan", err)
			return
		}
		names = all
	}
	if len(names) > 1000 {
		s.fail(w, r, http.StatusBadRequest, CodeBadRequest, "too many apps in one plan")
		return
	}
	allowed, ok := s.authorizeRead(w, r, names)
	if !ok {
		return
	}
	if named && len(allowed) != len(names) {
		// Named apps must all be readable: no partial answer that hides
		// which were refused.
		s.fail(w, r, http.StatusForbidden, CodeForbidden, "not authorized for this action")
		return
	}
	if named {
		allowed = names // the caller's order and duplicates, as before
	}
	key := strings.Join(allowed, ",")
	p, hit, wait, err := s.plans.get(key)
	if errors.Is(err, errPlanLimited) {
		w.Header().Set("Retry-After", retryAfterSeconds(wait))
		s.fail(w, r, http.StatusTooManyRequests, CodeRateLimited, "plan is rate-limited to protect the Dev Hubs' API budget; try again later")
		return
	}
	if !hit {
		if p, err = s.opts.Status.Plan(r.Context(), allowed); err != nil {
			s.failErr(w, r, "plan", err)
			return
		}
		s.plans.put(key, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"plan": p})
}

// ActionRequest is the optional JSON body of an operator action.
type ActionRequest struct {
	// Reason is recorded in the audit trail (required).
	Reason string `json:"reason"`
	// MFACode is the operator's current TOTP code.
	MFACode string `json:"mfa_code,omitempty"`
}

// Accepted is the 202 answer to an operator action.
type Accepted struct {
	RequestID string `json:"request_id"`
	ID        string `json:"id"` // rotation or operation id from the Controller
	App       string `json:"app"`
	Action    string `json:"action"`
}

// action handles POST /api/v1/apps/{name}/{rotate,revoke-previous}. The
// order matters: no token → 401 before anything is read; authorization
// before the body is even parsed, so an unauthenticated caller learns
// nothing about validation.
func (s *Server) action(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		app := r.PathValue("name")
		if s.opts.Controller == nil || s.opts.Authorizer == nil {
			s.fail(w, r, http.StatusNotImplemented, CodeNotImplemented, "operator actions are not available")
			return
		}
		token := bearer(r)
		if token.IsZero() {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ecarotator"`)
			s.fail(w, r, http.StatusUnauthorized, CodeUnauthenticated, "a Vault token is required (X-Vault-Token or Authorization: Bearer)")
			return
		}
		identity, err := s.opts.Authorizer.Authorize(r.Context(), token, app, action)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) && !errors.Is(err, rotator.ErrPermission) && !errors.Is(err, ErrMFA) {
				// Vault could not say: the caller may retry (503, not 500).
				err = fmt.Errorf("%w: %w", rotator.ErrUnreachable, err)
			}
			if errors.Is(err, ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ecarotator"`)
			}
			s.failErr(w, r, "authorize "+action, err)
			return
		}
		req, status, code, msg := decodeAction(r)
		if status != 0 {
			s.fail(w, r, status, code, msg)
			return
		}
		actor := rotator.Actor{Kind: rotator.ActorOperator, Identity: identity, Reason: req.Reason}
		ctx := r.Context()
		if req.MFACode != "" {
			ctx = WithMFACode(ctx, rotator.NewSecret(req.MFACode))
		}
		if action == ActionRevoke && s.opts.Approvals != nil {
			s.requestApproval(w, r, app, action, actor, MFACode(ctx))
			return
		}
		var id string
		switch action {
		case ActionRotate:
			id, err = s.opts.Controller.RotateNow(ctx, app, actor)
		case ActionRevoke:
			id, err = s.opts.Controller.RevokePrevious(ctx, app, actor)
		}
		if err != nil {
			s.failErr(w, r, action, err)
			return
		}
		s.opts.Logger.Info("operator action accepted", zap.String("request_id", requestID(ctx)), zap.String(logging.KeyApp, app),
			zap.String("action", action), zap.String("identity", identity), zap.String(logging.KeyReason, req.Reason), zap.String("id", id))
		writeJSON(w, http.StatusAccepted, Accepted{RequestID: requestID(ctx), ID: id, App: app, Action: action})
	}
}

// decodeAction reads the bounded, strict JSON body. A non-zero status is
// the answer to give instead.
func decodeAction(r *http.Request) (req ActionRequest, status int, code, msg string) {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return req, http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is too large"
	case errors.Is(err, io.EOF):
		return req, http.StatusBadRequest, CodeBadRequest, `a JSON body with a "reason" is required`
	case err != nil:
		return req, http.StatusBadRequest, CodeBadRequest, "request body is not valid JSON for this action"
	}
	if dec.More() {
		return req, http.StatusBadRequest, CodeBadRequest, "request body holds more than one JSON value"
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" {
		return req, http.StatusBadRequest, CodeBadRequest, `"reason" is required`
	}
	if len(req.Reason) > 1024 {
		return req, http.StatusBadRequest, CodeBadRequest, `"reason" is longer than 1024 bytes`
	}
	if HasControl(req.Reason) {
		return req, http.StatusBadRequest, CodeBadRequest, `"reason" must not contain control characters`
	}
	return req, 0, "", ""
}

// HasControl reports whether s holds a control character (C0, DEL, C1,
// or a Unicode bidi override). Reasons are shown on auditors' terminals by
// `audit list/show`: an ESC sequence there could hide or rewrite lines
// (review L9), so they are refused where they enter.
func HasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return true
		}
	}
	return false
}

// StripControl removes what HasControl reports, for text that must be
// kept but not obey the terminal.
func StripControl(s string) string {
	if !HasControl(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !HasControl(string(r)) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
