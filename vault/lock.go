package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// Fields of a lock path.
const (
	fieldLockHolder     = "holder"
	fieldLockFence      = "fence"
	fieldLockExpiresAt  = "expires_at"
	fieldLockAcquiredAt = "acquired_at"
	fieldLockRenewedAt  = "renewed_at"
	fieldLockReleasedAt = "released_at"
)

// lockState is what a lock path holds.
type lockState struct {
	holder    string
	fence     int64
	expiresAt time.Time
	version   int // KV version of the lock path
}

func (c *Client) lockRel(name string) string {
	return c.o.LockPrefix + "/" + strings.Trim(name, "/")
}

// readLock reads a lock path. A path that never existed, or whose latest
// version was deleted, is a free lock at that version.
func (c *Client) readLock(ctx context.Context, op, name string) (lockState, error) {
	v, err := c.readKV(ctx, op, c.lockRel(name))
	if errors.Is(err, rotator.ErrNotFound) {
		return lockState{version: v.version}, nil
	}
	if err != nil {
		return lockState{}, err
	}
	return lockState{
		holder:    str(v.data, fieldLockHolder),
		fence:     int64(toInt(v.data[fieldLockFence])),
		expiresAt: toTime(v.data[fieldLockExpiresAt]),
		version:   v.version,
	}, nil
}

// live reports whether the lock is held by someone at now.
func (s lockState) live(now time.Time) bool {
	return s.holder != "" && now.Before(s.expiresAt)
}

// owns reports whether l is the lease recorded at the lock path (expired or
// not).
func (s lockState) owns(l rotator.Lease) bool {
	return s.holder != "" && s.holder == l.Holder && s.fence == l.Fence
}

// Acquire takes the lease name for holder for ttl. It succeeds when the
// lock is free, released or expired, and fails with rotator.ErrLocked while
// another lease is live, including when a competitor wins the
// check-and-set race. The lease's fencing token is the KV version of the
// acquiring write: every acquisition writes a new version, so tokens only
// grow (as long as nobody deletes the lock path's metadata by hand).
func (c *Client) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (rotator.Lease, error) {
	const op = "acquire lock"
	path := c.dataPath(c.lockRel(name))
	if holder == "" || ttl <= 0 || name == "" {
		return rotator.Lease{}, fmt.Errorf("vault: %s %s: name, holder and a positive ttl are required", op, path)
	}
	if app, ok := appOfLock(name); ok {
		return c.acquireApp(ctx, name, app, holder, ttl)
	}
	st, err := c.readLock(ctx, op, name)
	if err != nil {
		return rotator.Lease{}, err
	}
	now := c.now()
	if st.live(now) {
		return rotator.Lease{}, &opError{op: op, path: path, kinds: []error{rotator.ErrLocked},
			cause: fmt.Errorf("held by %s until %s", st.holder, st.expiresAt.UTC().Format(time.RFC3339Nano))}
	}
	fence := int64(st.version + 1) // the version this write creates
	exp := now.Add(ttl)
	v, err := c.writeKV(ctx, op, c.lockRel(name), map[string]any{
		fieldLockHolder:     holder,
		fieldLockFence:      fence,
		fieldLockExpiresAt:  exp.UTC().Format(time.RFC3339Nano),
		fieldLockAcquiredAt: now.UTC().Format(time.RFC3339Nano),
	}, st.version)
	if errors.Is(err, rotator.ErrConflict) {
		return rotator.Lease{}, &opError{op: op, path: path, kinds: []error{rotator.ErrLocked}, cause: errors.New("another holder won the race")}
	}
	if err != nil {
		return rotator.Lease{}, err
	}
	if int64(v) != fence {
		// Cannot happen with check-and-set; refuse rather than hand out a
		// token that does not match the version.
		return rotator.Lease{}, fmt.Errorf("vault: %s %s: wrote version %d, expected %d", op, path, v, fence)
	}
	if st.holder != "" {
		c.log.Info("vault: took over expired lease", zap.String(logKeyLock, name), zap.String("previous_holder", st.holder), zap.Int64(logKeyFence, fence))
	}
	return rotator.Lease{Name: name, Holder: holder, Fence: fence, ExpiresAt: exp}, nil
}

