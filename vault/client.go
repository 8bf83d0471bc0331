package vault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// Auth methods accepted in AuthOptions.Method.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
	// AuthJWT logs in with a JWT/OIDC token from a file or an environment
	// variable (a CI's OIDC token: GitHub Actions, GitLab CI id_tokens).
	AuthJWT = "jwt"
)

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultKVMount       = "secret"
	DefaultStatePrefix   = "ecarotator/state"
	DefaultLockPrefix    = "ecarotator/locks"
	DefaultControlPrefix = "ecarotator/control"
	DefaultMaxVersions   = 10
	DefaultTimeout       = 30 * time.Second
	// DefaultJWTPath is where Kubernetes mounts a pod's service-account token.
	DefaultJWTPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Log keys used by this package; stable so that dashboards can rely on them.
const (
	logKeyPath    = "path"
	logKeyErr     = "err"
	logKeyMethod  = "method"
	logKeyTTL     = "ttl"
	logKeyAttempt = "attempt"
	logKeyLock    = "lock"
	logKeyFence   = "fence"
)

// TLSOptions configure the connection to Vault. Zero values keep vault/api's
// defaults (system roots, which VAULT_CACERT and friends also feed).
type TLSOptions struct {
	CACert     string // PEM file of the CA that signed Vault's certificate
	CAPath     string // directory of PEM CA files
	ClientCert string // PEM client certificate (TLS client auth)
	ClientKey  string // PEM key of ClientCert
	ServerName string // SNI / name to verify instead of the address host
	SkipVerify bool   // never in production: disables certificate checks
}

func (t TLSOptions) isZero() bool { return t == TLSOptions{} }

// AuthOptions say how the daemon logs in to Vault.
type AuthOptions struct {
	// Method is AuthToken (default), AuthAppRole or AuthKubernetes.
	Method string
	// Token is the token for AuthToken; empty means $VAULT_TOKEN.
	Token rotator.Secret

	// RoleID or RoleIDFile name the AppRole role id.
	RoleID     string
	RoleIDFile string
	// Exactly one of SecretID, SecretIDFile or SecretIDEnv holds the AppRole
	// secret id, read again at every login (so an orchestrator may replace
	// the file). With SecretIDWrapped the value is a response-wrapping token
	// that is unwrapped once; the unwrapped secret id is kept in memory for
	// later logins until the file or variable changes.
	SecretID        rotator.Secret
	SecretIDFile    string
	SecretIDEnv     string
	SecretIDWrapped bool

	// Role is the Kubernetes auth role; JWTPath the service-account token
	// file (DefaultJWTPath), read at every login because projected tokens
	// rotate.
	Role    string
	JWTPath string
	// JWTEnv (AuthJWT) names the environment variable holding the JWT; with
	// AuthJWT exactly one of JWTPath and JWTEnv is set. Both are read at
	// every login (a CI's token is short-lived).
	JWTEnv string

	// MountPath is the auth mount (default: "approle" or "kubernetes").
	MountPath string
}

// Options configure a Client. Zero values take the defaults above; Address,
// Namespace, TLS and the token also honour the standard VAULT_* variables
// through vault/api.
type Options struct {
	Address   string
	Namespace string
	TLS       TLSOptions
	Auth      AuthOptions

	// KVMount is the KV v2 mount (DefaultKVMount). Paths given to the
	// store may be relative to it ("salesforce/billing") or full API paths
	// ("secret/data/salesforce/billing").
	KVMount string
	// StatePrefix, LockPrefix and ControlPrefix are relative to KVMount.
	StatePrefix   string
	LockPrefix    string
	ControlPrefix string
	// MaxVersions is set on app paths this adapter creates.
	MaxVersions int
	// Timeout bounds every HTTP request to Vault.
	Timeout time.Duration

	Logger     *zap.Logger
	Now        func() time.Time
	HTTPClient *http.Client // nil: vault/api's default (cleanhttp pooled)
	// Backoff paces repeated login attempts in Run; nil:
	// LoginBackoff(math/rand/v2's Float64), exponential from 500ms to 30s
	// plus up to 20% jitter, forever.
	Backoff rotator.BackoffFunc
}

