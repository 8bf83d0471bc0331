package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// An app's lease and its rotation journal live in ONE KV document, the
// app's state path <StatePrefix>/<app> (issue 14: "where one check-and-set
// write can carry two facts, use one"):
//
//   - the lease named "app/<app>" is the fields holder, fence, expires_at;
//   - the journal is the fields state and pending_consumer_secret, present
//     while a rotation (or retirement) is open.
//
// Every write is check-and-set on the document's version, so a journal
// save IS the lease check: a replica that took the lease over wrote a new
// version, and the stale holder's next save fails (rotator.ErrFenced)
// without a separate read of the lease. A Client remembers the document of
// each app lease it holds (version, lease, journal), so the journal load
// after an acquisition, the fence checks of credential writes and the
// version a renewal or release names cost no request.
//
// The document exists only while it matters: acquiring creates it
// (check-and-set 0, one write when no rotation is open — the usual case),
// and releasing a lease whose journal was cleared deletes it with all its
// versions (destroying the pending secret they held, as clearing a journal
// always did). So a LIST of the state prefix (OpenJournals) still names the
// apps with an open journal (or a live lease), not every app.
//
// The delete is not check-and-set (KV v2 has none for metadata). It is
// sent only while this Client's lease has at least releaseMargin left on
// its own clock; another replica can take the lease only after it expired
// on its clock, so the delete cannot remove a successor's lease unless the
// clocks disagree by more than the margin — the same assumption that bounds
// every Salesforce mutation by the lease (rotator's fencedIssuer). With
// less time left the release is a check-and-set write instead, which
// leaves an empty document behind.
//
// Fencing tokens of app leases are the acquisition time in microseconds
// (made larger than the previous holder's): the document's version starts
// again at 1 after each delete, so it cannot serve as the token.
// Microseconds, not nanoseconds: Vault keeps JSON numbers as float64, which
// holds integers exactly only up to 2^53 (a nanosecond token came back
// rounded and no longer matched its lease).
//
// Upgrade note: app leases used to live under <LockPrefix>/app/<app>. Stop
// every replica of the old version before starting this one, so that no
// two replicas take the same app's lease at the two places.

// appLockPrefix starts the names of app leases (rotator's Engine).
const appLockPrefix = "app/"

// appOfLock returns the app whose document holds the lease name.
func appOfLock(name string) (string, bool) {
	app, ok := strings.CutPrefix(name, appLockPrefix)
	return app, ok && app != "" && !strings.Contains(app, "/")
}

// isAppJournal reports whether a journal name is an app's (kept in the
// app's document) rather than a ledger or cache entry ("secret-access/…",
// "eca/…"), which keep their own paths.
func isAppJournal(name string) bool { return name != "" && !strings.Contains(name, "/") }

// appDoc is one version of an app's state document.
type appDoc struct {
	version   int // KV version; 0 when the document does not exist
	holder    string
	fence     int64
	expiresAt time.Time
	ttl       time.Duration // of the lease as this Client took or renewed it (0: unknown)
	state     string        // the journal's JSON; "" when no journal is open
	pending   string        // the journal's pending secret
}

func (d appDoc) live(now time.Time) bool { return d.holder != "" && now.Before(d.expiresAt) }

func (d appDoc) owns(l rotator.Lease) bool {
	return d.holder != "" && d.holder == l.Holder && d.fence == l.Fence
}

func (d appDoc) lease(name string) rotator.Lease {
	return rotator.Lease{Name: name, Holder: d.holder, Fence: d.fence, ExpiresAt: d.expiresAt}
}

// data is the document's KV data. Lease times are kept for people reading
// the path in the Vault UI.
func (d appDoc) data(stamp string, at time.Time) map[string]any {
	m := map[string]any{fieldLockHolder: d.holder, fieldLockFence: d.fence}
	if d.holder != "" {
		m[fieldLockExpiresAt] = d.expiresAt.UTC().Format(time.RFC3339Nano)
	}
	if stamp != "" {
		m[stamp] = at.UTC().Format(time.RFC3339Nano)
	}
	if d.state != "" {
		m[fieldJournalState] = d.state
		m[fieldJournalPending] = d.pending
	}
	return m
}

// heldDocs are the documents of the app leases this Client holds, by app.
type heldDocs struct {
	mu sync.Mutex
	m  map[string]appDoc
}