// Renew extends l by ttl from now. It fails with rotator.ErrFenced when l is
// no longer the lease recorded (taken over or released). A lease that
// expired but was not taken over is still recorded as l, and renewing it is
// safe: a takeover would have changed the version the check-and-set names.
func (c *Client) Renew(ctx context.Context, l rotator.Lease, ttl time.Duration) (rotator.Lease, error) {
	const op = "renew lock"
	path := c.dataPath(c.lockRel(l.Name))
	if ttl <= 0 {
		return l, fmt.Errorf("vault: %s %s: ttl must be positive", op, path)
	}
	if app, ok := appOfLock(l.Name); ok {
		return c.renewApp(ctx, app, l, ttl)
	}
	st, err := c.readLock(ctx, op, l.Name)
	if err != nil {
		return l, err
	}
	if !st.owns(l) {
		return l, fencedErr(op, path, l, st)
	}
	now := c.now()
	exp := now.Add(ttl)
	_, err = c.writeKV(ctx, op, c.lockRel(l.Name), map[string]any{
		fieldLockHolder:    l.Holder,
		fieldLockFence:     l.Fence,
		fieldLockExpiresAt: exp.UTC().Format(time.RFC3339Nano),
		fieldLockRenewedAt: now.UTC().Format(time.RFC3339Nano),
	}, st.version)
	if errors.Is(err, rotator.ErrConflict) {
		return l, &opError{op: op, path: path, kinds: []error{rotator.ErrFenced}, cause: errors.New("lock changed while renewing")}
	}
	if err != nil {
		return l, err
	}
	l.ExpiresAt = exp
	return l, nil
}

// Release frees l so that the next Acquire need not wait for expiry. The
// lock path keeps its versions (a release is a new version with no holder),
// so fencing tokens keep growing. rotator.ErrFenced when l was no longer
// the recorded lease: nothing is changed then.
func (c *Client) Release(ctx context.Context, l rotator.Lease) error {
	const op = "release lock"
	if app, ok := appOfLock(l.Name); ok {
		return c.releaseApp(ctx, app, l)
	}
	path := c.dataPath(c.lockRel(l.Name))
	st, err := c.readLock(ctx, op, l.Name)
	if err != nil {
		return err
	}
	if !st.owns(l) {
		return fencedErr(op, path, l, st)
	}
	_, err = c.writeKV(ctx, op, c.lockRel(l.Name), map[string]any{
		fieldLockHolder:     "",
		fieldLockFence:      l.Fence,
		fieldLockReleasedAt: c.now().UTC().Format(time.RFC3339Nano),
	}, st.version)
	if errors.Is(err, rotator.ErrConflict) {
		return &opError{op: op, path: path, kinds: []error{rotator.ErrFenced}, cause: errors.New("lock changed while releasing")}
	}
	return err
}

// Check returns nil while l is the recorded lease and unexpired, and an
// error matching rotator.ErrFenced otherwise. An expired lease fails even
// before anyone takes it over, because a takeover may happen at any moment.
func (c *Client) Check(ctx context.Context, l rotator.Lease) error {
	const op = "check lock"
	if app, ok := appOfLock(l.Name); ok {
		return c.checkApp(ctx, app, l)
	}
	path := c.dataPath(c.lockRel(l.Name))
	st, err := c.readLock(ctx, op, l.Name)
	if err != nil {
		return err
	}
	if !st.owns(l) {
		return fencedErr(op, path, l, st)
	}
	if !c.now().Before(st.expiresAt) {
		return &opError{op: op, path: path, kinds: []error{rotator.ErrFenced},
			cause: fmt.Errorf("lease expired at %s", st.expiresAt.UTC().Format(time.RFC3339Nano))}
	}
	return nil
}

func fencedErr(op, path string, l rotator.Lease, st lockState) error {
	cause := fmt.Errorf("lease %d of %s superseded", l.Fence, l.Holder)
	if st.holder == "" {
		cause = fmt.Errorf("lease %d of %s was released", l.Fence, l.Holder)
	} else if st.fence != l.Fence {
		cause = fmt.Errorf("lease %d of %s superseded by lease %d of %s", l.Fence, l.Holder, st.fence, st.holder)
	}
	return &opError{op: op, path: path, kinds: []error{rotator.ErrFenced}, cause: cause}
}

// KeepAlive renews l every ttl/3 while the work under it continues, until
// ctx ends (the channel is then closed without a value) or a renewal fails
// (the error is sent, then the channel is closed). A caller that receives an
// error must stop writing under l: further writes would fail with
// rotator.ErrFenced anyway. A renewal that fails only because Vault is
// unreachable is retried at the next tick while the lease has not expired.
func (c *Client) KeepAlive(ctx context.Context, l rotator.Lease, ttl time.Duration) <-chan error {
	out := make(chan error, 1)
	interval := ttl / 3
	if interval <= 0 {
		out <- fmt.Errorf("vault: keep lease %s alive: ttl must be positive", l.Name)
		close(out)
		return out
	}
	go func() {
		defer close(out)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			nl, err := c.Renew(ctx, l, ttl)
			switch {
			case err == nil:
				l = nl
			case ctx.Err() != nil:
				return
			case errors.Is(err, rotator.ErrUnreachable) && c.now().Before(l.ExpiresAt):
				c.log.Warn("vault: lease renewal failed; retrying", zap.String(logKeyLock, l.Name), zap.String(logKeyErr, detail(err)))
			default:
				out <- err
				return
			}
		}
	}()
	return out
}
