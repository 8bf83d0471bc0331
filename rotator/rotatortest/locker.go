package rotatortest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// Locker is a fake rotator.Locker: one lease per name, taken over only
// after it expired, with a fence that increases on every acquisition.
type Locker struct {
	Clock rotator.Clock

	mu       sync.Mutex
	leases   map[string]rotator.Lease
	fence    int64
	acquires int
}

var _ rotator.Locker = (*Locker)(nil)

// NewLocker returns a Locker reading time from c.
func NewLocker(c rotator.Clock) *Locker {
	return &Locker{Clock: c, leases: map[string]rotator.Lease{}}
}

// Acquire implements rotator.Locker.
func (l *Locker) Acquire(_ context.Context, name, holder string, ttl time.Duration) (rotator.Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Clock.Now()
	if cur, ok := l.leases[name]; ok && now.Before(cur.ExpiresAt) {
		return rotator.Lease{}, fmt.Errorf("fake lock %s held by %s: %w", name, cur.Holder, rotator.ErrLocked)
	}
	l.fence++
	l.acquires++
	lease := rotator.Lease{Name: name, Holder: holder, Fence: l.fence, ExpiresAt: now.Add(ttl)}
	l.leases[name] = lease
	return lease, nil
}

// Renew implements rotator.Locker.
func (l *Locker) Renew(_ context.Context, lease rotator.Lease, ttl time.Duration) (rotator.Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkLocked(lease); err != nil {
		return rotator.Lease{}, err
	}
	lease.ExpiresAt = l.Clock.Now().Add(ttl)
	l.leases[lease.Name] = lease
	return lease, nil
}

// Release implements rotator.Locker.
func (l *Locker) Release(_ context.Context, lease rotator.Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.leases[lease.Name]; ok && cur.Fence == lease.Fence {
		delete(l.leases, lease.Name)
	}
	return nil
}

// Check implements rotator.Locker.
func (l *Locker) Check(_ context.Context, lease rotator.Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkLocked(lease)
}

func (l *Locker) checkLocked(lease rotator.Lease) error {
	cur, ok := l.leases[lease.Name]
	if !ok || cur.Fence != lease.Fence || !l.Clock.Now().Before(cur.ExpiresAt) {
		return fmt.Errorf("fake lock %s fence %d: %w", lease.Name, lease.Fence, rotator.ErrFenced)
	}
	return nil
}

// Held reports whether name has an unexpired lease.
func (l *Locker) Held(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.leases[name]
	return ok && l.Clock.Now().Before(cur.ExpiresAt)
}

// Acquires counts successful acquisitions.
func (l *Locker) Acquires() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acquires
}

// Steal makes name held by holder now, as another replica would after the
// lease expired; the previous holder's writes are then fenced.
func (l *Locker) Steal(name, holder string, ttl time.Duration) rotator.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fence++
	lease := rotator.Lease{Name: name, Holder: holder, Fence: l.fence, ExpiresAt: l.Clock.Now().Add(ttl)}
	l.leases[name] = lease
	return lease
}