func (h *heldDocs) get(app string) (appDoc, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.m[app]
	return d, ok
}

func (h *heldDocs) put(app string, d appDoc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]appDoc{}
	}
	h.m[app] = d
}

func (h *heldDocs) drop(app string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, app)
}

// releaseMargin is the lease time that must be left for a release to
// delete the document (see the file comment).
func releaseMargin(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 10 * time.Second
	}
	return min(10*time.Second, ttl/4)
}

// readDoc reads app's document; exists is false when it has no live
// version (the returned version is then what a check-and-set must name).
func (c *Client) readDoc(ctx context.Context, op, app string) (appDoc, bool, error) {
	v, err := c.readKV(ctx, op, c.journalRel(app))
	if errors.Is(err, rotator.ErrNotFound) {
		return appDoc{version: v.version}, false, nil
	}
	if err != nil {
		return appDoc{}, false, err
	}
	return appDoc{
		version:   v.version,
		holder:    str(v.data, fieldLockHolder),
		fence:     int64(toInt(v.data[fieldLockFence])),
		expiresAt: toTime(v.data[fieldLockExpiresAt]),
		state:     str(v.data, fieldJournalState),
		pending:   str(v.data, fieldJournalPending),
	}, true, nil
}

// heldDoc returns the document of lease l: the remembered one when this
// Client holds l, else a fresh read. ErrFenced when l is not the lease
// recorded there.
func (c *Client) heldDoc(ctx context.Context, op, app string, l rotator.Lease) (appDoc, error) {
	path := c.dataPath(c.journalRel(app))
	if d, ok := c.held.get(app); ok && d.owns(l) {
		return d, nil
	}
	d, exists, err := c.readDoc(ctx, op, app)
	if err != nil {
		return appDoc{}, err
	}
	if !exists || !d.owns(l) {
		return appDoc{}, fencedErr(op, path, l, lockState{holder: d.holder, fence: d.fence})
	}
	return d, nil
}

// writeHeld writes d as the next version of app's document, check-and-set
// on d.version; a lost check-and-set means the lease was taken over
// (rotator.ErrFenced). It remembers and returns the written document.
func (c *Client) writeHeld(ctx context.Context, op, app string, d appDoc, stamp string) (appDoc, error) {
	path := c.dataPath(c.journalRel(app))
	v, err := c.writeKV(ctx, op, c.journalRel(app), d.data(stamp, c.now()), d.version)
	if errors.Is(err, rotator.ErrConflict) {
		c.held.drop(app)
		return appDoc{}, &opError{op: op, path: path, kinds: []error{rotator.ErrFenced}, cause: errors.New("the app's state changed under the lease (taken over)")}
	}
	if err != nil {
		return appDoc{}, err
	}
	d.version = v
	c.held.put(app, d)
	return d, nil
}

// acquireApp takes app's lease: one check-and-set write creating the
// document when none exists, else a read and a write that keeps the open
// journal.
func (c *Client) acquireApp(ctx context.Context, name, app, holder string, ttl time.Duration) (rotator.Lease, error) {
	const op = "acquire lock"
	rel := c.journalRel(app)
	path := c.dataPath(rel)
	now := c.now()
	d := appDoc{holder: holder, fence: now.UnixMicro(), expiresAt: now.Add(ttl), ttl: ttl}
	v, err := c.writeKV(ctx, op, rel, d.data(fieldLockAcquiredAt, now), 0)
	if err == nil {
		d.version = v
		c.held.put(app, d)
		return d.lease(name), nil
	}
	if !errors.Is(err, rotator.ErrConflict) {
		return rotator.Lease{}, err
	}
	cur, _, err := c.readDoc(ctx, op, app)
	if err != nil {
		return rotator.Lease{}, err
	}
	if cur.live(now) {
		return rotator.Lease{}, &opError{op: op, path: path, kinds: []error{rotator.ErrLocked},
			cause: fmt.Errorf("held by %s until %s", cur.holder, cur.expiresAt.UTC().Format(time.RFC3339Nano))}
	}
	d.version, d.state, d.pending = cur.version, cur.state, cur.pending
	if d.fence <= cur.fence {
		d.fence = cur.fence + 1
	}
	v, err = c.writeKV(ctx, op, rel, d.data(fieldLockAcquiredAt, now), cur.version)
	if errors.Is(err, rotator.ErrConflict) {
		return rotator.Lease{}, &opError{op: op, path: path, kinds: []error{rotator.ErrLocked}, cause: errors.New("another holder won the race")}
	}
	if err != nil {
		return rotator.Lease{}, err
	}
	d.version = v
	c.held.put(app, d)
	if cur.holder != "" {
		c.log.Info("vault: took over expired lease", zap.String(logKeyLock, name), zap.String("previous_holder", cur.holder), zap.Int64(logKeyFence, d.fence))
	}
	return d.lease(name), nil
}

