package rotatortest

import (
	"context"
	"fmt"
	"sync"

	"github.com/ecarotator/ecarotator/rotator"
)

// Store is a fake rotator.CredentialStore modelled on KV v2: versions,
// check-and-set, the managed-by marker and lease fencing.
type Store struct {
	Clock  rotator.Clock
	Locker *Locker // fencing; nil disables the check

	mu     sync.Mutex
	paths  map[string][]storeVersion
	writes int
	// Fail, when set, is returned by the next WriteCredentials (once).
	fail error
}

type storeVersion struct {
	c    rotator.StoredCredentials
	meta rotator.StoreMeta
}

var _ rotator.CredentialStore = (*Store)(nil)

// NewStore returns an empty store.
func NewStore(c rotator.Clock, l *Locker) *Store {
	return &Store{Clock: c, Locker: l, paths: map[string][]storeVersion{}}
}

// Seed writes version n+1 of path directly (managed or not), as an
// operator or an earlier ecarotator would have.
func (s *Store) Seed(path string, c rotator.StoredCredentials, managed bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendLocked(path, c, managed, c.RotationID)
}

func (s *Store) appendLocked(path string, c rotator.StoredCredentials, managed bool, rotationID string) int {
	v := len(s.paths[path]) + 1
	meta := rotator.StoreMeta{Version: v, Managed: managed, UpdatedAt: s.Clock.Now(), Custom: map[string]string{}}
	if managed {
		meta.Custom["managed-by"] = "ecarotator"
		meta.Custom["rotation-id"] = rotationID
	}
	s.paths[path] = append(s.paths[path], storeVersion{c: c, meta: meta})
	return v
}

// ReadCredentials implements rotator.CredentialStore.
func (s *Store) ReadCredentials(_ context.Context, path string) (rotator.StoredCredentials, rotator.StoreMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.paths[path]
	if len(vs) == 0 {
		return rotator.StoredCredentials{}, rotator.StoreMeta{}, fmt.Errorf("fake store %s: %w", path, rotator.ErrNotFound)
	}
	last := vs[len(vs)-1]
	return last.c, last.meta, nil
}

// WriteCredentials implements rotator.CredentialStore.
func (s *Store) WriteCredentials(ctx context.Context, path string, c rotator.StoredCredentials, opts rotator.WriteOptions) (int, error) {
	if opts.Lease != nil && s.Locker != nil {
		if err := s.Locker.Check(ctx, *opts.Lease); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		err := s.fail
		s.fail = nil
		return 0, err
	}
	vs := s.paths[path]
	if len(vs) != opts.CAS {
		return 0, fmt.Errorf("fake store %s: cas %d, have %d: %w", path, opts.CAS, len(vs), rotator.ErrConflict)
	}
	if len(vs) > 0 && !vs[len(vs)-1].meta.Managed && !opts.Adopt {
		return 0, fmt.Errorf("fake store %s: %w", path, rotator.ErrNotManaged)
	}
	s.writes++
	return s.appendLocked(path, c, true, opts.RotationID), nil
}

// History implements rotator.CredentialStore.
func (s *Store) History(_ context.Context, path string) ([]rotator.VersionInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.paths[path]
	if len(vs) == 0 {
		return nil, fmt.Errorf("fake store %s: %w", path, rotator.ErrNotFound)
	}
	out := make([]rotator.VersionInfo, len(vs))
	for i, v := range vs {
		out[i] = rotator.VersionInfo{Version: v.meta.Version, CreatedAt: v.meta.UpdatedAt}
	}
	return out, nil
}

// Current returns path's latest version (zero when absent).
func (s *Store) Current(path string) (rotator.StoredCredentials, rotator.StoreMeta) {
	c, m, _ := s.ReadCredentials(context.Background(), path)
	return c, m
}

// Writes counts successful WriteCredentials calls.
func (s *Store) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// FailNextWrite makes the next WriteCredentials return err without writing.
func (s *Store) FailNextWrite(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// Holds reports whether any version of any path holds c (current or
// previous).
func (s *Store) Holds(c rotator.Credentials) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, vs := range s.paths {
		for _, v := range vs {
			for _, h := range []rotator.Credentials{v.c.Current, v.c.Previous} {
				if h.Key == c.Key && h.Secret.Equal(c.Secret) {
					return true
				}
			}
		}
	}
	return false
}
