// Package server is the daemon's HTTP face: liveness and readiness probes,
// the Prometheus scrape endpoint, and a small JSON API for status, plan and
// the two operator actions (rotate now, revoke the previous pair).
//
// The API depends only on interfaces declared here (Status, Controller,
// Authorizer); cmd/ecarotator wires the engine and the Vault adapter in.
// Operator actions are authorised with the caller's own Vault token
// (X-Vault-Token, or Authorization: Bearer), which is held as a
// rotator.Secret from the moment it is read: it is never logged, echoed or
// put into an error.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"github.com/ecarotator/ecarotator/rotator"
)

// Actions checked by the Authorizer. They match the control paths of
// configs/policies/operator.hcl (<mount>/data/<control_prefix>/<app>/<action>).
const (
	ActionRotate = "rotate"
	ActionRevoke = "revoke"
)

// AppStatus is one line of GET /api/v1/apps.
type AppStatus struct {
	Name               string    `json:"name"`
	DevHub             string    `json:"devhub"`
	ECA                string    `json:"eca"`
	VaultPath          string    `json:"vault_path"`
	ConsumerKey        string    `json:"consumer_key,omitempty"` // public client id
	LastRotation       time.Time `json:"last_rotation,omitzero"`
	NextRotation       time.Time `json:"next_rotation,omitzero"`
	NextReason         string    `json:"next_reason,omitempty"`
	PreviousValidUntil time.Time `json:"previous_valid_until,omitzero"`
	InFlight           bool      `json:"in_flight"`
	Orphaned           bool      `json:"orphaned"`
	LastError          string    `json:"last_error,omitempty"`
	// Strategy is how the app rotates (staged, metadata, or auto before the
	// first read of the ECA's distributionState) and why.
	Strategy    string `json:"strategy,omitempty"`
	StrategyWhy string `json:"strategy_why,omitempty"`
	// Loading: the daemon has not read this app's Vault path since it
	// started (the seed runs in the background); times may be missing.
	Loading bool `json:"loading,omitempty"`
}

// AppDetail is GET /api/v1/apps/{name}.
type AppDetail struct {
	AppStatus
	Schedule     string            `json:"schedule"`
	Window       string            `json:"window"`
	MaxAge       string            `json:"max_age"`
	Overlap      string            `json:"overlap"`
	VaultVersion int               `json:"vault_version,omitempty"`
	RotationID   string            `json:"rotation_id,omitempty"`
	Step         string            `json:"step,omitempty"` // of an in-flight rotation
	Details      map[string]string `json:"details,omitempty"`
}

// Status answers the read-only API. App returns an error matching
// rotator.ErrNotFound for an unknown app.
type Status interface {
	Apps(ctx context.Context) ([]AppStatus, error)
	App(ctx context.Context, name string) (AppDetail, error)
	// Plan returns what would happen for the named apps (all when names is
	// empty), as a JSON-encodable value.
	Plan(ctx context.Context, names []string) (any, error)
}

// Controller performs operator actions. Both methods return an id (the
// rotation or operation id) once the action is accepted; the work itself
// may continue in the background. MFA codes travel in the context (see
// MFACode).
type Controller interface {
	RotateNow(ctx context.Context, app string, actor rotator.Actor) (string, error)
	RevokePrevious(ctx context.Context, app string, actor rotator.Actor) (string, error)
}

// Authorizer decides whether the holder of token may perform action on app
// and returns the caller's identity for the audit trail. It returns an
// error matching ErrForbidden when the token lacks the right and
// ErrUnauthenticated when the token itself is not valid; any other error is
// reported as 503 (Vault could not answer).
type Authorizer interface {
	Authorize(ctx context.Context, token rotator.Secret, app, action string) (identity string, err error)
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, token rotator.Secret, app, action string) (string, error)

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, token rotator.Secret, app, action string) (string, error) {
	return f(ctx, token, app, action)
}

// Errors the interfaces return to choose an HTTP status.
var (
	// ErrForbidden: the token is valid but lacks the capability (403).
	ErrForbidden = errors.New("server: not authorized for this action")
	// ErrUnauthenticated: the token is missing, invalid or expired (401).
	ErrUnauthenticated = errors.New("server: caller token missing or invalid")
	// ErrMFA: a required TOTP code is missing or wrong (403, code
	// "mfa_required").
	ErrMFA = errors.New("server: a valid MFA code is required")
	// ErrNoEntity: break-glass needs a token with a Vault identity entity
	// (403, code "entity_required"; M1).
	ErrNoEntity = errors.New("server: break-glass needs a Vault token with an identity entity")
)

