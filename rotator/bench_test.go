package rotator_test

import (
	"context"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// BenchmarkRotateFakes measures one full rotation (toggle secret access, stage,
// persist, promote, verify, commit, finish) on the in-memory fakes: the
// engine's own overhead, a baseline for later changes.
func BenchmarkRotateFakes(b *testing.B) {
	w := rotatortest.NewWorld(1)
	e := newEngine(b, w, "bench", nil)
	ctx := context.Background()
	req := rotator.Request{Actor: rotator.Actor{Kind: rotator.ActorScheduler}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Rotate(ctx, w.App, req); err != nil {
			b.Fatal(err)
		}
		// Each rotation deletes the previous Rotated slot before staging;
		// nothing else accumulates except store versions.
	}
}
