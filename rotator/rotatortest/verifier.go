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

	mu          sync.Mutex
	unreachable map[string]int
	calls       int
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
	v.mu.Unlock()
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
