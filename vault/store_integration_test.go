//go:build integration

package vault

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

func TestCredentialStoreOnRealVault(t *testing.T) {
	srv := vaulttest.Start(t)
	c := rootClient(t, srv)
	ctx := t.Context()

	t.Run("a new path is written with cas 0, marked managed and read back", func(t *testing.T) {
		in := creds("key1", "s3cret-one")
		v, err := c.WriteCredentials(ctx, "secret/data/salesforce/billing", in, rotator.WriteOptions{CAS: 0, RotationID: "rot-1"})
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		if v != 1 {
			t.Fatalf("got version %d, want 1", v)
		}
		got, meta, err := c.ReadCredentials(ctx, "salesforce/billing")
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if got.Current.Key != "key1" || got.Current.Secret.Reveal() != "s3cret-one" || got.TokenURL != in.TokenURL ||
			!got.RotatedAt.Equal(in.RotatedAt) || got.RotationID != in.RotationID || !got.Previous.IsZero() || !got.PreviousValidUntil.IsZero() {
			t.Fatalf("got %+v, want %+v", got, in)
		}
		if meta.Version != 1 || !meta.Managed || len(meta.Custom) != 1 || meta.UpdatedAt.IsZero() {
			t.Fatalf("got meta %+v", meta)
		}
		for k, val := range meta.Custom {
			if strings.Contains(val, "s3cret") {
				t.Fatalf("custom_metadata %s holds the secret", k)
			}
		}
		m, err := c.readMeta(ctx, "test", "salesforce/billing")
		if err != nil {
			t.Fatal(err)
		}
		if m.maxVersions != DefaultMaxVersions {
			t.Fatalf("got max_versions %d, want %d", m.maxVersions, DefaultMaxVersions)
		}
	})

	t.Run("a write the caller vouches for is still check-and-set", func(t *testing.T) {
		// Managed: the caller read version 1 with the marker; a stale CAS
		// must still fail, and nothing is written.
		_, err := c.WriteCredentials(ctx, "salesforce/billing", creds("keyX", "s3cret-x"), rotator.WriteOptions{CAS: 7, Managed: true, RotationID: "rot-x"})
		if !errors.Is(err, rotator.ErrConflict) {
			t.Fatalf("stale cas with Managed: got %v, want ErrConflict", err)
		}
		got, meta, err := c.ReadCredentials(ctx, "salesforce/billing")
		if err != nil || got.Current.Key != "key1" || meta.Version != 1 {
			t.Fatalf("after the refused write: %+v %+v %v", got, meta, err)
		}
	})

	t.Run("the previous pair and its validity round-trip", func(t *testing.T) {
		in := creds("key2", "s3cret-two")
		in.Previous = rotator.Credentials{Key: "key1", Secret: rotator.NewSecret("s3cret-one")}
		in.PreviousValidUntil = time.Date(2026, 12, 26, 0, 0, 0, 0, time.UTC)
		v, err := c.WriteCredentials(ctx, "salesforce/billing", in, rotator.WriteOptions{CAS: 1, RotationID: "rot-2"})
		if err != nil || v != 2 {
			t.Fatalf("write: v=%d err=%v", v, err)
		}
		got, _, err := c.ReadCredentials(ctx, "salesforce/billing")
		if err != nil {
			t.Fatal(err)
		}
		if got.Previous.Key != "key1" || got.Previous.Secret.Reveal() != "s3cret-one" || !got.PreviousValidUntil.Equal(in.PreviousValidUntil) {
			t.Fatalf("got %+v", got)
		}
		raw, err := srv.Client(t).KVv2("secret").Get(ctx, "salesforce/billing")
		if err != nil {
			t.Fatal(err)
		}
		if raw.Data[FieldPreviousValidUntil] != "2026-12-26T00:00:00Z" {
			t.Fatalf("got previous_valid_until %v, want 2026-12-26T00:00:00Z", raw.Data[FieldPreviousValidUntil])
		}
	})

	t.Run("a stale cas fails with ErrConflict", func(t *testing.T) {
		_, err := c.WriteCredentials(ctx, "salesforce/billing", creds("k", "s"), rotator.WriteOptions{CAS: 1})
		wantIs(t, err, rotator.ErrConflict)
	})

	t.Run("a missing path reads as ErrNotFound", func(t *testing.T) {
		_, _, err := c.ReadCredentials(ctx, "salesforce/nope")
		wantIs(t, err, rotator.ErrNotFound)
		_, err = c.History(ctx, "salesforce/nope")
		wantIs(t, err, rotator.ErrNotFound)
	})

	t.Run("a path without the marker is refused unless adopted", func(t *testing.T) {
		raw := srv.Client(t)
		if _, err := raw.KVv2("secret").Put(ctx, "salesforce/legacy", map[string]any{"consumer_key": "hand", "consumer_secret": "made"}); err != nil {
			t.Fatal(err)
		}
		_, err := c.WriteCredentials(ctx, "salesforce/legacy", creds("k", "s"), rotator.WriteOptions{CAS: 1})
		wantIs(t, err, rotator.ErrNotManaged)
		_, meta, err := c.ReadCredentials(ctx, "salesforce/legacy")
		if err != nil || meta.Managed {
			t.Fatalf("got managed=%v err=%v, want an unmanaged readable path", meta.Managed, err)
		}
		v, err := c.WriteCredentials(ctx, "salesforce/legacy", creds("k", "s"), rotator.WriteOptions{CAS: 1, Adopt: true})
		if err != nil || v != 2 {
			t.Fatalf("adopt: v=%d err=%v", v, err)
		}
		_, meta, err = c.ReadCredentials(ctx, "salesforce/legacy")
		if err != nil || !meta.Managed || meta.Custom[MetaAdoptedAt] == "" {
			t.Fatalf("after adopt got %+v err=%v", meta, err)
		}
	})

	t.Run("history lists versions oldest first and marks deleted ones", func(t *testing.T) {
		if err := srv.Client(t).KVv2("secret").DeleteVersions(ctx, "salesforce/billing", []int{1}); err != nil {
			t.Fatal(err)
		}
		h, err := c.History(ctx, "salesforce/billing")
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || h[0].Version != 1 || !h[0].Deleted || h[1].Version != 2 || h[1].Deleted || h[1].CreatedAt.IsZero() {
			t.Fatalf("got history %+v", h)
		}
	})
}

