package rotator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultSettleWait bounds the wait for a late secret-access setting.
const DefaultSettleWait = 60 * time.Second

// Journal Extra keys of the gate handling (public facts only).
const (
	// ExtraOpenedEarly: toggle mode opened the setting during preflight
	// because Salesforce gated a read (usage, consumers, part=key).
	ExtraOpenedEarly = "opened_early"
	// ExtraSettling: the staged id whose secret the rotation waits for.
	ExtraSettling = "settling_staged_id"
	// ExtraSettledAfter: how long the setting took to apply (last wait).
	ExtraSettledAfter = "settled_after"
)

// settleDelay is the pause before poll attempt n (1-based): 250ms doubling
// to at most 4s.
func settleDelay(n int) time.Duration {
	d := 250 * time.Millisecond << min(n-1, 4)
	return min(d, 4*time.Second)
}

// ECACacheKey is the journal name under which an app's ECA identifiers
// (app id, consumer id, distribution state) are cached between rotations,
// in the app's state in Vault. App names cannot contain "/", so it never
// collides with an app's journal.
func ECACacheKey(app string) string { return "eca/" + app }

// Cache Extra keys.
const (
	cacheDeveloperName = "developer_name"
	cacheDistribution  = "distribution"
	// cacheReadsGated: the Dev Hub refused this app's reads while the
	// secret-access setting was off (strict orgs); a toggle-mode rotation
	// then opens the setting before its first read instead of after a
	// refused one.
	cacheReadsGated = "reads_gated"
)

// ecaCache is the cached lookup of one app, loaded once per run.
type ecaCache struct {
	entry  JournalEntry
	ver    int
	loaded bool
	hit    bool // the run uses the cached app id
	// distHit: the run's strategy came from the cached distribution state
	// (re-validated when Salesforce contradicts it).
	distHit bool
}

// loadCache reads the app's cached ECA identifiers (best effort: a
// failure only means a lookup).
func (e *Engine) loadCache(ctx context.Context, r *run) {
	if r.cache.loaded {
		return
	}
	r.cache.loaded = true
	if j, v, ok := e.ecaMemo.get(r.app.Name); ok {
		r.cache.entry, r.cache.ver = j, v
		return
	}
	j, v, err := e.o.Journal.Load(ctx, ECACacheKey(r.app.Name))
	switch {
	case errors.Is(err, ErrNotFound):
		e.ecaMemo.put(r.app.Name, JournalEntry{}, 0)
		return
	case err != nil:
		return
	}
	r.cache.entry, r.cache.ver = j, v
	e.ecaMemo.put(r.app.Name, j, v)
}

// saveCache records what the run resolved — the app id and consumer id
// (unless eca_id is pinned), and the distribution state strategy auto
// used — when it differs from the cache (best effort, fenced by the
// lease). Facts the run did not resolve keep their cached value when the
// cache is about the same ECA and app id.
func (e *Engine) saveCache(ctx context.Context, r *run) {
	c := r.cache.entry
	same := c.Extra[cacheDeveloperName] == r.app.ECA
	n := JournalEntry{App: ECACacheKey(r.app.Name), Step: StepPreflight, UpdatedAt: e.now(), Extra: map[string]string{cacheDeveloperName: r.app.ECA}}
	switch {
	case r.app.ECAID == "" && r.appRef.ID != "" && r.consumer.ID != "":
		n.AppID, n.ConsumerID = r.appRef.ID, r.consumer.ID
	case same:
		n.AppID, n.ConsumerID = c.AppID, c.ConsumerID
	}
	dist := r.strategy.Distribution
	if dist == "" {
		dist = r.appRef.Distribution
	}
	if dist == "" && same && c.AppID == n.AppID {
		dist = c.Extra[cacheDistribution]
	}
	gated := c.Extra[cacheReadsGated]
	if r.readsGated {
		gated = "true"
	}
	if dist != "" {
		n.Extra[cacheDistribution] = dist
	}
	if gated != "" {
		n.Extra[cacheReadsGated] = gated
	}
	if n.AppID == "" && dist == "" {
		return
	}
	if same && c.AppID == n.AppID && c.ConsumerID == n.ConsumerID && c.Extra[cacheDistribution] == dist && c.Extra[cacheReadsGated] == gated {
		return
	}
	v, err := e.o.Journal.Save(ctx, ECACacheKey(r.app.Name), n, r.cache.ver, &r.lease)
	if err != nil {
		e.ecaMemo.forget(r.app.Name)
		r.log.Warn("cache eca identifiers", zap.Error(err))
		return
	}
	r.cache.entry, r.cache.ver = n, v
	e.ecaMemo.put(r.app.Name, n, v)
	e.strat.put(r.app.Name, dist)
	r.log.Info("eca identifiers cached", zap.String("app_id", n.AppID), zap.String("consumer_id", n.ConsumerID), zap.String("distribution", dist))
}

