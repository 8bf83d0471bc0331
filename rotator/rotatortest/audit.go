package rotatortest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/ecarotator/ecarotator/rotator"
)

// Audit is a fake rotator.AuditLog that keeps events in memory and can be
// told to fail.
type Audit struct {
	mu     sync.Mutex
	events []rotator.Event
	// failAfter: when >= 0, Record fails once that many more events were
	// recorded.
	failAfter int
	failErr   error
}

var _ rotator.AuditLog = (*Audit)(nil)

// NewAudit returns an Audit that records everything.
func NewAudit() *Audit { return &Audit{failAfter: -1} }

// FailAfter makes Record fail with err after n more successful events.
func (a *Audit) FailAfter(n int, err error) {
	a.mu.Lock()
	a.failAfter, a.failErr = n, err
	a.mu.Unlock()
}

// Record implements rotator.AuditLog.
func (a *Audit) Record(_ context.Context, e rotator.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failAfter == 0 {
		return a.failErr
	}
	if a.failAfter > 0 {
		a.failAfter--
	}
	a.events = append(a.events, e)
	return nil
}

// Fingerprint implements rotator.AuditLog with a fixed HMAC key.
func (a *Audit) Fingerprint(s rotator.Secret) string {
	m := hmac.New(sha256.New, []byte("rotatortest-fingerprint-key"))
	m.Write([]byte(s.Reveal()))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:16]
}

// Events returns a copy of the recorded events.
func (a *Audit) Events() []rotator.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]rotator.Event(nil), a.events...)
}

// Types returns the recorded event types in order.
func (a *Audit) Types() []rotator.EventType {
	var out []rotator.EventType
	for _, e := range a.Events() {
		out = append(out, e.Type)
	}
	return out
}

// Count returns how many events of type t were recorded.
func (a *Audit) Count(t rotator.EventType) int {
	n := 0
	for _, e := range a.Events() {
		if e.Type == t {
			n++
		}
	}
	return n
}

// JSON returns every event marshalled, for leak checks.
func (a *Audit) JSON() string {
	b, _ := json.Marshal(a.Events())
	return string(b)
}
