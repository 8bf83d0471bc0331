// Package sfsim simulates the Salesforce endpoints ecarotator talks to: the
// OAuth token endpoint (client credentials and JWT bearer), the Connect REST
// OAuth usage / credentials / staged-credentials resources, and the Metadata
// SOAP calls that read and change ExternalClientAppSettings.
//
// A Sim serves one "login" host and one My Domain host per org over real
// loopback HTTP (Start), or in process (Handler). It keeps its own clock,
// which tests move with Advance, so the 30-day lapse of a Rotated pair, token
// expiry and propagation delays never need a wall-clock sleep. Faults (503,
// REQUEST_LIMIT_EXCEEDED, connection resets before or after a request takes
// effect, latency) are injected by config or at run time through SetFaults or
// the admin API under /__sfsim/, which is not part of Salesforce's surface.
//
// Where Salesforce's behaviour is undocumented the simulator follows a
// configurable Behavior whose defaults are documented on each field.
package sfsim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// LoginHost is the name of the login host in Handler, Requests and faults.
const LoginHost = "login"

// Sim is a running (or startable) Salesforce simulator. It is safe for
// concurrent use.
type Sim struct {
	base func() time.Time
	ids  *idSource

	mu          sync.Mutex
	offset      time.Duration
	behavior    Behavior
	faults      []faultState
	orgs        []*org
	tokens      map[string]session
	sweepAt     int // token count that triggers the next sweep
	propagation time.Duration
	tokenTTL    time.Duration
	stateFile   string
	host        string
	urlHost     string
	loginPort   int
	login       *listener
	listeners   map[string]*listener
	started     bool
	closed      bool

	logMu sync.Mutex
	log   []Request

	md mdState // Metadata API async jobs (mdapi.go); guarded by mu
}

// session is an issued access token.
type session struct {
	org      string
	userID   string
	username string
	expires  time.Time
	eca      *eca // the ECA the token was issued through (OAuth usage)
}

// faultState is a configured fault and how many matches it has left.
type faultState struct {
	Fault
	left int // -1 = unlimited
}

// listener is one bound HTTP server.
type listener struct {
	srv *http.Server
	ln  net.Listener
	url string
	err chan error
}

// Option changes how New builds a Sim.
type Option func(*Sim)

// WithClock sets the base clock the sim clock is offset from (default
// time.Now). Advance moves the sim clock ahead of it.
func WithClock(now func() time.Time) Option { return func(s *Sim) { s.base = now } }

// WithRand sets the randomness used for ids, keys, secrets and tokens
// (default crypto/rand).
func WithRand(r io.Reader) Option { return func(s *Sim) { s.ids = &idSource{r: r} } }

// maxLog bounds the request log; the oldest entries are dropped first.
const maxLog = 100000

