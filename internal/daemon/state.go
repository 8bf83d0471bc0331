package daemon

import (
	"errors"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// appMemo is what the daemon remembers of one app between rotations, so
// that the read API answers from memory (issue 14): the start-up seed
// fills it from Vault, and every engine result (afterRotation, retire,
// revoke) keeps it current. It holds no secret: only the public consumer
// key, times, versions and the journal's public facts.
type appMemo struct {
	seeded             bool // the app's path was read at least once
	consumerKey        string
	rotatedAt          time.Time
	previousValidUntil time.Time
	rotationID         string
	vaultVersion       int
	journal            *journalView // nil: no open journal
}

// journalView is the part of a journal entry that status shows (never the
// pending pair).
type journalView struct {
	step        rotator.Step
	rotationID  string
	orphaned    bool
	lastError   string
	strategy    string
	strategyWhy string
}

func viewOf(j rotator.JournalEntry) *journalView {
	v := &journalView{step: j.Step, rotationID: j.RotationID, orphaned: j.Orphaned, lastError: j.LastError,
		strategy: j.Extra[rotator.ExtraStrategy], strategyWhy: j.Extra[rotator.ExtraStrategyWhy]}
	if j.Orphaned {
		v.lastError = j.Extra[rotator.ExtraOrphanReason]
	}
	return v
}

// entry turns the view back into the few journal fields KnownStrategy reads.
func (v *journalView) entry() *rotator.JournalEntry {
	if v == nil || v.strategy == "" {
		return nil
	}
	return &rotator.JournalEntry{Step: v.step, Extra: map[string]string{rotator.ExtraStrategy: v.strategy, rotator.ExtraStrategyWhy: v.strategyWhy}}
}

// memory is the daemon's per-app state, safe for concurrent use.
type memory struct {
	mu   sync.RWMutex
	apps map[string]*appMemo
}

func newMemory() *memory { return &memory{apps: map[string]*appMemo{}} }

func (m *memory) get(app string) (appMemo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, ok := m.apps[app]
	if !ok {
		return appMemo{}, false
	}
	return *a, true
}

func (m *memory) update(app string, fn func(*appMemo)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.apps[app]
	if !ok {
		a = &appMemo{}
		m.apps[app] = a
	}
	fn(a)
}

// stored records what the app's path holds (version 0: unknown, kept).
func (m *memory) stored(app string, st rotator.StoredCredentials, version int) {
	m.update(app, func(a *appMemo) {
		a.seeded = true
		a.consumerKey, a.rotatedAt, a.previousValidUntil, a.rotationID = st.Current.Key, st.RotatedAt, st.PreviousValidUntil, st.RotationID
		if version > 0 {
			a.vaultVersion = version
		}
	})
}

// absent records that the app's path does not exist yet.
func (m *memory) absent(app string) {
	m.update(app, func(a *appMemo) { a.seeded = true })
}

func (m *memory) journaled(app string, j *rotator.JournalEntry) {
	m.update(app, func(a *appMemo) {
		if j == nil {
			a.journal = nil
			return
		}
		a.journal = viewOf(*j)
	})
}

// result folds an engine result into the app's memory: a success closes
// the journal and names the new version; a failure leaves the journal open
// at the failed step with its error.
func (m *memory) result(app string, res rotator.Result, err error) {
	m.update(app, func(a *appMemo) {
		switch {
		case err == nil && res.Outcome == rotator.OutcomeOK:
			a.journal = nil
			if res.ConsumerKey != "" {
				a.consumerKey = res.ConsumerKey
			}
			if res.RotationID != "" {
				a.rotationID = res.RotationID
			}
			if res.VaultVersion > 0 {
				a.vaultVersion = res.VaultVersion
			}
		case err == nil:
			// Skipped: nothing changed.
		case errors.Is(err, rotator.ErrLocked), errors.Is(err, rotator.ErrBackoff):
			// Waiting is not a state change.
		default:
			v := &journalView{step: res.Step, rotationID: res.RotationID, orphaned: res.Orphaned || errors.Is(err, rotator.ErrOrphaned), lastError: err.Error()}
			if a.journal != nil {
				v.strategy, v.strategyWhy = a.journal.strategy, a.journal.strategyWhy
				if v.step == "" {
					v.step = a.journal.step
				}
			}
			a.journal = v
		}
	})
}

// retired records that the previous pair left the app's path.
func (m *memory) retired(app string) {
	m.update(app, func(a *appMemo) { a.previousValidUntil = time.Time{} })
}

// forget drops apps no longer configured.
func (m *memory) keep(names map[string]rotator.App) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for n := range m.apps {
		if _, ok := names[n]; !ok {
			delete(m.apps, n)
		}
	}
}