// ReadyCheck is one readiness condition (Vault authenticated, config
// loaded, ...).
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configure a Server.
type Options struct {
	// Addr is the listen address ("127.0.0.1:9464"; ":0" picks a port).
	Addr string
	// TLSCert and TLSKey enable HTTPS when both are set.
	TLSCert, TLSKey string
	Logger          *zap.Logger
	// Gatherer serves /metrics; nil disables the endpoint.
	Gatherer prometheus.Gatherer
	Ready    []ReadyCheck
	// Status, Controller and Authorizer back the API; a nil Status disables
	// the read routes, a nil Controller or Authorizer the action routes
	// (they answer 501).
	Status     Status
	Controller Controller
	Authorizer Authorizer
	// Approvals, when set, puts revoke-previous under the two-person rule
	// (approvals.go); nil keeps the direct Controller call.
	Approvals Approvals
	// ReadTimeout bounds reading a request (default 10s).
	ReadTimeout time.Duration
	// ShutdownTimeout bounds graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	// ReadyTimeout bounds each readiness check (default 2s).
	ReadyTimeout time.Duration
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	// NewID makes request ids (default 16 random hex bytes).
	NewID func() string
	// AllowedHosts are the Host names (besides loopback and the listen
	// host) the API answers for; others get 421 (DNS rebinding, M2).
	AllowedHosts []string
	// AuthCacheTTL and AuthCacheSize tune the cache of allowed read
	// decisions (defaults DefaultAuthCacheTTL, DefaultAuthCacheSize; a
	// negative TTL disables the cache).
	AuthCacheTTL  time.Duration
	AuthCacheSize int
	// PlanCacheTTL and PlanPerMinute bound GET /api/v1/plan (defaults
	// DefaultPlanCacheTTL, DefaultPlanPerMinute).
	PlanCacheTTL  time.Duration
	PlanPerMinute int
	// WriteTimeout bounds writing an answer (default 2m: a plan asks the
	// Dev Hubs). IdleTimeout closes idle keep-alive connections (default
	// 2m). MaxConns caps concurrent connections (default 256).
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	MaxConns     int
	// MaxInFlight bounds the /api/ requests served at once; more answer
	// 503 with Retry-After (default DefaultMaxInFlight).
	MaxInFlight int
	// Now is the clock of the caches (default time.Now).
	Now func() time.Time
	// Insecure lists warnings shown in /readyz (e.g. Vault TLS
	// verification off); the daemon stays ready, the operator sees why.
	Insecure []string
	// Info adds fixed facts to /readyz (e.g. the effective MFA state).
	Info func() map[string]string
	// UI, when set, builds the handler mounted under /ui/ (the auditor
	// console, internal/console); it is given the server so that it
	// authorises with the read API's own check (CanRead).
	UI func(s *Server) http.Handler
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Second
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.NewID == nil {
		o.NewID = randomID
	}
	if o.AuthCacheTTL == 0 {
		o.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if o.AuthCacheSize <= 0 {
		o.AuthCacheSize = DefaultAuthCacheSize
	}
	if o.PlanCacheTTL == 0 {
		o.PlanCacheTTL = DefaultPlanCacheTTL
	}
	if o.PlanPerMinute <= 0 {
		o.PlanPerMinute = DefaultPlanPerMinute
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 2 * time.Minute
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Addr == "" {
		errs = append(errs, errors.New("listen address is required"))
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		errs = append(errs, errors.New("tls cert and key go together"))
	}
	if o.ReadTimeout < 0 || o.ShutdownTimeout < 0 || o.ReadyTimeout < 0 || o.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("timeouts and body limit must not be negative"))
	}
	for i, r := range o.Ready {
		if r.Name == "" || r.Check == nil {
			errs = append(errs, fmt.Errorf("ready[%d]: name and check are required", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: invalid options: %w", err)
	}
	return nil
}

// Server is the daemon's HTTP server.
type Server struct {
	opts    Options
	handler http.Handler
	auth    *authCache
	plans   *planCache
	pages   *pageAuth

	shedCount atomic.Int64

	mu       sync.Mutex
	listener net.Listener
	ran      bool
}

// New validates opts and builds the routes; nothing listens until Listen
// or Run.
func New(opts Options) (*Server, error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts,
		auth:  newAuthCache(opts.AuthCacheTTL, opts.AuthCacheSize, opts.Now),
		plans: &planCache{ttl: opts.PlanCacheTTL, perMin: opts.PlanPerMinute, now: opts.Now, entries: map[string]planEntry{}},
		pages: &pageAuth{calls: map[[32]byte]*pageCall{}},
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's routes (for httptest and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the listen address, so that a port clash is reported before
// Run and ":0" has a port to read from Addr. Run calls it when needed.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", s.opts.Addr, err)
	}
	s.listener = netutil.LimitListener(ln, s.opts.MaxConns)
	return nil
}

// Addr is the bound address (nil before Listen).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Run serves until ctx ends, then shuts down gracefully: in-flight requests
// get ShutdownTimeout (measured on a fresh context, since ctx is already
// done) before the remaining connections are closed. A normal stop returns
// nil.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return errors.New("server: Run called twice")
	}
	s.ran = true
	ln := s.listener
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opts.ReadTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.opts.Logger.Named("http")),
	}
	if s.opts.TLSCert != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() { // owned by Run: it always receives from errc
		if s.opts.TLSCert != "" {
			errc <- srv.ServeTLS(ln, s.opts.TLSCert, s.opts.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	s.opts.Logger.Info("http server listening", zap.String("addr", ln.Addr().String()))

	select {
	case err := <-errc:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // Serve returns ErrServerClosed as soon as Shutdown starts
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.opts.Logger.Info("http server stopped")
	return nil
}

// MaxHeaderBytes bounds request headers (the body is bounded by
// Options.MaxBodyBytes).
const MaxHeaderBytes = 64 << 10

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// mfaKey carries the caller's TOTP code to the Controller.
type mfaKey struct{}

// WithMFACode returns ctx carrying code.
func WithMFACode(ctx context.Context, code rotator.Secret) context.Context {
	return context.WithValue(ctx, mfaKey{}, code)
}

// MFACode returns the TOTP code the caller sent with an operator action
// (zero when none).
func MFACode(ctx context.Context) rotator.Secret {
	c, _ := ctx.Value(mfaKey{}).(rotator.Secret)
	return c
}

// bearer reads the caller's Vault token: X-Vault-Token first, then
// Authorization: Bearer.
func bearer(r *http.Request) rotator.Secret {
	if t := strings.TrimSpace(r.Header.Get("X-Vault-Token")); t != "" {
		return rotator.NewSecret(t)
	}
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return rotator.NewSecret(strings.TrimSpace(h[7:]))
	}
	return rotator.Secret{}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error     string `json:"error"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
}

func promhttpHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