// New builds a simulator from cfg. When cfg.StateFile exists its model
// (orgs, credentials, staged slots, settings, clock offset) replaces the one
// in cfg, so a demo survives restarts; delete the file to reseed.
func New(cfg Config, opts ...Option) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sfsim: invalid config: %w", err)
	}
	s := &Sim{base: time.Now, ids: &idSource{r: rand.Reader}, listeners: map[string]*listener{}}
	for _, o := range opts {
		o(s)
	}
	if s.base == nil || s.ids.r == nil {
		return nil, errors.New("sfsim: nil clock or random source")
	}
	s.host = cfg.Host
	if s.host == "" {
		s.host = "127.0.0.1"
	}
	s.urlHost = cfg.URLHost
	if s.urlHost == "" {
		s.urlHost = s.host
		if ip := net.ParseIP(s.host); ip != nil && ip.IsUnspecified() {
			s.urlHost = "127.0.0.1"
		}
	}
	s.loginPort = cfg.LoginPort
	s.stateFile = cfg.StateFile
	if err := s.seed(cfg); err != nil {
		return nil, err
	}
	if s.stateFile != "" {
		if err := s.loadState(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// seed replaces the model, behaviour and faults with cfg (already
// validated). Tokens are dropped. The caller holds no lock.
func (s *Sim) seed(cfg Config) error {
	orgs, err := buildOrgs(cfg.Orgs, s.ids)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgs = orgs
	s.behavior = cfg.effectiveBehavior()
	s.faults = newFaults(cfg.Faults)
	s.tokens = map[string]session{}
	s.propagation = time.Duration(cfg.PropagationDelay)
	s.tokenTTL = time.Duration(cfg.TokenTTL)
	if s.tokenTTL == 0 {
		s.tokenTTL = DefaultTokenTTL
	}
	return nil
}

// Seed replaces the whole model with cfg at run time: orgs, credentials,
// behaviour, faults, TTL and propagation delay. Listeners of orgs that
// remain keep their ports; new orgs get listeners when the sim is running;
// removed orgs' listeners close. The state file, if any, is rewritten.
func (s *Sim) Seed(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("sfsim: invalid config: %w", err)
	}
	if err := s.seed(cfg); err != nil {
		return err
	}
	s.mu.Lock()
	running := s.started && !s.closed
	var stale []*listener
	for name, l := range s.listeners {
		if s.org(name) == nil {
			stale = append(stale, l)
			delete(s.listeners, name)
		}
	}
	s.saveLocked()
	s.mu.Unlock()
	for _, l := range stale {
		_ = l.srv.Close()
	}
	if running {
		return s.startOrgs()
	}
	return nil
}

// Start binds the login host and one listener per org on the configured
// host (127.0.0.1 by default) and serves them in the background.
func (s *Sim) Start() error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("sfsim: already started")
	}
	s.started = true
	s.mu.Unlock()
	l, err := s.listen(LoginHost, s.loginPort)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.login = l
	s.mu.Unlock()
	if err := s.startOrgs(); err != nil {
		_ = s.Close()
		return err
	}
	return nil
}

// startOrgs starts a listener for every org that has none.
func (s *Sim) startOrgs() error {
	s.mu.Lock()
	var todo []*org
	for _, o := range s.orgs {
		if s.listeners[o.Name] == nil {
			todo = append(todo, o)
		}
	}
	s.mu.Unlock()
	for _, o := range todo {
		l, err := s.listen(o.Name, o.Port)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.listeners[o.Name] = l
		s.mu.Unlock()
	}
	return nil
}