// Client is a logged-in Vault client that implements the rotator ports. It
// is safe for concurrent use.
//
// Lifecycle: New logs in; Run keeps the token alive (renewing it and logging
// in again when it can no longer be renewed) until its context ends; Close
// revokes a token that the client obtained by logging in. A request that
// meets an expired token logs in again and is retried once even without Run,
// so work is not lost when renewal lags.
type Client struct {
	api   *vaultapi.Client
	o     Options
	log   *zap.Logger
	now   func() time.Time
	mount string

	loginMu sync.Mutex // serialises logins
	mu      sync.Mutex // guards auth, wrapTok, unwrapped
	auth    *vaultapi.Secret
	// wrapTok is the last wrapping token read and unwrapped is the secret id
	// it held: a wrapping token works once, so re-logins reuse the result.
	wrapTok   string
	unwrapped rotator.Secret

	logins  atomic.Int64
	loginCh chan struct{} // tells Run that the token changed

	held   heldDocs // documents of the app leases held (appstate.go)
	closed atomic.Bool
}

var (
	_ rotator.CredentialStore = (*Client)(nil)
	_ rotator.Journal         = (*Client)(nil)
	_ rotator.Locker          = (*Client)(nil)
)

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.Auth.Method == "" {
		o.Auth.Method = AuthToken
	}
	if o.Auth.MountPath == "" {
		switch o.Auth.Method {
		case AuthAppRole:
			o.Auth.MountPath = "approle"
		case AuthKubernetes:
			o.Auth.MountPath = "kubernetes"
		case AuthJWT:
			o.Auth.MountPath = "jwt"
		}
	}
	if o.Auth.Method == AuthKubernetes && o.Auth.JWTPath == "" {
		o.Auth.JWTPath = DefaultJWTPath
	}
	if o.KVMount == "" {
		o.KVMount = DefaultKVMount
	}
	if o.StatePrefix == "" {
		o.StatePrefix = DefaultStatePrefix
	}
	if o.LockPrefix == "" {
		o.LockPrefix = DefaultLockPrefix
	}
	if o.ControlPrefix == "" {
		o.ControlPrefix = DefaultControlPrefix
	}
	if o.MaxVersions == 0 {
		o.MaxVersions = DefaultMaxVersions
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Backoff == nil {
		o.Backoff = LoginBackoff(rand.Float64).NextAttempt
	}
	o.KVMount = strings.Trim(o.KVMount, "/")
	o.StatePrefix = strings.Trim(o.StatePrefix, "/")
	o.LockPrefix = strings.Trim(o.LockPrefix, "/")
	o.ControlPrefix = strings.Trim(o.ControlPrefix, "/")
	return o
}

// validate reports every problem at once, each with its field name.
func (o Options) validate() error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fmt.Errorf("vault: options: %s: %s", field, msg)) }
	a := o.Auth
	switch a.Method {
	case AuthToken:
	case AuthAppRole:
		if (a.RoleID == "") == (a.RoleIDFile == "") {
			bad("auth.role_id", "set exactly one of role_id and role_id_file")
		}
		n := 0
		for _, set := range []bool{!a.SecretID.IsZero(), a.SecretIDFile != "", a.SecretIDEnv != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad("auth.secret_id", "set exactly one of secret_id, secret_id_file and secret_id_env")
		}
	case AuthKubernetes:
		if a.Role == "" {
			bad("auth.role", "kubernetes auth needs a role")
		}
	case AuthJWT:
		if a.Role == "" {
			bad("auth.role", "jwt auth needs a role")
		}
		if (a.JWTPath == "") == (a.JWTEnv == "") {
			bad("auth.jwt", "set exactly one of the jwt file and the jwt environment variable")
		}
	default:
		bad("auth.method", fmt.Sprintf("unknown method %q (want token, approle, kubernetes or jwt)", a.Method))
	}
	if o.MaxVersions < 0 {
		bad("max_versions", "must not be negative")
	}
	if o.Timeout < 0 {
		bad("timeout", "must be positive")
	}
	if (o.TLS.ClientCert == "") != (o.TLS.ClientKey == "") {
		bad("tls", "client_cert and client_key go together")
	}
	for field, p := range map[string]string{"kv_mount": o.KVMount, "state_prefix": o.StatePrefix, "lock_prefix": o.LockPrefix, "control_prefix": o.ControlPrefix} {
		if p == "" {
			bad(field, "must not be empty")
		}
	}
	return errors.Join(errs...)
}

