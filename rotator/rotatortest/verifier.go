package rotatortest

import (
	"context"
	"fmt"
	"sync"

	"github.com/ecarotator/ecarotator/rotator"
)

// Verifier is a fake rotator.Verifier backed by an Org: a pair
// authenticates when the Org accepts it.
type Verifier struct {
	Org *Org

	mu           sync.Mutex
	unreachable  map[string]int
	misconfigure map[string]bool
	calls        int
}

// Misconfigure makes url answer like an org that cannot issue a
// client-credentials token for the app (no run-as user, not installed).
func (v *Verifier) Misconfigure(url string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.misconfigure == nil {
		v.misconfigure = map[string]bool{}
	}
	v.misconfigure[url] = true
}

var _ rotator.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier over o.
func NewVerifier(o *Org) *Verifier { return &Verifier{Org: o, unreachable: map[string]int{}} }

// Unreachable makes the next n requests to url fail with ErrUnreachable.
func (v *Verifier) Unreachable(url string, n int) {
	v.mu.Lock()
	v.unreachable[url] += n
	v.mu.Unlock()
}

// Verify implements rotator.Verifier.
func (v *Verifier) Verify(_ context.Context, url string, c rotator.Credentials) error {
	v.mu.Lock()
	v.calls++
	if v.unreachable[url] > 0 {
		v.unreachable[url]--
		v.mu.Unlock()
		return fmt.Errorf("fake verify %s: %w", url, rotator.ErrUnreachable)
	}
	mis := v.misconfigure[url]
	v.mu.Unlock()
	if mis {
		return fmt.Errorf("fake verify %s: invalid_grant: no client credentials user enabled: %w", url, rotator.ErrMisconfigured)
	}
	if v.Org.Accepts(c) {
		return nil
	}
	return fmt.Errorf("fake verify %s: invalid_client: %w", url, rotator.ErrRejected)
}

// Calls counts Verify calls.
func (v *Verifier) Calls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls
}
