//go:build integration

package vault

import (
	"errors"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// An app's lease ("app/<app>") and its journal live in one document at the
// app's state path: the journal save is the lease check, a takeover fences
// the stale holder's next save, and the document disappears (with every
// version and the pending secret they held) when a run ends.
func TestAppLeaseAndJournalShareOneDocument(t *testing.T) {
	srv := vaulttest.Start(t)
	clock := rotatortest.NewClock(time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC))
	a := rootClient(t, srv, func(o *Options) { o.Now = clock.Now })
	b := rootClient(t, srv, func(o *Options) { o.Now = clock.Now })
	ctx := t.Context()
	pending := rotator.JournalEntry{RotationID: "r1", App: "billing", Step: rotator.StepPersist, Done: true,
		Pending: rotator.Credentials{Key: "k2", Secret: rotator.NewSecret("s3cret-two")}}

	la, err := a.Acquire(ctx, "app/billing", "replica-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Load(ctx, "billing"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("load before any journal: %v, want ErrNotFound", err)
	}
	if _, err := b.Acquire(ctx, "app/billing", "replica-b", time.Minute); !errors.Is(err, rotator.ErrLocked) {
		t.Fatalf("second acquire: %v, want ErrLocked", err)
	}
	if _, err := a.Save(ctx, "billing", pending, 0, &la); err != nil {
		t.Fatalf("save under the lease: %v", err)
	}
	if _, err := a.Save(ctx, "billing", pending, 0, &la); !errors.Is(err, rotator.ErrConflict) {
		t.Fatalf("creating a journal twice: %v, want ErrConflict", err)
	}
	// Another client reads the document from Vault: journal and lease.
	got, _, err := b.Load(ctx, "billing")
	if err != nil || got.RotationID != "r1" || got.Pending.Secret.Reveal() != "s3cret-two" {
		t.Fatalf("load by another client: %+v %v", got, err)
	}
	if err := b.Check(ctx, la); err != nil {
		t.Fatalf("another client checks the live lease: %v", err)
	}
	if open, err := b.OpenJournals(ctx); err != nil || !open["billing"] {
		t.Fatalf("open journals %v %v, want billing", open, err)
	}

	// a pauses past its lease; b takes the app over and keeps the journal.
	clock.Advance(2 * time.Minute)
	lb, err := b.Acquire(ctx, "app/billing", "replica-b", time.Minute)
	if err != nil {
		t.Fatalf("takeover: %v", err)
	}
	if lb.Fence <= la.Fence {
		t.Fatalf("fence %d after %d, want it to grow", lb.Fence, la.Fence)
	}
	if got, _, err := b.Load(ctx, "billing"); err != nil || got.Pending.Key != "k2" {
		t.Fatalf("journal after takeover: %+v %v", got, err)
	}
	wantIs(t, a.Check(ctx, la), rotator.ErrFenced)
	clock.Advance(-time.Minute) // even with a clock that still believes in a's lease:
	if _, err := a.Save(ctx, "billing", pending, 1, &la); !errors.Is(err, rotator.ErrFenced) {
		t.Fatalf("stale holder's save: %v, want ErrFenced", err)
	}
	if _, err := a.Renew(ctx, la, time.Minute); !errors.Is(err, rotator.ErrFenced) {
		t.Fatalf("stale holder's renew: %v, want ErrFenced", err)
	}
	clock.Advance(time.Minute)

	// A release with the journal open keeps it for the next attempt.
	if err := b.Release(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if open, _ := a.OpenJournals(ctx); !open["billing"] {
		t.Fatal("a released lease with an open journal must stay listed")
	}
	lc, err := a.Acquire(ctx, "app/billing", "replica-a", time.Minute)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if got, _, err := a.Load(ctx, "billing"); err != nil || got.RotationID != "r1" {
		t.Fatalf("journal after re-acquire: %+v %v", got, err)
	}

	// The end of a run: one delete of the document, every version gone.
	if err := a.ClearAndRelease(ctx, "billing", lc); err != nil {
		t.Fatal(err)
	}
	if _, err := a.readMeta(ctx, "test", a.journalRel("billing")); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("document metadata after the end of the run: %v, want ErrNotFound (versions with the pending secret destroyed)", err)
	}
	if open, _ := a.OpenJournals(ctx); open["billing"] {
		t.Fatal("a finished app must not be listed as open")
	}
	clock.Advance(time.Second) // the token is the acquisition time: it grows with the clock
	ld, err := b.Acquire(ctx, "app/billing", "replica-b", time.Minute)
	if err != nil {
		t.Fatalf("acquire of a free app: %v", err)
	}
	if ld.Fence <= lc.Fence {
		t.Fatalf("fence %d after the document was deleted, want it above %d", ld.Fence, lc.Fence)
	}
	// A release with no journal deletes the document too.
	if err := b.Release(ctx, ld); err != nil {
		t.Fatal(err)
	}
	if _, err := a.readMeta(ctx, "test", a.journalRel("billing")); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("after a release without journal: %v, want no document", err)
	}
}

// Near the end of the lease a release does not delete (a successor could
// be taking over on a clock a little ahead): it writes the document free
// with check-and-set instead.
func TestReleaseNearExpiryDoesNotDelete(t *testing.T) {
	srv := vaulttest.Start(t)
	clock := rotatortest.NewClock(time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC))
	a := rootClient(t, srv, func(o *Options) { o.Now = clock.Now })
	ctx := t.Context()
	l, err := a.Acquire(ctx, "app/payroll", "replica-a", 40*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(35 * time.Second) // 5 s left, under the 10 s margin
	if err := a.ClearAndRelease(ctx, "payroll", l); err != nil {
		t.Fatal(err)
	}
	d, exists, err := a.readDoc(ctx, "test", "payroll")
	if err != nil || !exists || d.holder != "" || d.state != "" {
		t.Fatalf("document after a late release: %+v exists=%v err=%v, want a free document", d, exists, err)
	}
	if _, err := a.Acquire(ctx, "app/payroll", "replica-b", time.Minute); err != nil {
		t.Fatalf("acquire after a late release: %v", err)
	}
}

// A lease taken on the real clock is recognised by another client: its
// fencing token survives Vault's JSON numbers (float64) exactly.
func TestAppLeaseTokenRoundTripsThroughVault(t *testing.T) {
	srv := vaulttest.Start(t)
	a, b := rootClient(t, srv), rootClient(t, srv)
	l, err := a.Acquire(t.Context(), "app/support", "replica-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(t.Context(), l); err != nil {
		t.Fatalf("another client checks a live lease (fence %d): %v", l.Fence, err)
	}
}
