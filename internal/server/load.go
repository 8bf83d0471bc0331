package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"go.uber.org/zap"
)

// Defaults of the API's load protections (issue 14), documented in the
// README.
const (
	// DefaultMaxInFlight bounds the /api/ requests served at once; more
	// are answered 503 with Retry-After at once, never queued.
	DefaultMaxInFlight = 64
	// DefaultPageSize is the number of apps GET /api/v1/apps returns
	// without ?limit; MaxPageSize is the largest ?limit accepted.
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// NamedStatus is optionally implemented by a Status: the lines of the
// named apps only, so that a page of a large listing costs only its apps.
type NamedStatus interface {
	AppsNamed(ctx context.Context, names []string) ([]AppStatus, error)
}

// BatchAuthorizer is optionally implemented by an Authorizer: it decides
// action for many apps in one go (one Vault call for the page of a
// listing instead of one per app). allowed holds the apps permitted; an
// error is returned only when the token is invalid or Vault cannot
// answer (as for Authorize).
type BatchAuthorizer interface {
	AuthorizeMany(ctx context.Context, token rotator.Secret, apps []string, action string) (identity string, allowed []string, err error)
}

// shed bounds the /api/ requests in flight: past the bound a request is
// answered 503 with Retry-After at once (load is shed, never queued
// without limit; probes and metrics are not counted).
func (s *Server) shed(next http.Handler) http.Handler {
	n := s.opts.MaxInFlight
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			s.shedCount.Add(1)
			w.Header().Set("Retry-After", "1")
			s.fail(w, r, http.StatusServiceUnavailable, CodeOverloaded, fmt.Sprintf("more than %d API requests in flight; retry later", n))
			return
		}
		defer func() { <-sem }()
		next.ServeHTTP(w, r)
	})
}

// Shed is the number of requests answered 503 by the in-flight bound.
func (s *Server) Shed() int64 { return s.shedCount.Load() }

// page parses ?limit and ?after of a listing and returns the slice of
// names it covers and the cursor of the next page ("" at the end).
func page(names []string, q map[string][]string) (out []string, next string, err error) {
	limit := DefaultPageSize
	if v := first(q["limit"]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return nil, "", fmt.Errorf("limit must be a number from 1 to %d", MaxPageSize)
		}
		limit = n
	}
	start := 0
	if after := first(q["after"]); after != "" {
		start = len(names) // an app gone since the last page ends the listing
		for i, n := range names {
			if n == after {
				start = i + 1
				break
			}
		}
	}
	end := min(start+limit, len(names))
	out = names[start:end]
	if end < len(names) && len(out) > 0 {
		next = out[len(out)-1]
	}
	return out, next, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// pageAuth collapses concurrent authorisations of the same token and page
// into one (a burst of identical requests on a cold cache asks Vault
// once).
type pageAuth struct {
	mu    sync.Mutex
	calls map[[32]byte]*pageCall
}

type pageCall struct {
	done    chan struct{}
	allowed []string
	err     error
}

