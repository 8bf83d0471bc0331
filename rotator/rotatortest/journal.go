package rotatortest

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/ecarotator/ecarotator/rotator"
)

// Journal is a fake rotator.Journal with check-and-set versions and lease
// fencing. It keeps every saved entry so tests can check I2.
type Journal struct {
	Locker *Locker // fencing; nil disables the check

	mu      sync.Mutex
	entries map[string]journalRec
	saves   int
	history []rotator.JournalEntry
}

type journalRec struct {
	e rotator.JournalEntry
	v int
}

var _ rotator.Journal = (*Journal)(nil)

// NewJournal returns an empty journal fenced by l.
func NewJournal(l *Locker) *Journal {
	return &Journal{Locker: l, entries: map[string]journalRec{}}
}

func clone(e rotator.JournalEntry) rotator.JournalEntry {
	e.Extra = maps.Clone(e.Extra)
	if e.PriorSecretAccess != nil {
		v := *e.PriorSecretAccess
		e.PriorSecretAccess = &v
	}
	return e
}

// Load implements rotator.Journal.
func (j *Journal) Load(_ context.Context, app string) (rotator.JournalEntry, int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	r, ok := j.entries[app]
	if !ok {
		return rotator.JournalEntry{}, 0, fmt.Errorf("fake journal %s: %w", app, rotator.ErrNotFound)
	}
	return clone(r.e), r.v, nil
}

// Save implements rotator.Journal.
func (j *Journal) Save(ctx context.Context, app string, e rotator.JournalEntry, cas int, lease *rotator.Lease) (int, error) {
	if lease != nil && j.Locker != nil {
		if err := j.Locker.Check(ctx, *lease); err != nil {
			return 0, err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	cur := j.entries[app]
	if cur.v != cas {
		return 0, fmt.Errorf("fake journal %s: cas %d, have %d: %w", app, cas, cur.v, rotator.ErrConflict)
	}
	e = clone(e)
	j.entries[app] = journalRec{e: e, v: cur.v + 1}
	j.saves++
	j.history = append(j.history, clone(e))
	return cur.v + 1, nil
}

// Clear implements rotator.Journal.
func (j *Journal) Clear(ctx context.Context, app string, lease *rotator.Lease) error {
	if lease != nil && j.Locker != nil {
		if err := j.Locker.Check(ctx, *lease); err != nil {
			return err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.entries, app)
	return nil
}

// Entry returns the current entry of app.
func (j *Journal) Entry(app string) (rotator.JournalEntry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	r, ok := j.entries[app]
	return clone(r.e), ok
}

// Saves counts successful saves.
func (j *Journal) Saves() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.saves
}

// Holds reports whether the current entry of any app has c as its pending
// pair.
func (j *Journal) Holds(c rotator.Credentials) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range j.entries {
		if r.e.Pending.Key == c.Key && r.e.Pending.Secret.Equal(c.Secret) {
			return true
		}
	}
	return false
}