func TestTwoWritersRaceOnOnePathOneWins(t *testing.T) {
	srv := vaulttest.Start(t)
	a, b := rootClient(t, srv), rootClient(t, srv)
	ctx := t.Context()
	if _, err := a.WriteCredentials(ctx, "salesforce/race", creds("k0", "s0"), rotator.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 20; round++ {
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, c := range []*Client{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = c.WriteCredentials(ctx, "salesforce/race", creds("k", "s"), rotator.WriteOptions{CAS: round})
			}()
		}
		close(start)
		wg.Wait()
		wins, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, rotator.ErrConflict):
				conflicts++
			default:
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if wins != 1 || conflicts != 1 {
			t.Fatalf("round %d: got %d winners and %d conflicts, want 1 and 1", round, wins, conflicts)
		}
	}
	_, meta, err := a.ReadCredentials(ctx, "salesforce/race")
	if err != nil || meta.Version != 21 {
		t.Fatalf("got version %d err=%v, want 21", meta.Version, err)
	}
}

func TestJournalOnRealVault(t *testing.T) {
	srv := vaulttest.Start(t)
	c := rootClient(t, srv)
	ctx := t.Context()
	prior := true
	e := rotator.JournalEntry{
		RotationID:        "rot-9",
		App:               "billing",
		Step:              rotator.StepStage,
		Done:              true,
		AppID:             "0xA",
		ConsumerID:        "0xC",
		StagedID:          "0xS",
		Pending:           rotator.Credentials{Key: "newkey", Secret: rotator.NewSecret("pending-s3cret")},
		BaseVersion:       3,
		PriorSecretAccess: &prior,
		Attempts:          2,
		LastError:         "boom",
		Actor:             rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice", Reason: "incident"},
		StartedAt:         time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC),
		UpdatedAt:         time.Date(2026, 11, 26, 1, 1, 0, 0, time.UTC),
		Extra:             map[string]string{"a": "b"},
	}

	if _, _, err := c.Load(ctx, "billing"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("load before save: got %v, want ErrNotFound", err)
	}
	v, err := c.Save(ctx, "billing", e, 0, nil)
	if err != nil || v != 1 {
		t.Fatalf("save: v=%d err=%v", v, err)
	}
	got, gv, err := c.Load(ctx, "billing")
	if err != nil || gv != 1 {
		t.Fatalf("load: v=%d err=%v", gv, err)
	}
	if got.Pending.Secret.Reveal() != "pending-s3cret" || got.Pending.Key != "newkey" || got.RotationID != e.RotationID ||
		got.Step != e.Step || !got.Done || got.StagedID != "0xS" || got.PriorSecretAccess == nil || !*got.PriorSecretAccess ||
		got.Actor != e.Actor || !got.StartedAt.Equal(e.StartedAt) || got.Extra["a"] != "b" || got.BaseVersion != 3 || got.Attempts != 2 {
		t.Fatalf("got %+v, want %+v", got, e)
	}

	raw, err := srv.Client(t).KVv2("secret").Get(ctx, DefaultStatePrefix+"/billing")
	if err != nil {
		t.Fatal(err)
	}
	if state, _ := raw.Data[fieldJournalState].(string); strings.Contains(state, "pending-s3cret") || !strings.Contains(state, "<redacted>") {
		t.Fatalf("state field must carry the entry with the secret redacted, got %s", state)
	}

	_, err = c.Save(ctx, "billing", e, 0, nil)
	wantIs(t, err, rotator.ErrConflict)
	if v, err = c.Save(ctx, "billing", e, 1, nil); err != nil || v != 2 {
		t.Fatalf("save v2: v=%d err=%v", v, err)
	}

	if err := c.Clear(ctx, "billing", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load(ctx, "billing"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("load after clear: got %v, want ErrNotFound", err)
	}
	if err := c.Clear(ctx, "billing", nil); err != nil {
		t.Fatalf("clearing twice: %v", err)
	}
	if v, err = c.Save(ctx, "billing", e, 0, nil); err != nil || v != 1 {
		t.Fatalf("save after clear starts again at version 1: v=%d err=%v", v, err)
	}
}