func (c *Client) renewApp(ctx context.Context, app string, l rotator.Lease, ttl time.Duration) (rotator.Lease, error) {
	const op = "renew lock"
	d, err := c.heldDoc(ctx, op, app, l)
	if err != nil {
		return l, err
	}
	now := c.now()
	d.expiresAt, d.ttl = now.Add(ttl), ttl
	if _, err := c.writeHeld(ctx, op, app, d, fieldLockRenewedAt); err != nil {
		return l, err
	}
	l.ExpiresAt = d.expiresAt
	return l, nil
}

func (c *Client) releaseApp(ctx context.Context, app string, l rotator.Lease) error {
	const op = "release lock"
	d, err := c.heldDoc(ctx, op, app, l)
	if err != nil {
		return err
	}
	if d.state == "" && d.expiresAt.Sub(c.now()) > releaseMargin(d.ttl) {
		// No journal: the document has nothing left to say.
		err := c.deleteMeta(ctx, op, c.journalRel(app))
		c.held.drop(app)
		if errors.Is(err, rotator.ErrNotFound) {
			return nil
		}
		return err
	}
	d.holder = ""
	_, err = c.writeHeld(ctx, op, app, d, fieldLockReleasedAt)
	c.held.drop(app)
	return err
}

func (c *Client) checkApp(ctx context.Context, app string, l rotator.Lease) error {
	const op = "check lock"
	d, err := c.heldDoc(ctx, op, app, l)
	if err != nil {
		return err
	}
	if !c.now().Before(d.expiresAt) {
		return &opError{op: op, path: c.dataPath(c.journalRel(app)), kinds: []error{rotator.ErrFenced},
			cause: fmt.Errorf("lease expired at %s", d.expiresAt.UTC().Format(time.RFC3339Nano))}
	}
	return nil
}

// encodeJournal renders e for the document: the entry as JSON with its
// secrets redacted, and the pending secret on its own.
func encodeJournal(e rotator.JournalEntry) (state, pending string, err error) {
	// No HTML escaping: the field is read by people in the Vault UI, and
	// "<redacted>" should read as such.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return "", "", err
	}
	return strings.TrimSpace(b.String()), e.Pending.Secret.Reveal(), nil
}

func (c *Client) loadApp(ctx context.Context, app string) (rotator.JournalEntry, int, error) {
	const op = "load journal"
	path := c.dataPath(c.journalRel(app))
	d, ok := c.held.get(app)
	if !ok {
		var exists bool
		var err error
		if d, exists, err = c.readDoc(ctx, op, app); err != nil {
			return rotator.JournalEntry{}, 0, err
		}
		if !exists {
			return rotator.JournalEntry{}, 0, newOpError(op, path, rotator.ErrNotFound)
		}
	}
	if d.state == "" {
		return rotator.JournalEntry{}, 0, newOpError(op, path, rotator.ErrNotFound)
	}
	e, err := decodeJournal(d.state)
	if err != nil {
		return rotator.JournalEntry{}, 0, fmt.Errorf("vault: %s %s: %w", op, path, err)
	}
	e.Pending.Secret = rotator.NewSecret(d.pending)
	return e, d.version, nil
}