// LoginBackoff is the login retry pacing Run uses by default, with jitter
// from rnd: attempt n waits between 500ms·2^(n-1) and 20% more, the
// un-jittered wait capped at 30s (so at most 36s), never giving up (Run
// stops when its context ends). In Backoff's terms that is a 600ms base and
// a 36s cap of which the top sixth is random. Jitter only spreads replicas
// apart; it protects nothing secret.
func LoginBackoff(rnd func() float64) rotator.Backoff {
	return rotator.Backoff{Base: 600 * time.Millisecond, Max: 36 * time.Second, Attempts: rotator.Forever, Jitter: 1.0 / 6, Rand: rnd}
}

// New builds a client and logs in. Errors match ErrBadCredentials when
// Vault refused the login, rotator.ErrUnreachable (and ErrSealed) when it
// could not answer.
func New(ctx context.Context, o Options) (*Client, error) {
	c, err := build(o)
	if err != nil {
		return nil, err
	}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// build makes the client New logs in with.
func build(o Options) (*Client, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	cfg := vaultapi.DefaultConfig() // reads VAULT_ADDR, VAULT_CACERT, ...
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault: environment: %w", cfg.Error)
	}
	if o.HTTPClient != nil {
		cfg.HttpClient = o.HTTPClient
	}
	if o.Address != "" {
		cfg.Address = o.Address
	}
	// No automatic retries: a retried check-and-set write whose first
	// attempt landed would come back as a conflict and mislead the engine.
	// Retrying is the engine's decision.
	cfg.MaxRetries = 0
	cfg.Timeout = o.Timeout
	if !o.TLS.isZero() {
		if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{
			CACert:        o.TLS.CACert,
			CAPath:        o.TLS.CAPath,
			ClientCert:    o.TLS.ClientCert,
			ClientKey:     o.TLS.ClientKey,
			TLSServerName: o.TLS.ServerName,
			Insecure:      o.TLS.SkipVerify,
		}); err != nil {
			return nil, fmt.Errorf("vault: tls: %w", err)
		}
	}
	api, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault: client: %w", err)
	}
	if o.Namespace != "" {
		api.SetNamespace(o.Namespace)
	}
	c := &Client{
		api:     api,
		o:       o,
		log:     o.Logger.Named("vault"),
		now:     o.Now,
		mount:   o.KVMount,
		loginCh: make(chan struct{}, 1),
	}
	return c, nil
}

// NewWithToken returns a client that uses the token of o.Auth (method
// token; empty means $VAULT_TOKEN) as it is, without a login or a
// lookup-self: for callers whose token may hold nothing but the paths it
// reads (the auditor commands; configs/policies/auditor.hcl grants no
// lookup-self). The token is never renewed.
func NewWithToken(o Options) (*Client, error) {
	if o.Auth.Method != "" && o.Auth.Method != AuthToken {
		return nil, fmt.Errorf("vault: NewWithToken needs the token method, not %s", o.Auth.Method)
	}
	c, err := build(o)
	if err != nil {
		return nil, err
	}
	tok := o.Auth.Token.Reveal()
	if tok == "" {
		tok = os.Getenv("VAULT_TOKEN")
	}
	if tok == "" {
		return nil, newOpError("login", AuthToken, ErrBadCredentials, errors.New("no token"))
	}
	c.api.SetToken(tok)
	return c, nil
}

