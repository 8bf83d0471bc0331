package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// ActionStatus is the action checked for the read API (GET /api/v1/*): the
// caller's token must hold "read" on the app's control path
// <mount>/data/<control_prefix>/<app>/status (security review M2).
const ActionStatus = "status"

// Defaults of the read API's protections, documented in the README.
const (
	// DefaultAuthCacheTTL is how long an allowed read is remembered per
	// token and app: a revoked token stops reading within this time.
	DefaultAuthCacheTTL = 10 * time.Second
	// DefaultAuthCacheSize bounds the remembered decisions.
	DefaultAuthCacheSize = 4096
	// DefaultPlanCacheTTL is how long a plan answer is served again
	// instead of asking the Dev Hubs anew.
	DefaultPlanCacheTTL = time.Minute
	// DefaultPlanPerMinute bounds the plans computed (Dev Hub API calls)
	// per minute across all callers; more answer 429.
	DefaultPlanPerMinute = 6
)

// Namer is optionally implemented by a Status: the configured app names,
// cheaply, so that the read API authorises before it reads anything.
type Namer interface {
	AppNames() []string
}

// authCache remembers allowed read decisions per token and app for a short
// time. Only allowed decisions are stored: a refusal, an invalid token or a
// Vault error is asked again next time. Keys are SHA-256 digests, so no
// token is held in memory beyond the request that carried it.
type authCache struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	now func() time.Time
	m   map[[32]byte]authEntry
}

type authEntry struct {
	identity string
	expires  time.Time
}

func newAuthCache(ttl time.Duration, size int, now func() time.Time) *authCache {
	return &authCache{ttl: ttl, max: size, now: now, m: map[[32]byte]authEntry{}}
}

func authKey(token rotator.Secret, app, action string) [32]byte {
	return sha256.Sum256([]byte(token.Reveal() + "\x00" + app + "\x00" + action))
}

func (c *authCache) get(token rotator.Secret, app, action string) (string, bool) {
	if c.ttl <= 0 {
		return "", false
	}
	k := authKey(token, app, action)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return "", false
	}
	if !c.now().Before(e.expires) {
		delete(c.m, k)
		return "", false
	}
	return e.identity, true
}

func (c *authCache) put(token rotator.Secret, app, action, identity string) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Drop the expired first; if still full, drop an arbitrary half:
		// the cache only saves Vault calls, it never decides anything.
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max/2+1 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[authKey(token, app, action)] = authEntry{identity: identity, expires: now.Add(c.ttl)}
}

func (c *authCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// authorizeRead checks the caller's token for read on app's status control
// path, through the cache. It answers the request itself on failure and
// then returns false.
func (s *Server) authorizeRead(w http.ResponseWriter, r *http.Request, apps []string) (allowed []string, ok bool) {
	if s.opts.Authorizer == nil {
		s.fail(w, r, http.StatusNotImplemented, CodeNotImplemented, "the read API needs an authorizer")
		return nil, false
	}
	token := bearer(r)
	if token.IsZero() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ecarotator"`)
		s.fail(w, r, http.StatusUnauthorized, CodeUnauthenticated, "a Vault token is required (X-Vault-Token or Authorization: Bearer)")
		return nil, false
	}
	allowed, _, err := s.CanRead(r.Context(), token, apps)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ecarotator"`)
		}
		s.failErr(w, r, "authorize read", err)
		return nil, false
	}
	return allowed, true
}