// lookup resolves the ECA and lists its consumers. A cached app id is used
// first; when Salesforce no longer knows it (or the cached consumer is
// gone) the cache is ignored and the ECA looked up again — re-validation
// happens only on such a mismatch.
func (e *Engine) lookup(ctx context.Context, r *run) (AppRef, []Consumer, error) {
	ref, err := e.findApp(ctx, r)
	if err != nil {
		return AppRef{}, nil, err
	}
	if id := r.cache.entry.ConsumerID; r.cache.hit && id != "" && (r.app.ConsumerID == "" || r.app.ConsumerID == id) && (r.j.ConsumerID == "" || r.j.ConsumerID == id) {
		// The cached consumer is used as is and re-validated only on a
		// mismatch: the first call that names it (preflight's primary key
		// read) answers not found, and preflight looks it up again.
		return ref, []Consumer{{ID: id}}, nil
	}
	consumers, err := r.iss.Consumers(ctx, ref.ID)
	if err == nil && r.cache.hit && !hasConsumer(consumers, r.cache.entry.ConsumerID) {
		err = fmt.Errorf("cached consumer %s: %w", r.cache.entry.ConsumerID, ErrNotFound)
	}
	if err != nil && r.cache.hit && errors.Is(err, ErrNotFound) {
		r.log.Info("cached eca identifiers no longer match; looking the ECA up again", zap.Error(err))
		r.cache.hit, r.cache.entry = false, JournalEntry{}
		if r.cache.distHit {
			// The distribution state came from the same stale entry.
			r.cache.distHit, r.strategy.Distribution = false, ""
		}
		if ref, err = e.findApp(ctx, r); err != nil {
			return AppRef{}, nil, err
		}
		consumers, err = r.iss.Consumers(ctx, ref.ID)
	}
	if err != nil {
		return AppRef{}, nil, fmt.Errorf("list consumers of %s: %w", r.app.ECA, err)
	}
	return ref, consumers, nil
}

func hasConsumer(cs []Consumer, id string) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}

// findApp resolves the ECA: a pinned App.ECAID wins (no lookup), then the
// cache (unless lookup dropped it), else the issuer's lookup (usage, then
// SOQL). A journal that already names an app id must agree.
func (e *Engine) findApp(ctx context.Context, r *run) (AppRef, error) {
	var ref AppRef
	e.loadCache(ctx, r)
	c := r.cache.entry
	switch {
	case r.app.ECAID != "":
		ref = AppRef{ID: r.app.ECAID, DeveloperName: r.app.ECA}
	case c.AppID != "" && c.Extra[cacheDeveloperName] == r.app.ECA && (r.j.AppID == "" || r.j.AppID == c.AppID):
		ref = AppRef{ID: c.AppID, DeveloperName: r.app.ECA, Distribution: c.Extra[cacheDistribution]}
		r.cache.hit = true
	default:
		var err error
		if ref, err = r.iss.FindApp(ctx, r.app.ECA); err != nil {
			return AppRef{}, fmt.Errorf("find eca %s: %w", r.app.ECA, err)
		}
	}
	if r.j.AppID != "" && r.j.AppID != ref.ID {
		return AppRef{}, fmt.Errorf("eca %s: app id changed from %s to %s during the rotation: %w", r.app.ECA, r.j.AppID, ref.ID, ErrConflict)
	}
	return ref, nil
}