func pageKey(token rotator.Secret, apps []string, action string) [32]byte {
	h := sha256.New()
	h.Write([]byte(token.Reveal()))
	h.Write([]byte{0})
	h.Write([]byte(action))
	for _, a := range apps {
		h.Write([]byte{0})
		h.Write([]byte(a))
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// do runs fn once for concurrent callers with the same key.
func (p *pageAuth) do(key [32]byte, fn func() ([]string, error)) ([]string, error) {
	p.mu.Lock()
	if c, ok := p.calls[key]; ok {
		p.mu.Unlock()
		<-c.done
		return c.allowed, c.err
	}
	c := &pageCall{done: make(chan struct{})}
	p.calls[key] = c
	p.mu.Unlock()
	c.allowed, c.err = fn()
	p.mu.Lock()
	delete(p.calls, key)
	p.mu.Unlock()
	close(c.done)
	return c.allowed, c.err
}

// authorizeBatch is authorizeRead's path for a BatchAuthorizer: the apps
// the cache does not hold are decided in one call (shared by concurrent
// identical requests), and the allowed ones cached.
func (s *Server) authorizeBatch(ctx context.Context, ba BatchAuthorizer, token rotator.Secret, apps []string) (allowed []string, err error) {
	var miss []string
	for _, app := range apps {
		if _, hit := s.auth.get(token, app, ActionStatus); hit {
			allowed = append(allowed, app)
		} else {
			miss = append(miss, app)
		}
	}
	if len(miss) == 0 {
		return allowed, nil
	}
	got, err := s.pages.do(pageKey(token, miss, ActionStatus), func() ([]string, error) {
		// A call that finished just before this one began has filled the
		// cache: ask Vault only for what is still missing.
		var ok, ask []string
		for _, app := range miss {
			if _, hit := s.auth.get(token, app, ActionStatus); hit {
				ok = append(ok, app)
			} else {
				ask = append(ask, app)
			}
		}
		if len(ask) == 0 {
			return ok, nil
		}
		start := time.Now()
		id, got, err := ba.AuthorizeMany(ctx, token, ask, ActionStatus)
		if err != nil {
			return nil, err
		}
		for _, app := range got {
			s.auth.put(token, app, ActionStatus, id)
		}
		ok = append(ok, got...)
		s.opts.Logger.Debug("read access decided", zap.Int("apps", len(miss)), zap.Int("allowed", len(ok)), zap.Duration("took", time.Since(start)))
		return ok, nil
	})
	if err != nil {
		return nil, err
	}
	if len(got) == 0 && len(allowed) == 0 && len(miss) > 0 {
		return nil, fmt.Errorf("%w: status on %d apps", ErrForbidden, len(miss))
	}
	// In page order.
	ok := make(map[string]bool, len(allowed)+len(got))
	for _, a := range allowed {
		ok[a] = true
	}
	for _, a := range got {
		ok[a] = true
	}
	allowed = allowed[:0]
	for _, a := range apps {
		if ok[a] {
			allowed = append(allowed, a)
		}
	}
	return allowed, nil
}

// AuthorizeMany implements BatchAuthorizer when Caps also answers for many
// paths at once (the vault adapter's CapabilitiesMany): one
// sys/capabilities-self call for all apps and one token lookup for the
// identity.
func (a *VaultAuthorizer) AuthorizeMany(ctx context.Context, token rotator.Secret, apps []string, action string) (string, []string, error) {
	mc, ok := a.Caps.(ManyCapabilities)
	if !ok || a.ControlPath == nil {
		return a.authorizeEach(ctx, token, apps, action)
	}
	if token.IsZero() {
		return "", nil, ErrUnauthenticated
	}
	paths := make([]string, len(apps))
	for i, app := range apps {
		paths[i] = a.ControlPath(app, action)
	}
	caps, err := mc.CapabilitiesMany(ctx, token, paths)
	if err != nil {
		return "", nil, a.wrap("capabilities", err)
	}
	var allowed []string
	for i, app := range apps {
		if hasCap(caps[paths[i]], action) {
			allowed = append(allowed, app)
		}
	}
	if len(allowed) == 0 {
		return "", nil, nil
	}
	id := "vault-token"
	if a.Identity != nil {
		if id, err = a.Identity.TokenIdentity(ctx, token); err != nil {
			return "", nil, a.wrap("token identity", err)
		}
	}
	return id, allowed, nil
}

// authorizeEach is AuthorizeMany without a batch capability call.
func (a *VaultAuthorizer) authorizeEach(ctx context.Context, token rotator.Secret, apps []string, action string) (string, []string, error) {
	var (
		id      string
		allowed []string
	)
	for _, app := range apps {
		got, err := a.Authorize(ctx, token, app, action)
		switch {
		case err == nil:
			id = got
			allowed = append(allowed, app)
		case errors.Is(err, ErrForbidden) && !errors.Is(err, ErrUnauthenticated):
		default:
			return "", nil, err
		}
	}
	return id, allowed, nil
}

// ManyCapabilities is optionally implemented by a Capabilities: the
// capabilities on many paths in one call.
type ManyCapabilities interface {
	CapabilitiesMany(ctx context.Context, token rotator.Secret, paths []string) (map[string][]string, error)
}
