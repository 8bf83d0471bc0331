package rotator

import (
	"maps"
	"sync"
)

// memo remembers, per key, the last value (and its Vault version) this
// engine read or wrote, so a later call can write against it without
// reading first. It only ever saves requests: whoever relies on it checks
// it with a check-and-set write (or a Salesforce answer) and forgets it
// when that fails. clone keeps the memo and a run from sharing maps.
type memo[T any] struct {
	mu    sync.Mutex
	m     map[string]memoSeen[T]
	clone func(T) T
}

type memoSeen[T any] struct {
	val T
	ver int
}

func (m *memo[T]) get(key string) (T, int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen, ok := m.m[key]
	if !ok {
		var zero T
		return zero, 0, false
	}
	return m.clone(seen.val), seen.ver, true
}

func (m *memo[T]) put(key string, val T, ver int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]memoSeen[T]{}
	}
	m.m[key] = memoSeen[T]{val: m.clone(val), ver: ver}
}

func (m *memo[T]) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
}

// cloneEntry copies e's Extra map (the only reference a cached ECA entry
// holds that a run could change).
func cloneEntry(e JournalEntry) JournalEntry {
	if e.Extra != nil {
		e.Extra = maps.Clone(e.Extra)
	}
	return e
}