// checkCurrentPair proves, before any mutation, that Vault's current pair
// gets a client-credentials token at every verify URL: the verify step
// after PATCH rotate will need exactly that. A refused pair is drift (the
// secret in Vault is not Salesforce's); an org that cannot issue a
// client-credentials token for the app at all (not installed, no run-as
// user, flow off) is a misconfiguration. Either way nothing is changed.
func (e *Engine) checkCurrentPair(ctx context.Context, r *run) error {
	for _, u := range r.app.VerifyURLs {
		err := e.o.Verifier.Verify(ctx, u, r.stored.Current)
		for attempt := 1; err != nil && errors.Is(err, ErrUnreachable) && attempt < 3; attempt++ {
			// Only a transient failure is retried: a refusal is an answer.
			_, wait := e.o.Backoff(attempt)
			if serr := e.sleep(ctx, r, wait); serr != nil {
				return serr
			}
			err = e.o.Verifier.Verify(ctx, u, r.stored.Current)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, ErrMisconfigured):
			return fmt.Errorf("preflight: misconfiguration: the current pair (key %s) cannot get a client-credentials token at %s; fix the app's client-credentials setup (run-as user, installation) in that org: %w", r.stored.Current.Key, u, err)
		case errors.Is(err, ErrRejected):
			details := map[string]string{"vault_key": r.stored.Current.Key, "token_url": u, "why": "current pair refused"}
			r.log.Error("drift detected: current pair refused", zap.String("token_url", u), zap.String(LogKeyKey, r.stored.Current.Key))
			if rerr := e.record(ctx, r, EventDriftDetected, StepPreflight, OutcomeDenied, nil, details); rerr != nil {
				return rerr
			}
			return fmt.Errorf("preflight: drift: Salesforce refuses Vault's current pair (key %s) at %s: %w: %w", r.stored.Current.Key, u, ErrDrift, err)
		default:
			return fmt.Errorf("preflight: check the current pair at %s: %w", u, err)
		}
	}
	return nil
}

// gateMayOpen reports whether a preflight failure is Salesforce gating a
// read behind the secret-access setting that toggle mode may open.
func (e *Engine) gateMayOpen(r *run, err error) bool {
	return r.app.SecretAccessMode == SecretAccessToggle && !r.accessHeld && errors.Is(err, ErrPermission) && !isAbort(err)
}

// gatedBefore reports whether a toggle-mode rotation that has not started
// should open the setting before its first read: the app's cache says the
// Dev Hub refused its reads last time. It saves the refused call.
func (e *Engine) gatedBefore(ctx context.Context, r *run) bool {
	if r.app.SecretAccessMode != SecretAccessToggle || r.accessHeld || r.jv != 0 {
		return false
	}
	e.loadCache(ctx, r)
	return r.cache.entry.Extra[cacheReadsGated] == "true"
}

// openEarly opens the setting during preflight. Without a journal it
// first writes one at step "lock" (rotation id, actor), so the prior value
// is journaled before the setting changes (I5) and every exit restores it.
func (e *Engine) openEarly(ctx context.Context, r *run, cause error) error {
	r.log.Info("a read is gated by the secret-access setting; opening it before preflight", zap.Error(cause))
	r.readsGated = true
	if r.jv == 0 {
		r.j = JournalEntry{RotationID: e.o.NewID(), App: r.app.Name, Step: StepLock, Done: true, Actor: r.actor, StartedAt: e.now()}
		r.res.RotationID = r.j.RotationID
		r.log = r.log.With(zap.String(LogKeyRotationID, r.j.RotationID))
	}
	r.setExtra(ExtraOpenedEarly, "true")
	// No journal write of its own: opening the setting journals the entry
	// (with the prior value) before the call, and when the setting is on
	// already nothing has changed that a resume would need to know.
	if err := e.openSecretAccess(ctx, r); err != nil {
		return err
	}
	return nil
}

// needsSettle reports whether the call relies on an opening of the
// setting (toggle mode, prior value off) that may not have applied yet:
// until verify is done something still needs a secret (the POST, the
// read-back), also when a failed verify is resumed after a restore.
func (r *run) needsSettle() bool {
	return r.app.SecretAccessMode == SecretAccessToggle && r.j.PriorSecretAccess != nil && !*r.j.PriorSecretAccess && !r.done(StepVerify)
}

// settlesInPreflight reports whether preflight reads the primary pair
// through the settle poll: the call opened (or joined) the setting before
// preflight (openEarly), so the poll's part=keyandsecret answer is the
// primary key read, and expose does not poll again.
func (r *run) settlesInPreflight() bool {
	return r.accessHeld && r.accessKnown && r.accessOn && r.needsSettle()
}

