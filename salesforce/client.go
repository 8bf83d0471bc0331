package salesforce

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/ecarotator/ecarotator/rotator"
)

// Auth methods accepted in Auth.Method.
const (
	AuthJWT               = "jwt"
	AuthClientCredentials = "client_credentials"
)

// Well-known login hosts and defaults.
const (
	ProductionLoginURL = "https://login.salesforce.com"
	SandboxLoginURL    = "https://test.salesforce.com"
	// MinAPIVersion is the first API version with the staged-credentials
	// resources.
	MinAPIVersion = "65.0"
	// DefaultMaxBodyBytes bounds every response body read.
	DefaultMaxBodyBytes int64 = 1 << 20
	// DefaultRequestTimeout bounds one HTTP attempt.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxRetryAfter caps how long a Retry-After header may make a
	// retry wait.
	DefaultMaxRetryAfter = 2 * time.Minute
	// jwtLifetime is the assertion lifetime; Salesforce wants exp "within 3
	// minutes", and the 10s margin absorbs clock skew.
	jwtLifetime = 3*time.Minute - 10*time.Second
	tokenPath   = "/services/oauth2/token"
)

// Log keys, kept stable for dashboards.
const (
	logKeyOrg     = "org"
	logKeyMethod  = "method"
	logKeyRoute   = "route"
	logKeyStatus  = "status"
	logKeyAttempt = "attempt"
	logKeyErr     = "err"
	logKeyClass   = "class"
	logKeyWait    = "wait"
)

// Auth is how the client authenticates to the Dev Hub. Key material comes
// from the caller (it lives in Vault), never from a file.
type Auth struct {
	// Method is AuthJWT or AuthClientCredentials.
	Method string
	// ClientID is the consumer key of the rotator's own app (JWT iss).
	ClientID string
	// Username is the JWT subject (the pre-authorized Salesforce user).
	Username string
	// PrivateKey is the PEM (PKCS#1 or PKCS#8) RSA key signing the JWT.
	PrivateKey rotator.Secret
	// Key is an already parsed RSA key; it wins over PrivateKey.
	Key *rsa.PrivateKey
	// ClientSecret is the consumer secret for client credentials.
	ClientSecret rotator.Secret
	// Basic sends client credentials in an Authorization: Basic header
	// instead of the form body.
	Basic bool
}