// saveApp writes app's journal into its document. Under a lease the write
// is check-and-set on the document this Client holds (the lease check);
// cas then only says whether a journal may already exist (0: it must not).
// Without a lease, cas is the document version the caller loaded.
func (c *Client) saveApp(ctx context.Context, app string, e rotator.JournalEntry, cas int, lease *rotator.Lease) (int, error) {
	const op = "save journal"
	path := c.dataPath(c.journalRel(app))
	state, pending, err := encodeJournal(e)
	if err != nil {
		return 0, fmt.Errorf("vault: %s %s: %w", op, path, err)
	}
	if lease, err = c.foreignLease(ctx, op, app, lease); err != nil {
		return 0, err
	}
	if lease != nil {
		if err := c.checkApp(ctx, app, *lease); err != nil {
			return 0, wrapErr(op, path, err)
		}
		d, err := c.heldDoc(ctx, op, app, *lease)
		if err != nil {
			return 0, err
		}
		if cas == 0 && d.state != "" {
			return 0, &opError{op: op, path: path, kinds: []error{rotator.ErrConflict}, cause: errors.New("a journal is already open")}
		}
		d.state, d.pending = state, pending
		d, err = c.writeHeld(ctx, op, app, d, "")
		if err != nil {
			return 0, err
		}
		return d.version, nil
	}
	cur, exists, err := c.readDoc(ctx, op, app)
	if err != nil {
		return 0, err
	}
	if (cas == 0 && cur.state != "") || (cas != 0 && (!exists || cas != cur.version)) {
		return 0, &opError{op: op, path: path, kinds: []error{rotator.ErrConflict}, cause: fmt.Errorf("expected version %d, current is %d", cas, cur.version)}
	}
	cur.state, cur.pending = state, pending
	v, err := c.writeKV(ctx, op, c.journalRel(app), cur.data("", time.Time{}), cur.version)
	if err != nil {
		return 0, err
	}
	return v, nil
}

// foreignLease checks a lease that is not app's own lease (held at another
// path) and returns nil for it, so the caller writes check-and-set on the
// document version alone; app's own lease is returned as is.
func (c *Client) foreignLease(ctx context.Context, op, app string, lease *rotator.Lease) (*rotator.Lease, error) {
	if lease == nil {
		return nil, nil
	}
	if a, ok := appOfLock(lease.Name); ok && a == app {
		return lease, nil
	}
	if err := c.Check(ctx, *lease); err != nil {
		return nil, wrapErr(op, c.dataPath(c.journalRel(app)), err)
	}
	return nil, nil
}

// clearApp closes app's journal. Under a lease it is one write of the
// document without the journal (the release that follows deletes it);
// without one, a document with no live lease is deleted.
func (c *Client) clearApp(ctx context.Context, app string, lease *rotator.Lease) error {
	const op = "clear journal"
	path := c.dataPath(c.journalRel(app))
	lease, err := c.foreignLease(ctx, op, app, lease)
	if err != nil {
		return err
	}
	if lease != nil {
		if err := c.checkApp(ctx, app, *lease); err != nil {
			return wrapErr(op, path, err)
		}
		d, err := c.heldDoc(ctx, op, app, *lease)
		if err != nil {
			return err
		}
		if d.state == "" {
			return nil
		}
		d.state, d.pending = "", ""
		_, err = c.writeHeld(ctx, op, app, d, "")
		return err
	}
	cur, exists, err := c.readDoc(ctx, op, app)
	if err != nil || !exists {
		return err
	}
	if cur.live(c.now()) {
		cur.state, cur.pending = "", ""
		_, err := c.writeKV(ctx, op, c.journalRel(app), cur.data("", time.Time{}), cur.version)
		return err
	}
	err = c.deleteMeta(ctx, op, c.journalRel(app))
	if errors.Is(err, rotator.ErrNotFound) {
		return nil
	}
	return err
}

// ClearAndRelease implements rotator.LeaseJournal: it closes app's
// journal and gives back lease l in one request — the delete of the app's
// document — while l has releaseMargin left; otherwise it clears and
// releases with check-and-set writes.
func (c *Client) ClearAndRelease(ctx context.Context, app string, l rotator.Lease) error {
	const op = "clear journal and release lock"
	if name, ok := appOfLock(l.Name); !ok || name != app {
		if err := c.Clear(ctx, app, &l); err != nil {
			return err
		}
		return c.Release(ctx, l)
	}
	d, err := c.heldDoc(ctx, op, app, l)
	if err != nil {
		return err
	}
	if d.expiresAt.Sub(c.now()) > releaseMargin(d.ttl) {
		err := c.deleteMeta(ctx, op, c.journalRel(app))
		c.held.drop(app)
		if errors.Is(err, rotator.ErrNotFound) {
			return nil
		}
		return err
	}
	if err := c.clearApp(ctx, app, &l); err != nil {
		return err
	}
	return c.releaseApp(ctx, app, l)
}

var _ rotator.LeaseJournal = (*Client)(nil)