// settleSecretAccess waits, in toggle mode after the setting was opened by an
// opening (ours or a shared one), until Salesforce returns the primary
// secret: a setting can apply late, and a POST staged sent meanwhile would
// create an entry whose secret we never see. It returns the primary pair
// the successful poll read (zero when no wait was needed).
func (e *Engine) settleSecretAccess(ctx context.Context, r *run) (Credentials, error) {
	if !r.needsSettle() {
		return Credentials{}, nil
	}
	start, waited := e.now(), time.Duration(0)
	// A Dev Hub's setting applies after about the same delay each time:
	// sleep through the part of it known to be needed (measured from this
	// call's own opening), then poll in short steps. That is one or two
	// reads instead of a backoff ladder that overshoots.
	hint := e.settle.get(r.app.DevHub)
	if hint > 0 && !r.openedAt.IsZero() {
		if first := hint - e.now().Sub(r.openedAt); first > 0 {
			if err := e.settleSleep(ctx, r, first); err != nil {
				return Credentials{}, err
			}
			waited += first
		}
	}
	notYet := time.Duration(-1) // the longest time after the opening that was not enough (-1: none seen)
	for n := 1; ; n++ {
		pair, err := r.iss.Credentials(ctx, r.appRef.ID, r.consumer.ID)
		if err == nil {
			if !r.openedAt.IsZero() {
				e.settle.learn(r.app.DevHub, hint, notYet, e.now().Sub(r.openedAt))
			}
			if n > 1 || waited > 0 {
				r.log.Info("secret access setting applied", zap.Int("polls", n), zap.Duration("waited", waited))
				// Journaled by the next save (expose's, or begin's when
				// preflight settles).
				r.setExtra(ExtraSettledAfter, waited.String())
			}
			return pair, nil
		}
		if !errors.Is(err, ErrPermission) {
			return Credentials{}, fmt.Errorf("read credentials after opening secret access: %w", err)
		}
		if !r.openedAt.IsZero() {
			notYet = max(notYet, e.now().Sub(r.openedAt))
		}
		d := settleDelay(n)
		if hint > 0 {
			d = settleStep
		}
		if waited+d > e.o.SettleWait {
			return Credentials{}, fmt.Errorf("secret access opened %s ago but Salesforce still withholds the secret: %w: %w", e.now().Sub(start).Round(time.Millisecond), ErrSecretNotReturned, err)
		}
		r.log.Info("secret access not applied yet; waiting", zap.Int("poll", n), zap.Duration("wait", d))
		if err := e.settleSleep(ctx, r, d); err != nil {
			return Credentials{}, err
		}
		waited += d
	}
}

// settleStep is the poll interval once a Dev Hub's delay is known.
const settleStep = 250 * time.Millisecond

// settleHints remembers, per Dev Hub, how long after an opening its
// secret-access setting applies: every later opening sleeps that long and
// then polls once.
type settleHints struct {
	mu sync.Mutex
	m  map[string]settleHint
}

// settleHint is one Dev Hub's knowledge: at is when to poll (after the
// opening); floor is the longest time after an opening at which the
// setting was seen not yet applied (the delay is longer than that).
type settleHint struct {
	at, floor time.Duration
}

func (h *settleHints) get(devhub string) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[devhub].at
}

// learn records the outcome of one wait: hint is the time the call slept
// to, notYet the longest time after the opening at which the setting was
// still off (negative when the first poll succeeded), okAfter when the
// successful poll's answer came.
//
// After a "not yet" the delay lies between notYet and okAfter: the next
// opening polls at notYet+settleStep (or okAfter, if sooner), which is at
// most one settleStep past the delay. A first-poll success keeps that
// point; a hint above floor+settleStep (one learned from a slower ladder)
// shrinks toward it. So a steady delay settles in one poll every time,
// overshooting by less than settleStep, and a delay that grows costs one
// more poll once. A delay that shrinks below floor is not searched for:
// that would mean polling too early on purpose every so often.
func (h *settleHints) learn(devhub string, hint, notYet, okAfter time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]settleHint{}
	}
	cur := h.m[devhub]
	switch {
	case notYet >= 0:
		cur.floor = notYet
		cur.at = notYet + settleStep
		if okAfter > notYet && okAfter < cur.at {
			cur.at = okAfter
		}
	case hint > 0:
		cur.at = max(cur.floor+settleStep, hint*7/8)
		cur.at = min(cur.at, hint)
	default:
		return // applied at once: nothing to sleep through
	}
	h.m[devhub] = cur
}

