package rotator_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// turns runs worker goroutines one at a time and picks, with a seeded
// source, which parked worker goes next. Workers park before every call to
// a shared fake (the ledger and journals, the leases, the Dev Hub), so a
// seed names one interleaving of those calls, reproducibly.
type turns struct {
	rng    *rand.Rand
	park   chan int
	done   chan int
	wake   []chan struct{}
	trace  []int
	budget int // turns before the run is declared stuck
}

func newTurns(seed uint64, workers int) *turns {
	t := &turns{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), park: make(chan int), done: make(chan int), budget: 20000}
	for range workers {
		t.wake = append(t.wake, make(chan struct{}))
	}
	return t
}

// yield parks worker id until the scheduler picks it.
func (t *turns) yield(id int) {
	t.park <- id
	<-t.wake[id]
}

// run lets every worker go and schedules them until all are done; it
// reports false when the budget ran out (a livelock).
func (t *turns) run(workers int, work func(id int)) bool {
	for id := range workers {
		go func() {
			defer func() { t.done <- id }()
			t.yield(id)
			work(id)
		}()
	}
	live, parked := workers, map[int]bool{}
	for live > 0 {
		for len(parked) < live {
			select {
			case id := <-t.park:
				parked[id] = true
			case <-t.done:
				live--
			}
		}
		if live == 0 {
			break
		}
		if len(t.trace) >= t.budget {
			// Stuck: let everyone finish unscheduled so no goroutine leaks.
			for id := range parked {
				close(t.wake[id])
			}
			for live > 0 {
				select {
				case <-t.park:
				case <-t.done:
					live--
				}
			}
			return false
		}
		ids := make([]int, 0, len(parked))
		for id := range parked {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		pick := ids[t.rng.IntN(len(ids))]
		delete(parked, pick)
		t.trace = append(t.trace, pick)
		t.wake[pick] <- struct{}{}
	}
	return true
}

// yieldingIssuer parks before every Dev Hub call.
type yieldingIssuer struct {
	rotator.Issuer
	y func()
}

func (i yieldingIssuer) FindApp(ctx context.Context, n string) (rotator.AppRef, error) {
	i.y()
	return i.Issuer.FindApp(ctx, n)
}
func (i yieldingIssuer) Credentials(ctx context.Context, a, c string) (rotator.Credentials, error) {
	i.y()
	return i.Issuer.Credentials(ctx, a, c)
}
func (i yieldingIssuer) Staged(ctx context.Context, a, c string) ([]rotator.StagedCredential, error) {
	i.y()
	return i.Issuer.Staged(ctx, a, c)
}
func (i yieldingIssuer) Stage(ctx context.Context, a, c string) (rotator.StagedCredential, error) {
	i.y()
	return i.Issuer.Stage(ctx, a, c)
}
func (i yieldingIssuer) Promote(ctx context.Context, a, c, s string) (rotator.StagedCredential, error) {
	i.y()
	return i.Issuer.Promote(ctx, a, c, s)
}
func (i yieldingIssuer) SecretAccess(ctx context.Context) (bool, error) {
	i.y()
	return i.Issuer.SecretAccess(ctx)
}
func (i yieldingIssuer) SetSecretAccess(ctx context.Context, on bool) error {
	i.y()
	return i.Issuer.SetSecretAccess(ctx, on)
}

// yieldingJournal parks before every journal (and so ledger) call.
type yieldingJournal struct {
	rotator.Journal
	y func()
}

func (j yieldingJournal) Load(ctx context.Context, app string) (rotator.JournalEntry, int, error) {
	j.y()
	return j.Journal.Load(ctx, app)
}
func (j yieldingJournal) Save(ctx context.Context, app string, e rotator.JournalEntry, cas int, l *rotator.Lease) (int, error) {
	j.y()
	return j.Journal.Save(ctx, app, e, cas, l)
}

// yieldingLocker parks before every lease call.
type yieldingLocker struct {
	rotator.Locker
	y func()
}

func (l yieldingLocker) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (rotator.Lease, error) {
	l.y()
	return l.Locker.Acquire(ctx, name, holder, ttl)
}
func (l yieldingLocker) Check(ctx context.Context, lease rotator.Lease) error {
	l.y()
	return l.Locker.Check(ctx, lease)
}

// TestEveryAppOfADevHubProgressesUnderAnyInterleaving is the deterministic
// form of TestManyAppsOfOneDevHubRotatingAtOnce: five toggle-mode apps of
// one Dev Hub rotate at once, one replica each, and a seeded scheduler
// interleaves every ledger, journal, lease and Dev Hub call. For every seed
// each app ends rotated with no failed attempt recorded — meeting another
// rotation's opening or restore of the setting is waiting, never failing —
// nobody is orphaned, the setting ends off and nobody holds it.
func TestEveryAppOfADevHubProgressesUnderAnyInterleaving(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 40
	}
	for seed := range uint64(seeds) {
		w := rotatortest.NewWorld(1)
		apps := []rotator.App{w.App}
		for i := range 4 {
			app, _, _, _ := addApp(w, fmt.Sprintf("app%d", i))
			apps = append(apps, app)
		}
		sched := newTurns(seed, len(apps))
		waits := make([]int, len(apps))
		errs := make([]error, len(apps))
		ok := sched.run(len(apps), func(id int) {
			y := func() { sched.yield(id) }
			o := w.Options("replica-"+apps[id].Name, nil, nil)
			o.Issuers = map[string]rotator.Issuer{"hub": yieldingIssuer{w.Org, y}}
			o.Journal = yieldingJournal{w.Journal, y}
			o.Locker = yieldingLocker{w.Locker, y}
			e, err := rotator.NewEngine(o)
			if err != nil {
				errs[id] = err
				return
			}
			for range 50 {
				res, err := e.Rotate(context.Background(), apps[id], rotator.Request{Actor: operator})
				if err == nil && res.Outcome == rotator.OutcomeOK {
					errs[id] = nil
					return
				}
				errs[id] = err
				if !errors.Is(err, rotator.ErrLocked) {
					return // a real failure: reported below
				}
				waits[id]++
			}
		})
		if !ok {
			t.Fatalf("seed %d: no progress after %d turns (livelock)", seed, sched.budget)
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("seed %d: %s never finished after %d waits: %v", seed, apps[i].Name, waits[i], err)
			}
		}
		for _, app := range apps {
			if j, ok := w.Journal.Entry(app.Name); ok {
				t.Errorf("seed %d: %s left a journal at step %s (attempts %d, orphaned %v)", seed, app.Name, j.Step, j.Attempts, j.Orphaned)
			}
		}
		if n := w.Audit.Count(rotator.EventRotationFailed) + w.Audit.Count(rotator.EventRotationOrphaned); n != 0 {
			t.Errorf("seed %d: %d failed or orphaned attempts recorded; contention must not count", seed, n)
		}
		if w.Org.Access() {
			t.Errorf("seed %d: I5: secret access left on", seed)
		}
		if got := holders(t, newEngine(t, w, "x", nil)); len(got) != 0 {
			t.Errorf("seed %d: holders left: %v", seed, got)
		}
		if t.Failed() {
			t.Logf("seed %d trace: %s", seed, traceString(sched.trace))
			return
		}
	}
}

func traceString(tr []int) string {
	var b strings.Builder
	for _, id := range tr {
		fmt.Fprint(&b, id)
	}
	return b.String()
}