// Options configure a Client. Zero values take documented defaults; New
// rejects inconsistent ones.
type Options struct {
	// LoginURL is the token host: https://login.salesforce.com (default),
	// https://test.salesforce.com, or a My Domain URL. Client credentials
	// require a My Domain host.
	LoginURL string
	// Audience is the JWT aud: AudienceAuto (default, also ""), AudienceLogin,
	// AudienceMyDomain or an explicit URL. Auto tries the My Domain URL
	// (when known) and then the login URL, and keeps the first that logs
	// in for the life of the Client (logged once).
	Audience string
	// MyDomainURL is the org's My Domain URL (https://acme.my.salesforce.com),
	// the "mydomain" audience. When empty and LoginURL is a My Domain host,
	// LoginURL is used.
	MyDomainURL string
	// APIVersion such as "65.0" (default) or "v66.0"; lower than 65.0 is
	// rejected.
	APIVersion string
	// Auth is how the client authenticates.
	Auth Auth
	// HTTPClient is used for every call (default: a client with
	// RequestTimeout).
	HTTPClient *http.Client
	// Logger receives structured logs (default: zap.NewNop()).
	Logger *zap.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Backoff decides retries of idempotent calls (default DefaultBackoff:
	// 4 attempts, 500ms doubling to 10s, equal jitter).
	Backoff rotator.BackoffFunc
	// Sleep waits between retries (default: a context-aware timer). Tests
	// inject a recorder so they never sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxBodyBytes bounds every response body (default 1 MiB).
	MaxBodyBytes int64
	// Org names the Dev Hub in logs.
	Org string
	// RequestTimeout bounds each HTTP attempt (default 30s).
	RequestTimeout time.Duration
	// MaxRetryAfter caps honoured Retry-After headers (default 2m).
	MaxRetryAfter time.Duration
	// SlotOccupiedCodes are errorCodes that, on POST staged, mean the
	// staged slot is taken. The real code is unconfirmed, so any other 4xx
	// also triggers a GET staged to find out.
	SlotOccupiedCodes []string
	// MetadataPoll paces checkRetrieveStatus polling (default
	// DefaultMetadataPoll: at once, then 200ms doubling to 5s, 60 polls).
	MetadataPoll rotator.BackoffFunc
}

// Client talks to one Dev Hub org. It is safe for concurrent use.
type Client struct {
	opts       Options
	hc         *http.Client
	log        *zap.Logger
	tokenURL   string
	audiences  []string // candidates, in order (JWT)
	audMode    string
	audMu      sync.Mutex
	audChosen  string // the audience that logged in (auto: remembered)
	version    string // "65.0"
	key        *rsa.PrivateKey
	keyPEM     []byte
	slotCodes  map[string]bool
	mu         sync.Mutex // guards sess and fetching
	sess       *session
	usageMu    sync.Mutex
	usage      rotator.APIUsage
	usageKnown bool
}

var _ rotator.Issuer = (*Client)(nil)

// session is a cached access token and the instance it is valid for.
type session struct {
	tok      *oauth2.Token
	instance *url.URL
	id       string // the identity URL from the token response
}

// New validates opts and returns a Client. No network call is made; the
// first API call authenticates.
func New(opts Options) (*Client, error) {
	var problems []string
	if opts.LoginURL == "" {
		opts.LoginURL = ProductionLoginURL
	}
	login, err := checkBaseURL(opts.LoginURL)
	if err != nil {
		problems = append(problems, "login url: "+err.Error())
	}
	if opts.APIVersion == "" {
		opts.APIVersion = MinAPIVersion
	}
	version, err := normalizeVersion(opts.APIVersion)
	if err != nil {
		problems = append(problems, "api version: "+err.Error())
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff(rand.Float64).NextAttempt
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxBodyBytes < 0 {
		problems = append(problems, "max body bytes: must be positive")
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.RequestTimeout < 0 {
		problems = append(problems, "request timeout: must be positive")
	}
	if opts.MaxRetryAfter == 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.RequestTimeout, CheckRedirect: noRedirects}
	}
	c := &Client{opts: opts, hc: opts.HTTPClient, log: opts.Logger.With(zap.String(logKeyOrg, opts.Org)), version: version}
	c.slotCodes = map[string]bool{}
	for _, code := range opts.SlotOccupiedCodes {
		c.slotCodes[code] = true
	}
	if login != nil {
		c.tokenURL = strings.TrimSuffix(login.String(), "/") + tokenPath
	}
	a := opts.Auth
	switch a.Method {
	case AuthJWT:
		if a.ClientID == "" {
			problems = append(problems, "auth.client_id: required")
		}
		if a.Username == "" {
			problems = append(problems, "auth.username: required for jwt")
		}
		c.key = a.Key
		if c.key == nil {
			if a.PrivateKey.IsZero() {
				problems = append(problems, "auth.private_key: required for jwt")
			} else if k, err := parseRSAKey(a.PrivateKey); err != nil {
				problems = append(problems, "auth.private_key: "+err.Error())
			} else {
				c.key = k
			}
		}
		if c.key != nil {
			if p, err := keyPEM(c.key); err != nil {
				problems = append(problems, "auth.private_key: cannot encode")
			} else {
				c.keyPEM = p
			}
		}
		mode, auds, err := audienceCandidates(opts.Audience, login, opts.MyDomainURL)
		if err != nil {
			problems = append(problems, "audience: "+err.Error())
		}
		c.audMode, c.audiences = mode, auds
	case AuthClientCredentials:
		if a.ClientID == "" {
			problems = append(problems, "auth.client_id: required")
		}
		if a.ClientSecret.IsZero() {
			problems = append(problems, "auth.client_secret: required for client_credentials")
		}
		if login != nil && isGenericLoginHost(login.Hostname()) {
			// Salesforce answers invalid_grant "request not supported on
			// this domain"; fail early with a clearer message.
			problems = append(problems, "login url: client_credentials needs the org's My Domain host, not "+login.Hostname())
		}
	default:
		problems = append(problems, fmt.Sprintf("auth.method: %q is not %q or %q", a.Method, AuthJWT, AuthClientCredentials))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("salesforce: invalid options: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// APIVersion returns the normalized API version ("65.0").
func (c *Client) APIVersion() string { return c.version }

// Usage returns the last API usage seen in a Sforce-Limit-Info header.
func (c *Client) Usage() (rotator.APIUsage, bool) {
	c.usageMu.Lock()
	defer c.usageMu.Unlock()
	return c.usage, c.usageKnown
}

func (c *Client) recordLimits(h http.Header) {
	v := h.Get(LimitInfoHeader)
	if v == "" {
		return
	}
	u, ok := ParseLimitInfo(v)
	if !ok {
		return
	}
	u.At = c.opts.Now()
	c.usageMu.Lock()
	c.usage, c.usageKnown = u, true
	c.usageMu.Unlock()
}

func isGenericLoginHost(h string) bool {
	h = strings.ToLower(h)
	return h == "login.salesforce.com" || h == "test.salesforce.com"
}

// checkBaseURL accepts https URLs, and http only on loopback (simulator and
// tests): an access token must never travel in clear over a network.
func checkBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Host == "" {
		return nil, errors.New("missing host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("must not carry user info, query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, errors.New("http is allowed only on loopback")
		}
	default:
		return nil, fmt.Errorf("scheme %q is not https", u.Scheme)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// normalizeVersion accepts "65.0", "v65.0" or "65" and rejects < 65.0.
func normalizeVersion(v string) (string, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	major, minor, hasMinor := strings.Cut(v, ".")
	m, err := strconv.Atoi(major)
	if err != nil || m <= 0 {
		return "", fmt.Errorf("%q is not like 65.0", v)
	}
	n := 0
	if hasMinor {
		if n, err = strconv.Atoi(minor); err != nil || n < 0 {
			return "", fmt.Errorf("%q is not like 65.0", v)
		}
	}
	if m < 65 {
		return "", fmt.Errorf("%s is older than %s (no staged-credentials resources)", v, MinAPIVersion)
	}
	return fmt.Sprintf("%d.%d", m, n), nil
}

// call describes one API request.
type call struct {
	method string
	route  string // template for logs and errors
	// path is appended to the instance URL; for data calls it starts with
	// "/services/data/vXX.X".
	path        string
	query       url.Values
	body        []byte
	soapBody    func(token string) []byte // SOAP: the token travels in the body
	contentType string
	idempotent  bool
	soap        bool
}

func (c *Client) dataPath(segs ...string) string {
	var b strings.Builder
	b.WriteString("/services/data/v")
	b.WriteString(c.version)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(s)
	}
	return b.String()
}

// do runs a call with authentication, one re-authentication on an invalid
// session, bounded body reads, limit tracking and retries of idempotent
// calls. It returns the 2xx body, or an *APIError.
func (c *Client) do(ctx context.Context, cl call) (int, []byte, error) {
	op := cl.method + " " + cl.route
	reauthed := false
	for attempt := 1; ; attempt++ {
		sess, err := c.session(ctx)
		if err != nil {
			return 0, nil, err
		}
		status, hdr, body, err := c.send(ctx, sess, cl)
		var apiErr *APIError
		retryAfter := time.Duration(-1)
		switch {
		case err != nil:
			var notSent bool
			apiErr, notSent = transportError(op, err, cl.idempotent)
			if notSent {
				// Provably never sent: safe to retry even a mutation.
				apiErr.Class = ClassTransient
			}
		default:
			c.recordLimits(hdr)
			if status >= 200 && status < 300 {
				if body.err == nil {
					c.log.Debug("salesforce call", zap.String(logKeyMethod, cl.method), zap.String(logKeyRoute, cl.route), zap.Int(logKeyStatus, status), zap.Int(logKeyAttempt, attempt))
					return status, body.b, nil
				}
				// The answer was cut off (reset mid-body) or too large.
				class := ClassTransient
				switch {
				case !cl.idempotent:
					class = ClassAmbiguous
				case errors.Is(body.err, ErrBodyTooLarge):
					class = ClassFinal
				}
				apiErr = &APIError{Op: op, Status: status, Class: class, err: body.err}
				// Fall through to the retry decision: a cut-off read of an
				// idempotent call is retried like any transient failure.
				break
			}
			var code, msg string
			if cl.soap {
				code, msg = parseSOAPFault(body.b)
			} else {
				code, msg = parseRESTError(body.b)
			}
			if (status == http.StatusUnauthorized || code == "INVALID_SESSION_ID") && !reauthed {
				// Expired or revoked token: authenticate again once. A 401
				// means nothing was executed, so even a mutation may be
				// resent.
				reauthed = true
				c.invalidate(sess)
				c.log.Info("salesforce session invalid, re-authenticating", zap.String(logKeyMethod, cl.method), zap.String(logKeyRoute, cl.route), zap.Int(logKeyStatus, status))
				attempt--
				continue
			}
			// Defence in depth: never let an echoed token into an error.
			msg = scrub(msg, sess.tok.AccessToken)
			apiErr = &APIError{Op: op, Status: status, Code: code, Message: msg, Class: classifyREST(status, code, cl.idempotent)}
			if apiErr.Class == ClassFinal && gateClosed(msg) {
				// The error for the closed secret-access gate is
				// unconfirmed; its known wording is the only signal.
				apiErr.Class = ClassPermission
			}
			if cl.soap && status == http.StatusInternalServerError && code != "" && code != "SERVER_UNAVAILABLE" &&
				(apiErr.Class == ClassTransient || apiErr.Class == ClassAmbiguous) {
				// SOAP reports every fault, validation errors included, as
				// HTTP 500: a fault with a code is an answer, not an outage.
				apiErr.Class = ClassFinal
			}
			if d, ok := parseRetryAfter(hdr, c.opts.Now()); ok {
				retryAfter = d
			}
		}
		if apiErr.Class != ClassTransient || (!cl.idempotent && apiErr.Status != 0) || ctx.Err() != nil {
			c.log.Debug("salesforce call failed", zap.String(logKeyMethod, cl.method), zap.String(logKeyRoute, cl.route), zap.Int(logKeyStatus, apiErr.Status), zap.Int(logKeyAttempt, attempt), zap.Stringer(logKeyClass, apiErr.Class), zap.NamedError(logKeyErr, apiErr))
			return apiErr.Status, nil, apiErr
		}
		retry, wait := c.opts.Backoff(attempt)
		if !retry {
			c.log.Error("salesforce call failed, giving up", zap.String(logKeyMethod, cl.method), zap.String(logKeyRoute, cl.route), zap.Int(logKeyStatus, apiErr.Status), zap.Int(logKeyAttempt, attempt), zap.NamedError(logKeyErr, apiErr))
			return apiErr.Status, nil, apiErr
		}
		if retryAfter > wait {
			wait = min(retryAfter, c.opts.MaxRetryAfter)
		}
		c.log.Warn("salesforce call failed, retrying", zap.String(logKeyMethod, cl.method), zap.String(logKeyRoute, cl.route), zap.Int(logKeyStatus, apiErr.Status), zap.Int(logKeyAttempt, attempt), zap.Duration(logKeyWait, wait), zap.NamedError(logKeyErr, apiErr))
		if err := c.opts.Sleep(ctx, wait); err != nil {
			return apiErr.Status, nil, apiErr
		}
	}
}

// readResult is a bounded body read.
type readResult struct {
	b   []byte
	err error
}

// send performs one HTTP attempt. Transport errors are returned raw (the
// caller redacts them); body read errors travel in readResult.
func (c *Client) send(ctx context.Context, sess *session, cl call) (int, http.Header, readResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	u := *sess.instance
	u.Path = sess.instance.Path + cl.path
	u.RawPath = ""
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	body := cl.body
	if cl.soapBody != nil {
		body = cl.soapBody(sess.tok.AccessToken)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), rd)
	if err != nil {
		return 0, nil, readResult{}, err
	}
	if cl.soap {
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", `""`)
	} else {
		req.Header.Set("Authorization", "Bearer "+sess.tok.AccessToken)
		req.Header.Set("Accept", "application/json")
		if cl.contentType != "" {
			req.Header.Set("Content-Type", cl.contentType)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, readResult{}, err
	}
	defer resp.Body.Close()
	b, rerr := readBounded(resp.Body, c.opts.MaxBodyBytes)
	return resp.StatusCode, resp.Header, readResult{b: b, err: redactErr(rerr)}, nil
}

// readBounded reads at most limit bytes and reports ErrBodyTooLarge beyond.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (over %d bytes)", ErrBodyTooLarge, limit)
	}
	return b, nil
}

// session returns the cached session or authenticates. Holding the mutex
// while fetching makes concurrent callers share one token request.
func (c *Client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && c.sess.tok.Valid() {
		return c.sess, nil
	}
	s, err := c.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	c.sess = s
	return s, nil
}

// invalidate drops s from the cache unless another caller already replaced
// it.
func (c *Client) invalidate(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == s {
		c.sess = nil
	}
}

// authenticate performs the configured grant, retrying transient failures.
func (c *Client) authenticate(ctx context.Context) (*session, error) {
	for attempt := 1; ; attempt++ {
		tr, apiErr := c.grant(ctx)
		if apiErr == nil {
			inst, err := checkBaseURL(tr.InstanceURL)
			if err != nil {
				return nil, &APIError{Op: "POST " + tokenPath, Status: http.StatusOK, Code: "BAD_INSTANCE_URL", Message: "token response instance_url rejected: " + err.Error(), Class: ClassFinal}
			}
			c.log.Debug("salesforce authenticated", zap.String(logKeyMethod, c.opts.Auth.Method))
			return &session{tok: tr.Token, instance: inst, id: tr.ID}, nil
		}
		if apiErr.Class != ClassTransient || ctx.Err() != nil {
			return nil, apiErr
		}
		retry, wait := c.opts.Backoff(attempt)
		if !retry {
			return nil, apiErr
		}
		c.log.Warn("salesforce token request failed, retrying", zap.String(logKeyRoute, tokenPath), zap.Int(logKeyStatus, apiErr.Status), zap.Int(logKeyAttempt, attempt), zap.Duration(logKeyWait, wait), zap.NamedError(logKeyErr, apiErr))
		if err := c.opts.Sleep(ctx, wait); err != nil {
			return nil, apiErr
		}
	}
}

// grant performs one token request with the configured method. For JWT in
// auto mode it tries each audience candidate until one logs in, and
// remembers it; a transient failure stops the walk (it says nothing about
// the audience).
func (c *Client) grant(ctx context.Context) (*tokenResponse, *APIError) {
	a := c.opts.Auth
	if a.Method != AuthJWT {
		return clientCredentialsFetch(ctx, c.hc, c.opts.RequestTimeout, c.tokenURL, a.ClientID, a.ClientSecret, a.Basic)
	}
	c.audMu.Lock()
	chosen := c.audChosen
	c.audMu.Unlock()
	cands := c.audiences
	if chosen != "" {
		cands = []string{chosen}
	}
	var last *APIError
	for _, aud := range cands {
		tr, apiErr := jwtFetch(ctx, c.hc, c.opts.RequestTimeout, c.keyPEM, a.ClientID, a.Username, c.tokenURL, aud)
		if apiErr == nil {
			if chosen == "" {
				c.audMu.Lock()
				c.audChosen = aud
				c.audMu.Unlock()
				c.log.Info("jwt audience chosen", zap.String("audience", aud), zap.String("mode", c.audMode))
			}
			return tr, nil
		}
		last = apiErr
		if apiErr.Class != ClassAuth && apiErr.Class != ClassConfig {
			return nil, apiErr
		}
		if len(cands) > 1 {
			c.log.Info("jwt audience refused, trying the next", zap.String("audience", aud), zap.NamedError(logKeyErr, apiErr))
		}
	}
	return nil, last
}

// Audience reports the JWT audience that logged in (empty before the first
// login or for client credentials) and the configured mode.
func (c *Client) Audience() (audience, mode string) {
	c.audMu.Lock()
	defer c.audMu.Unlock()
	return c.audChosen, c.audMode
}

// audienceCandidates resolves Options.Audience into the audiences to try.
func audienceCandidates(opt string, login *url.URL, myDomain string) (mode string, auds []string, err error) {
	loginAud := ProductionLoginURL
	if login != nil {
		h := strings.ToLower(login.Hostname())
		switch {
		case h == "test.salesforce.com" || strings.HasSuffix(h, ".sandbox.my.salesforce.com"):
			loginAud = SandboxLoginURL
		case strings.HasSuffix(h, "salesforce.com"):
			loginAud = ProductionLoginURL
		default:
			// A simulator or a proxy: its own URL is the login URL.
			loginAud = strings.TrimSuffix(login.String(), "/")
		}
	}
	md := strings.TrimSuffix(strings.TrimSpace(myDomain), "/")
	if md == "" && login != nil && strings.HasSuffix(strings.ToLower(login.Hostname()), ".my.salesforce.com") {
		md = strings.TrimSuffix(login.String(), "/")
	}
	switch strings.TrimSpace(opt) {
	case "", AudienceAuto:
		if md != "" && md != loginAud {
			return AudienceAuto, []string{md, loginAud}, nil
		}
		return AudienceAuto, []string{loginAud}, nil
	case AudienceLogin:
		return AudienceLogin, []string{loginAud}, nil
	case AudienceMyDomain:
		if md == "" {
			return AudienceMyDomain, nil, errors.New(`"mydomain" needs the org's My Domain URL (my_domain_url)`)
		}
		return AudienceMyDomain, []string{md}, nil
	}
	if _, err := checkBaseURL(opt); err != nil && !strings.HasPrefix(opt, "https://") {
		return "", nil, fmt.Errorf("%q is not auto, login, mydomain or an https URL", opt)
	}
	return "url", []string{strings.TrimSuffix(strings.TrimSpace(opt), "/")}, nil
}

// InstanceURL authenticates if needed and returns the org's instance URL
// (the token response's instance_url, normally the My Domain URL).
func (c *Client) InstanceURL(ctx context.Context) (string, error) {
	s, err := c.session(ctx)
	if err != nil {
		return "", err
	}
	return s.instance.String(), nil
}

// OrgTokenURL returns the Dev Hub's My Domain token endpoint, derived from
// instance_url: where the Verifier proves a freshly rotated pair (client
// credentials must go to My Domain, not to the login host).
func (c *Client) OrgTokenURL(ctx context.Context) (string, error) {
	inst, err := c.InstanceURL(ctx)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(inst, "/") + tokenPath, nil
}

// noRedirects stops the default client from following redirects: the
// Salesforce APIs do not redirect, and following one would turn a POST into
// a GET or carry the call to another host. A 3xx surfaces as a final error.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