// settleStaged waits for the secret of staged entry id (created by this
// rotation) to appear on GET staged, bounded. It persists the pair when it
// comes; otherwise it deletes the entry — never leaving a staged entry
// whose secret we do not hold — and fails with ErrSecretNotReturned. All
// of it is journaled (ExtraSettling names the entry while waiting).
func (e *Engine) settleStaged(ctx context.Context, r *run, id string) error {
	r.setExtra(ExtraSettling, id)
	r.setExtra(ExtraOp, "")
	if err := e.save(ctx, r); err != nil {
		return err
	}
	waited := time.Duration(0)
	for n := 1; ; n++ {
		list, err := r.iss.Staged(ctx, r.appRef.ID, r.consumer.ID)
		if err != nil {
			return fmt.Errorf("read staged slot: %w", err)
		}
		var found *StagedCredential
		for i := range list {
			if list[i].ID == id {
				found = &list[i]
			}
		}
		if found == nil {
			r.setExtra(ExtraSettling, "")
			if err := e.save(ctx, r); err != nil {
				return err
			}
			return fmt.Errorf("staged %s vanished while waiting for its secret: %w", id, ErrStagedLost)
		}
		if !found.Secret.IsZero() {
			r.setExtra(ExtraSettling, "")
			r.setExtra(ExtraSettledAfter, waited.String())
			r.log.Info("staged secret returned after the setting applied", zap.String("staged_id", id), zap.Duration("waited", waited))
			return e.persist(ctx, r, *found)
		}
		d := settleDelay(n)
		if waited+d > e.o.SettleWait {
			break
		}
		if err := e.settleSleep(ctx, r, d); err != nil {
			return err
		}
		waited += d
	}
	r.log.Warn("staged secret never returned; deleting the staged entry", zap.String("staged_id", id), zap.Duration("waited", waited))
	if err := e.deleteStaged(ctx, r, id); err != nil {
		return err
	}
	r.setExtra(ExtraSettling, "")
	if err := e.save(ctx, r); err != nil {
		return err
	}
	return fmt.Errorf("staged %s: no secret after waiting %s; entry deleted: %w", id, waited, ErrSecretNotReturned)
}

// settleSleep waits d on SettleSleep in slices of at most a third of the
// lease, renewing the lease only when the sleep would eat into its second
// half. SettleSleep runs on the wall clock, which the engine's Clock
// (possibly a test's fake) does not see, so the time slept since the last
// renewal is counted here and added to what the Clock says is used.
func (e *Engine) settleSleep(ctx context.Context, r *run, d time.Duration) error {
	for d > 0 {
		slice := min(d, e.o.LockTTL/3)
		if err := e.renewFor(ctx, r, slice); err != nil {
			return err
		}
		if err := e.o.SettleSleep(ctx, slice); err != nil {
			return err
		}
		r.sleptSinceRenew += slice
		d -= slice
	}
	return e.renewFor(ctx, r, 0)
}

// renewFor renews the app lease when, after sleeping ahead more, less than
// half of it would be left.
func (e *Engine) renewFor(ctx context.Context, r *run, ahead time.Duration) error {
	h := &r.appLease
	if !h.ok {
		return nil
	}
	left := h.l.ExpiresAt.Sub(e.now()) - r.sleptSinceRenew - ahead
	if left > e.o.LockTTL/2 {
		return nil
	}
	return e.renewNow(ctx, r)
}

// renewNow extends the app lease at once (when held).
func (e *Engine) renewNow(ctx context.Context, r *run) error {
	h := &r.appLease
	if !h.ok {
		return nil
	}
	start := e.now()
	l, err := e.o.Locker.Renew(ctx, h.l, e.o.LockTTL)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", h.l.Name, err)
	}
	h.l, r.lease, r.leaseUntil = l, l, start.Add(e.o.LockTTL)
	r.sleptSinceRenew = 0
	return nil
}