// listen binds one host and serves it until Close.
func (s *Sim) listen(name string, port int) (*listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(s.host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("sfsim: listen for %s: %w", name, err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	l := &listener{
		srv: &http.Server{Handler: s.Handler(name), ReadHeaderTimeout: 10 * time.Second},
		ln:  ln,
		url: "http://" + net.JoinHostPort(s.urlHost, strconv.Itoa(p)),
		err: make(chan error, 1),
	}
	go func() {
		err := l.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		l.err <- err
	}()
	return l, nil
}

// Close stops every listener, waiting up to five seconds for requests in
// flight. It is safe to call more than once.
func (s *Sim) Close() error {
	return s.Shutdown(context.Background())
}

// Shutdown stops every listener gracefully until ctx ends (at most five
// seconds), then closes what is left.
func (s *Sim) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	all := []*listener{}
	if s.login != nil {
		all = append(all, s.login)
	}
	for _, l := range s.listeners {
		all = append(all, l)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	for _, l := range all {
		if err := l.srv.Shutdown(ctx); err != nil {
			_ = l.srv.Close() // ctx ended: drop what is still in flight
		}
		if err := <-l.err; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LoginURL is the base URL of the login host (like https://login.salesforce.com).
func (s *Sim) LoginURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loginURLLocked()
}

func (s *Sim) loginURLLocked() string {
	if s.login != nil {
		return s.login.url
	}
	if s.loginPort != 0 {
		return "http://" + net.JoinHostPort(s.urlHost, strconv.Itoa(s.loginPort))
	}
	return "http://login.sfsim.invalid"
}

// OrgURL is the org's My Domain base URL, which is also the instance_url its
// token endpoint returns. It is "" for an unknown org.
func (s *Sim) OrgURL(org string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orgURLLocked(org)
}

func (s *Sim) orgURLLocked(name string) string {
	if l := s.listeners[name]; l != nil {
		return l.url
	}
	o := s.org(name)
	if o == nil {
		return ""
	}
	if o.Port != 0 {
		return "http://" + net.JoinHostPort(s.urlHost, strconv.Itoa(o.Port))
	}
	// Not started: a stable placeholder so in-process use has URLs too.
	return "http://" + name + ".sfsim.invalid"
}

// TokenURL is the org's My Domain token endpoint; TokenURL(LoginHost) is the
// login host's.
func (s *Sim) TokenURL(org string) string {
	if org == LoginHost || org == "" {
		return s.LoginURL() + tokenPath
	}
	u := s.OrgURL(org)
	if u == "" {
		return ""
	}
	return u + tokenPath
}

// Orgs lists the org names in config order.
func (s *Sim) Orgs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, len(s.orgs))
	for i, o := range s.orgs {
		names[i] = o.Name
	}
	return names
}

// org returns the org by name; s.mu must be held.
func (s *Sim) org(name string) *org {
	for _, o := range s.orgs {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// Now is the sim clock: the base clock plus every Advance.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Sim) nowLocked() time.Time { return s.base().Add(s.offset).UTC() }

// Advance moves the sim clock forward by d (negative d is ignored).
func (s *Sim) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
	s.saveLocked()
}

// SecretAccess reports the org's enableClientSecretInRestApiAccess setting.
func (s *Sim) SecretAccess(org string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org(org)
	return o != nil && o.SecretAccess
}

// SetSecretAccess changes the org's enableClientSecretInRestApiAccess setting.
func (s *Sim) SetSecretAccess(org string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.org(org); o != nil {
		o.SecretAccess = on
		s.saveLocked()
	}
}

// ExpireTokens ends the life of every access token issued so far, as if
// their TTL had passed, without moving the sim clock.
func (s *Sim) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// SetAPILimit changes the org's daily API request limit (n ≤ 0 restores the
// default).
func (s *Sim) SetAPILimit(org string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.org(org); o != nil {
		if n <= 0 {
			n = DefaultAPILimit
		}
		o.APILimit = n
		s.saveLocked()
	}
}

// APIUsage returns the org's API calls counted today (sim clock) and its limit.
func (s *Sim) APIUsage(org string) (used, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org(org)
	if o == nil {
		return 0, 0
	}
	if !o.UsageDay.Equal(simDay(s.nowLocked())) {
		return 0, o.APILimit
	}
	return o.Usage, o.APILimit
}

// simDay is the UTC midnight that starts t's day.
func simDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// SetPropagationDelay sets how long newly primary (or, with
// StagedAuthenticates, newly staged) credentials are rejected by token
// endpoints, measured on the sim clock from the moment they became valid.
// It applies to every org without its own OrgConfig.PropagationDelay.
func (s *Sim) SetPropagationDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.propagation = max(d, 0)
}

// SetOrgPropagationDelay overrides the propagation delay for one org.
func (s *Sim) SetOrgPropagationDelay(org string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.org(org); o != nil {
		v := Duration(max(d, 0))
		o.PropagationDelay = &v
		s.saveLocked()
	}
}

// propagationLocked is the delay in force for o.
func (s *Sim) propagationLocked(o *org) time.Duration {
	if o.PropagationDelay != nil {
		return time.Duration(*o.PropagationDelay)
	}
	return s.propagation
}

// SetBehavior replaces the behaviour switches (unset fields take defaults).
func (s *Sim) SetBehavior(b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior = b.withDefaults()
}

// Behavior returns the behaviour switches in force, defaults filled in.
func (s *Sim) Behavior() Behavior {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.behavior
}

// ConsumerState returns a snapshot of a consumer, secrets included. eca is
// the app's developer name or identifier.
func (s *Sim) ConsumerState(org, eca, consumerID string) (ConsumerState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org(org)
	if o == nil {
		return ConsumerState{}, fmt.Errorf("sfsim: org %q: %w", org, ErrNotFound)
	}
	e := o.ownECA(eca)
	if e == nil {
		return ConsumerState{}, fmt.Errorf("sfsim: ECA %q in org %q: %w", eca, org, ErrNotFound)
	}
	c := e.consumer(consumerID)
	if c == nil {
		return ConsumerState{}, fmt.Errorf("sfsim: consumer %q of %q: %w", consumerID, eca, ErrNotFound)
	}
	s.settleMDLocked(s.nowLocked())
	c.lapse(s.nowLocked())
	return c.snapshot(true), nil
}