// CanRead is the read API's authorization, for every reader of the
// daemon's state (the JSON API and the auditor console): the apps of apps
// whose status control path token may read, and the caller's identity.
// Allowed decisions are cached (AuthCacheTTL). It fails with an error
// matching ErrUnauthenticated for an invalid token, ErrForbidden when no
// app is readable, and rotator.ErrUnreachable when Vault cannot answer.
func (s *Server) CanRead(ctx context.Context, token rotator.Secret, apps []string) (allowed []string, identity string, err error) {
	if s.opts.Authorizer == nil {
		return nil, "", errors.New("server: the read API needs an authorizer")
	}
	if token.IsZero() {
		return nil, "", ErrUnauthenticated
	}
	if ba, isBatch := s.opts.Authorizer.(BatchAuthorizer); isBatch && len(apps) > 1 {
		// A page of apps is decided in one Vault call (load.go).
		allowed, err := s.authorizeBatch(ctx, ba, token, apps)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) && !errors.Is(err, rotator.ErrPermission) {
				err = fmt.Errorf("%w: %w", rotator.ErrUnreachable, err)
			}
			return nil, "", err
		}
		if len(allowed) > 0 {
			identity, _ = s.auth.get(token, allowed[0], ActionStatus)
		}
		return allowed, identity, nil
	}
	var firstErr error
	for _, app := range apps {
		if id, hit := s.auth.get(token, app, ActionStatus); hit {
			allowed, identity = append(allowed, app), id
			continue
		}
		id, err := s.opts.Authorizer.Authorize(ctx, token, app, ActionStatus)
		if err != nil {
			if errors.Is(err, ErrUnauthenticated) {
				return nil, "", err
			}
			if !errors.Is(err, ErrForbidden) && !errors.Is(err, rotator.ErrPermission) {
				// A Vault that cannot answer ends the check: nothing is
				// cached.
				return nil, "", fmt.Errorf("%w: %w", rotator.ErrUnreachable, err)
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		s.auth.put(token, app, ActionStatus, id)
		allowed, identity = append(allowed, app), id
	}
	if len(allowed) == 0 && firstErr != nil {
		return nil, "", firstErr
	}
	return allowed, identity, nil
}

// appNames is every configured app, from the Namer when the Status has
// one, else from Apps (which reads more).
func (s *Server) appNames(ctx context.Context) ([]string, error) {
	if n, ok := s.opts.Status.(Namer); ok {
		return n.AppNames(), nil
	}
	apps, err := s.opts.Status.Apps(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = a.Name
	}
	return names, nil
}

// planCache serves a computed plan again for PlanCacheTTL and bounds how
// many plans are computed per minute: each costs Dev Hub API calls, and
// the scheduler defers rotations when a Dev Hub is near its daily limit,
// so an unbounded plan endpoint could stop rotations (M2).
type planCache struct {
	mu       sync.Mutex
	ttl      time.Duration
	perMin   int
	now      func() time.Time
	entries  map[string]planEntry
	computed []time.Time // start times of computations in the last minute
}

type planEntry struct {
	at  time.Time
	val any
}

// errPlanLimited: too many plans computed in the last minute.
var errPlanLimited = errors.New("server: plan rate limit reached")

// get returns a fresh cached plan, or reserves a computation; retryAfter
// is set when neither is possible.
func (c *planCache) get(key string) (val any, hit bool, retryAfter time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if e, ok := c.entries[key]; ok && now.Sub(e.at) < c.ttl {
		return e.val, true, 0, nil
	}
	keep := c.computed[:0]
	for _, t := range c.computed {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	c.computed = keep
	if len(c.computed) >= c.perMin {
		return nil, false, time.Minute - now.Sub(c.computed[0]), errPlanLimited
	}
	c.computed = append(c.computed, now)
	return nil, false, 0, nil
}

func (c *planCache) put(key string, val any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= 256 {
		clear(c.entries)
	}
	c.entries[key] = planEntry{at: c.now(), val: val}
}

// hostAllowed reports whether the Host header names this server: a
// loopback name or address, the listen host, or one of AllowedHosts. A
// DNS-rebinding page reaches a loopback daemon under its own host name and
// is refused (M2).
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	if lh, _, err := net.SplitHostPort(s.opts.Addr); err == nil && lh != "" && strings.EqualFold(strings.Trim(lh, "[]"), host) {
		if ip := net.ParseIP(lh); ip == nil || !ip.IsUnspecified() {
			return true
		}
	}
	return slices.ContainsFunc(s.opts.AllowedHosts, func(a string) bool { return strings.EqualFold(strings.TrimSuffix(a, "."), host) })
}

// checkHost answers 421 for an /api/ or /ui/ request whose Host is not this
// server's. Probes and metrics stay open to any Host (orchestrators call
// them by pod address).
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/ui")) && !s.hostAllowed(r.Host) {
			s.opts.Logger.Warn("request for another host refused", zap.String("request_id", requestID(r.Context())), zap.String("path", r.URL.Path))
			s.fail(w, r, http.StatusMisdirectedRequest, CodeBadHost, "this server does not answer for that Host (server.allowed_hosts)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