// API returns the underlying vault/api client (its token is managed by c).
// It is meant for tests and benchmarks that compare with raw calls.
func (c *Client) API() *vaultapi.Client { return c.api }

// canLogin reports whether the auth method can obtain a new token by itself.
func (c *Client) canLogin() bool { return c.o.Auth.Method != AuthToken }

// Close revokes the token if the client obtained it by logging in (a token
// handed in by the operator is left alone) and forgets it. It is safe to
// call more than once; Run should be stopped first.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	var err error
	if c.canLogin() && c.api.Token() != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if rerr := c.api.Auth().Token().RevokeSelfWithContext(ctx, ""); rerr != nil {
			err = wrapErr("revoke token", "", rerr)
		}
	}
	c.api.ClearToken()
	return err
}

// Run keeps the client's token valid until ctx ends, and returns nil then.
// A renewable token is renewed by vault/api's LifetimeWatcher; when renewal
// fails or the token reaches its maximum TTL, Run logs in again (AppRole,
// Kubernetes), retrying with Options.Backoff while Vault is away. With the
// token method there is no way to log in again, so Run returns an error
// matching ErrBadCredentials when the token's life ends.
func (c *Client) Run(ctx context.Context) error {
	drain(c.loginCh) // the login done by New is the starting point
	for {
		if ctx.Err() != nil {
			return nil
		}
		s := c.currentAuth()
		ttl := time.Duration(s.Auth.LeaseDuration) * time.Second
		if ttl <= 0 {
			// A token without TTL (root, or periodic lookups that say 0)
			// never expires: wait for the end or for someone else's login.
			select {
			case <-ctx.Done():
				return nil
			case <-c.loginCh:
				continue
			}
		}
		end, err := c.watch(ctx, s, ttl)
		switch {
		case ctx.Err() != nil:
			return nil
		case end == endNewLogin:
			continue
		}
		if !c.canLogin() {
			return newOpError("renew token", "", ErrBadCredentials, fmt.Errorf("token life ended and the token method cannot log in again: %v", detail(err)))
		}
		c.log.Info("vault: token can no longer be renewed; logging in again", zap.String(logKeyMethod, c.o.Auth.Method), zap.String(logKeyErr, detail(err)))
		if err := c.reloginWithBackoff(ctx); err != nil {
			return nil // ctx ended while retrying
		}
		drain(c.loginCh)
	}
}

type watchEnd int

const (
	endExpiring watchEnd = iota // renewal is over: log in again
	endNewLogin                 // the token was replaced meanwhile
)

// watch renews s until its life ends, ctx ends, or another login replaces it.
func (c *Client) watch(ctx context.Context, s *vaultapi.Secret, ttl time.Duration) (watchEnd, error) {
	if !s.Auth.Renewable {
		// Not renewable: log in again at two thirds of its life.
		t := time.NewTimer(ttl * 2 / 3)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return endExpiring, ctx.Err()
		case <-c.loginCh:
			return endNewLogin, nil
		case <-t.C:
			return endExpiring, errors.New("token is not renewable")
		}
	}
	w, err := c.api.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{
		Secret:        s,
		RenewBehavior: vaultapi.RenewBehaviorErrorOnErrors,
	})
	if err != nil {
		return endExpiring, err
	}
	go w.Start() // returns after Stop; DoneCh is buffered
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return endExpiring, ctx.Err()
		case <-c.loginCh:
			return endNewLogin, nil
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				c.log.Debug("vault: token renewed", zap.Int(logKeyTTL, r.Secret.Auth.LeaseDuration))
			}
		case err := <-w.DoneCh():
			if err == nil {
				err = errors.New("token reached its maximum TTL")
			}
			return endExpiring, err
		}
	}
}

// reloginWithBackoff logs in until it succeeds or ctx ends.
func (c *Client) reloginWithBackoff(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := c.relogin(ctx, "")
		if err == nil {
			return nil
		}
		retry, wait := c.o.Backoff(attempt)
		if !retry {
			return err
		}
		c.log.Warn("vault: login failed; retrying", zap.Int(logKeyAttempt, attempt), zap.Duration("wait", wait), zap.String(logKeyErr, detail(err)))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// relogin logs in again unless the token already changed since stale was
// read (another goroutine logged in meanwhile). stale "" forces a login.
func (c *Client) relogin(ctx context.Context, stale string) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if stale != "" && c.api.Token() != stale {
		return nil
	}
	return c.loginLocked(ctx)
}

func (c *Client) login(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.loginLocked(ctx)
}

func (c *Client) loginLocked(ctx context.Context) error {
	var (
		s   *vaultapi.Secret
		err error
	)
	switch c.o.Auth.Method {
	case AuthToken:
		s, err = c.loginToken(ctx)
	case AuthAppRole:
		s, err = c.loginAppRole(ctx)
	case AuthKubernetes:
		s, err = c.loginKubernetes(ctx)
	case AuthJWT:
		s, err = c.loginJWT(ctx)
	}
	if err != nil {
		return err
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return newOpError("login", c.o.Auth.Method, ErrBadCredentials, errors.New("no token in the login response"))
	}
	c.api.SetToken(s.Auth.ClientToken)
	c.mu.Lock()
	c.auth = s
	c.mu.Unlock()
	c.logins.Add(1)
	select {
	case c.loginCh <- struct{}{}:
	default:
	}
	c.log.Info("vault: logged in", zap.String(logKeyMethod, c.o.Auth.Method),
		zap.Int(logKeyTTL, s.Auth.LeaseDuration), zap.Bool("renewable", s.Auth.Renewable))
	return nil
}

func (c *Client) currentAuth() *vaultapi.Secret {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth
}

// tokenValid asks Vault whether tok still works. It tells an expired token
// (403 on lookup-self too) from a policy denial.
func (c *Client) tokenValid(ctx context.Context, tok string) (bool, error) {
	tc, err := c.clientWithToken(rotator.NewSecret(tok))
	if err != nil {
		return false, err
	}
	_, err = tc.Auth().Token().LookupSelfWithContext(ctx)
	if err == nil {
		return true, nil
	}
	if isStatus(err, http.StatusForbidden) {
		return false, nil
	}
	return false, err
}

// call runs fn, which talks to Vault with the client's token, and
// classifies its error. When Vault answers 403 and the token itself turns
// out to be invalid (expired, revoked), it logs in again and runs fn once
// more: Vault refuses a request with an invalid token before executing it,
// so the retry cannot apply a write twice.
func (c *Client) call(ctx context.Context, op, path string, fn func() error) error {
	stale := c.api.Token()
	err := fn()
	if err == nil || !isStatus(err, http.StatusForbidden) {
		return wrapErr(op, path, err)
	}
	if c.api.Token() != stale {
		// Another goroutine logged in while this request was in flight.
		return wrapErr(op, path, fn())
	}
	valid, verr := c.tokenValid(ctx, stale)
	if verr != nil || valid {
		return wrapErr(op, path, err) // a policy denial (or Vault went away)
	}
	if !c.canLogin() {
		return &opError{op: op, path: path, kinds: []error{ErrBadCredentials}, cause: err}
	}
	c.log.Info("vault: token no longer valid; logging in again", zap.String(logKeyPath, path))
	if lerr := c.relogin(ctx, stale); lerr != nil {
		return wrapErr(op, path, lerr)
	}
	return wrapErr(op, path, fn())
}

// drain empties a signal channel.
func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}
