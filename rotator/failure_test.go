package rotator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

func TestVerifyFailureKeepsVaultAndOrphansAfterNCycles(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.PropagationDelay = 3 * time.Hour // longer than VerifyTimeout: every cycle fails
	e := newEngine(t, w, "a", nil)
	before, beforeMeta := w.Store.Current(w.App.VaultPath)

	for cycle := 1; cycle <= 3; cycle++ {
		res, err := e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
		wantErr(t, err, rotator.ErrVerifyFailed)
		cur, meta := w.Store.Current(w.App.VaultPath)
		if meta.Version != beforeMeta.Version || cur.Current.Key != before.Current.Key {
			t.Fatalf("cycle %d: vault changed to version %d key %s", cycle, meta.Version, cur.Current.Key)
		}
		if !w.Org.Accepts(cur.Current) {
			t.Fatalf("cycle %d: I1 broken: vault's pair rejected", cycle)
		}
		if w.Org.Access() {
			t.Fatalf("cycle %d: I5 broken: secret access left on", cycle)
		}
		j, ok := w.Journal.Entry(w.App.Name)
		if !ok || j.Step != rotator.StepVerify || j.Done || j.Attempts != cycle {
			t.Fatalf("cycle %d: journal = %+v", cycle, j)
		}
		if res.Attempts != cycle || !res.NextAttemptAt.After(w.Clock.Now()) {
			t.Fatalf("cycle %d: result = %+v", cycle, res)
		}
		if cycle < 3 {
			if res.Orphaned {
				t.Fatalf("cycle %d: orphaned too early", cycle)
			}
			_, err := e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
			wantErr(t, err, rotator.ErrBackoff)
			w.Clock.Advance(res.NextAttemptAt.Sub(w.Clock.Now()))
		} else if !res.Orphaned || !j.Orphaned || j.Extra["orphan_reason"] == "" {
			t.Fatalf("cycle %d: not orphaned: %+v", cycle, j)
		}
	}
	if w.Audit.Count(rotator.EventRotationOrphaned) != 1 {
		t.Errorf("orphaned events = %d, want 1", w.Audit.Count(rotator.EventRotationOrphaned))
	}
	if got := w.Org.Count(rotatortest.OpStage); got != 1 {
		t.Errorf("POSTs across cycles = %d, want 1 (later cycles resume at verify)", got)
	}
	w.Clock.Advance(24 * time.Hour)
	calls := len(w.Org.Calls())
	_, err := e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrOrphaned)
	if len(w.Org.Calls()) != calls {
		t.Error("the engine touched Salesforce for an orphaned app")
	}

	// The operator clears it; propagation has long finished; the rotation
	// resumes at verify and completes.
	if err := e.ClearOrphan(context.Background(), w.App, operator); err != nil {
		t.Fatal(err)
	}
	res := rotate(t, e, w.App)
	if !res.Resumed {
		t.Error("rotation after ClearOrphan did not resume the journal")
	}
	checkInvariants(t, w, false)
	if got := w.Org.Count(rotatortest.OpStage); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
}

func TestVerifyRetriesThroughPropagationDelay(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.PropagationDelay = 2 * time.Minute
	w.App.VerifyURLs = append(w.App.VerifyURLs, "https://subscriber.my.salesforce.com/services/oauth2/token")
	w.Verifier.Unreachable(w.App.VerifyURLs[1], 2)
	start := w.Clock.Now()
	rotate(t, newEngine(t, w, "a", nil), w.App)
	if waited := w.Clock.Now().Sub(start); waited < 2*time.Minute {
		t.Errorf("verify waited %s on the fake clock, want at least the 2m propagation delay", waited)
	}
	if w.Verifier.Calls() < 4 {
		t.Errorf("verify calls = %d, want retries", w.Verifier.Calls())
	}
	checkInvariants(t, w, false)
}

// noMutation asserts that nothing was changed anywhere.
func noMutation(t *testing.T, w *rotatortest.World, storeVersion int) {
	t.Helper()
	if n := w.Org.Mutations(); n != 0 {
		t.Errorf("issuer mutations = %d (%v), want 0", n, w.Org.Calls())
	}
	if _, m := w.Store.Current(w.App.VaultPath); m.Version != storeVersion {
		t.Errorf("store version = %d, want %d", m.Version, storeVersion)
	}
	if n := w.Journal.Saves(); n != 0 {
		t.Errorf("journal saves = %d, want 0", n)
	}
}

func TestStopsWithoutMutation(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(w *rotatortest.World)
		app     func(a *rotator.App)
		want    error
		wantEv  rotator.EventType
		noCalls bool
	}{
		{
			name:   "drift: Salesforce's primary differs from Vault's current",
			setup:  func(w *rotatortest.World) { w.Org.RotateOutside(w.AppID, w.Consumer()) },
			want:   rotator.ErrDrift,
			wantEv: rotator.EventDriftDetected,
		},
		{
			name:    "ecarotator's own ECA",
			app:     func(a *rotator.App) { a.OwnECA = a.ECA },
			want:    rotator.ErrOwnECA,
			noCalls: true,
		},
		{
			name: "always_on mode with the setting off",
			app:  func(a *rotator.App) { a.SecretAccessMode = rotator.SecretAccessAlwaysOn },
			want: rotator.ErrSecretAccessClosed,
		},
		{
			name: "an unmanaged path without adopt",
			setup: func(w *rotatortest.World) {
				w.Store.Seed(w.App.VaultPath, rotator.StoredCredentials{Current: w.Initial}, false)
			},
			want: rotator.ErrNotManaged,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			if tt.setup != nil {
				tt.setup(w)
			}
			if tt.app != nil {
				tt.app(&w.App)
			}
			_, m := w.Store.Current(w.App.VaultPath)
			prior := w.Org.Access()
			_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
			wantErr(t, err, tt.want)
			noMutation(t, w, m.Version)
			if tt.wantEv != "" && w.Audit.Count(tt.wantEv) != 1 {
				t.Errorf("events %s = %d, want 1 (%v)", tt.wantEv, w.Audit.Count(tt.wantEv), w.Audit.Types())
			}
			if tt.noCalls && len(w.Org.Calls()) != 0 {
				t.Errorf("issuer calls = %v, want none", w.Org.Calls())
			}
			if w.Org.Access() != prior {
				t.Error("secret access changed")
			}
			if w.Locker.Held("app/" + w.App.Name) {
				t.Error("lease not released")
			}
		})
	}
}

func TestDriftEventCarriesBothKeys(t *testing.T) {
	w := rotatortest.NewWorld(1)
	sfKey := w.Org.RotateOutside(w.AppID, w.Consumer()).Key
	_, _ = newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	for _, ev := range w.Audit.Events() {
		if ev.Type == rotator.EventDriftDetected {
			if ev.Details["salesforce_key"] != sfKey || ev.Details["vault_key"] != w.Initial.Key {
				t.Errorf("drift details = %v, want salesforce %s vault %s", ev.Details, sfKey, w.Initial.Key)
			}
			return
		}
	}
	t.Fatal("no drift event")
}

// In toggle mode with the setting off the slot can only be read after
// opening it; the foreign entry then stops the rotation before any
// credential mutation and the setting is closed again.
func TestForeignStagedInToggleModeRestoresSecretAccess(t *testing.T) {
	w := rotatortest.NewWorld(1)
	foreign := w.Org.StageOutside(w.AppID, w.Consumer())
	_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrForeignStaged)
	for _, op := range []string{rotatortest.OpPromote, rotatortest.OpDeleteStaged} {
		if n := w.Org.Count(op); n != 0 {
			t.Errorf("%s calls = %d, want 0", op, n)
		}
	}
	// A fresh rotation POSTs without reading the slot first; the occupied
	// slot refuses it, so nothing is created.
	if n, ok := w.Org.Count(rotatortest.OpStage), w.Org.StageOK(); n > 1 || ok != 0 {
		t.Errorf("POSTs = %d (%d created), want at most one refused", n, ok)
	}
	if sc, _ := w.Org.Slot(w.AppID, w.Consumer()); sc.ID != foreign.ID {
		t.Error("the foreign staged entry was touched")
	}
	if w.Org.Access() {
		t.Error("I5: secret access left on")
	}
	if w.Store.Writes() != 0 {
		t.Error("vault written")
	}
}

func TestMultiConsumerECA(t *testing.T) {
	t.Run("the consumer whose key Vault holds is rotated, the other is untouched", func(t *testing.T) {
		w := rotatortest.NewWorld(2)
		other := w.Org.Primary(w.AppID, w.Consumers[1].ID)
		rotate(t, newEngine(t, w, "a", nil), w.App)
		checkInvariants(t, w, false)
		if got := w.Org.Primary(w.AppID, w.Consumers[1].ID); got.Key != other.Key {
			t.Errorf("second consumer rotated to %s", got.Key)
		}
	})
	t.Run("an adopted path with no consumer named is refused, never the first taken", func(t *testing.T) {
		w := rotatortest.NewWorld(2)
		w.Store = rotatortest.NewStore(w.Clock, w.Locker) // empty path
		e := newEngine(t, w, "a", nil)
		_, err := e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator, Adopt: true})
		wantErr(t, err, rotator.ErrConsumerAmbiguous)
		if n := w.Org.Mutations(); n != 0 {
			t.Errorf("mutations = %d", n)
		}
	})
	t.Run("a named consumer is adopted and rotated", func(t *testing.T) {
		w := rotatortest.NewWorld(2)
		w.Store = rotatortest.NewStore(w.Clock, w.Locker)
		w.App.ConsumerID = w.Consumers[1].ID
		first := w.Org.Primary(w.AppID, w.Consumers[0].ID)
		res, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator, Adopt: true})
		if err != nil {
			t.Fatal(err)
		}
		cur, meta := w.Store.Current(w.App.VaultPath)
		if cur.Current.Key != w.Org.Primary(w.AppID, w.Consumers[1].ID).Key || res.ConsumerKey != cur.Current.Key {
			t.Errorf("vault current %s is not consumer 2's new primary", cur.Current.Key)
		}
		if meta.Version != 2 || !meta.Managed {
			t.Errorf("meta = %+v, want version 2 (adopted as 1) and managed", meta)
		}
		if w.Org.Primary(w.AppID, w.Consumers[0].ID).Key != first.Key {
			t.Error("first consumer rotated")
		}
		if w.Audit.Count(rotator.EventAppAdopted) != 1 {
			t.Error("no app.adopted event")
		}
	})
}

func TestAdoptUnmanagedPath(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Store = rotatortest.NewStore(w.Clock, w.Locker)
	w.Store.Seed(w.App.VaultPath, rotator.StoredCredentials{Current: rotator.Credentials{Key: "hand-written"}}, false)
	e := newEngine(t, w, "a", nil)
	res, err := e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator, Adopt: true})
	if err != nil {
		t.Fatal(err)
	}
	cur, meta := w.Store.Current(w.App.VaultPath)
	if !meta.Managed || meta.Version != 3 || cur.Previous.Key != w.Initial.Key || res.PreviousKey != w.Initial.Key {
		t.Errorf("after adopt+rotate: meta %+v, previous %s", meta, cur.Previous.Key)
	}
	checkInvariants(t, w, false)
}

func TestLockContentionDoesNothing(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Locker.Steal("app/"+w.App.Name, "replica-z", time.Hour)
	res, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrLocked)
	if res.Outcome != rotator.OutcomeSkipped || len(w.Org.Calls()) != 0 || w.Journal.Saves() != 0 || len(w.Audit.Events()) != 0 {
		t.Errorf("locked rotation did something: result %+v, calls %v, saves %d, events %v", res, w.Org.Calls(), w.Journal.Saves(), w.Audit.Types())
	}
}

// A replica that lost its lease (another took it over) stops at its next
// journal write or lease check and changes nothing more.
func TestFencedRotationStops(t *testing.T) {
	w := rotatortest.NewWorld(1)
	stolen := false
	hook := func(p string) error {
		if p == "step:persist" && !stolen {
			stolen = true
			w.Locker.Steal("app/"+w.App.Name, "replica-z", time.Hour)
		}
		return nil
	}
	_, err := newEngine(t, w, "a", hook).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrFenced)
	if n := w.Org.Count(rotatortest.OpPromote); n != 0 {
		t.Errorf("promoted after losing the lease (%d)", n)
	}
	if w.Store.Writes() != 0 {
		t.Error("vault written after losing the lease")
	}
}

func TestAuditFailureFailsClosed(t *testing.T) {
	// Count the events of a clean rotation, then fail at each of them.
	clean := rotatortest.NewWorld(1)
	rotate(t, newEngine(t, clean, "a", nil), clean.App)
	events := clean.Audit.Events()
	errSink := errors.New("audit sink down")
	for n, ev := range events {
		t.Run("record of "+string(ev.Type)+" "+string(ev.Step)+" fails", func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			w.Audit.FailAfter(n, errSink)
			_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
			wantErr(t, err, rotator.ErrAudit)
			// The step whose event failed may have happened; the next may not.
			if ev.Type == rotator.EventRotationStarted || ev.Type == rotator.EventSecretAccessOpened || ev.Step == rotator.StepPreflight {
				if w.Org.Count(rotatortest.OpStage) != 0 {
					t.Error("staged after a failed audit record")
				}
			}
			if ev.Step == rotator.StepStage || ev.Step == rotator.StepPersist {
				if w.Org.Count(rotatortest.OpPromote) != 0 {
					t.Error("promoted after a failed audit record")
				}
			}
			if ev.Step == rotator.StepVerify || ev.Step == rotator.StepRotate {
				if w.Store.Writes() != 0 {
					t.Error("committed after a failed audit record")
				}
			}
			cur, _ := w.Store.Current(w.App.VaultPath)
			if !w.Org.Accepts(cur.Current) {
				t.Error("I1 broken")
			}
			if w.Org.Access() {
				t.Error("I5 broken")
			}
			// With the sink back, the rotation completes.
			w.Audit.FailAfter(-1, nil)
			w.Clock.Advance(time.Hour)
			rotate(t, newEngine(t, w, "b", nil), w.App)
			checkInvariants(t, w, false)
			if got := w.Org.StageOK(); got != 1 {
				t.Errorf("successful stages = %d, want 1", got)
			}
		})
	}
}

func TestRevokePreviousDeletesTheRotatedSlotNow(t *testing.T) {
	w := rotatortest.NewWorld(1)
	e := newEngine(t, w, "a", nil)
	rotate(t, e, w.App)
	res, err := e.RevokePrevious(context.Background(), w.App, operator)
	if err != nil || res.Outcome != rotator.OutcomeOK {
		t.Fatalf("revoke = %+v, %v", res, err)
	}
	if w.Org.Accepts(w.Initial) {
		t.Error("previous pair still accepted")
	}
	cur, _ := w.Store.Current(w.App.VaultPath)
	if !cur.Previous.IsZero() {
		t.Error("previous still in vault")
	}
	if w.Audit.Count(rotator.EventPreviousRevoked) != 1 {
		t.Error("no previous.revoked event")
	}
	checkInvariants(t, w, false)
}

func TestRetireResumesAfterCrash(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.App.Overlap = rotator.Overlap{Policy: rotator.OverlapAfter, After: time.Hour}
	rotate(t, newEngine(t, w, "a", nil), w.App)
	w.Clock.Advance(2 * time.Hour)
	_, err := newEngine(t, w, "a", crashAt("after:delete_staged#1")).Retire(context.Background(), w.App)
	wantErr(t, err, errCrash)
	if !w.Org.Access() {
		t.Fatal("setup: secret access should be open at the crash")
	}
	advancePastLease(w)
	res, err := newEngine(t, w, "b", nil).Resume(context.Background(), w.App)
	if err != nil || res.Outcome != rotator.OutcomeOK {
		t.Fatalf("resume retire = %+v, %v", res, err)
	}
	cur, _ := w.Store.Current(w.App.VaultPath)
	if !cur.Previous.IsZero() || w.Org.Accepts(w.Initial) {
		t.Error("previous not retired")
	}
	checkInvariants(t, w, false)
}

func TestNewEngineRejectsMissingDependencies(t *testing.T) {
	w := rotatortest.NewWorld(1)
	tests := []struct {
		name   string
		break_ func(o *rotator.Options)
	}{
		{"no issuers", func(o *rotator.Options) { o.Issuers = nil }},
		{"nil verifier", func(o *rotator.Options) { o.Verifier = nil }},
		{"nil store", func(o *rotator.Options) { o.Store = nil }},
		{"nil journal", func(o *rotator.Options) { o.Journal = nil }},
		{"nil locker", func(o *rotator.Options) { o.Locker = nil }},
		{"nil audit", func(o *rotator.Options) { o.Audit = nil }},
		{"nil clock", func(o *rotator.Options) { o.Clock = nil }},
		{"nil logger", func(o *rotator.Options) { o.Logger = nil }},
		{"nil backoff", func(o *rotator.Options) { o.Backoff = nil }},
		{"empty holder", func(o *rotator.Options) { o.Holder = "" }},
		{"zero lock ttl", func(o *rotator.Options) { o.LockTTL = 0 }},
		{"zero orphan after", func(o *rotator.Options) { o.OrphanAfter = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := w.Options("a", nil, nil)
			tt.break_(&o)
			if _, err := rotator.NewEngine(o); err == nil {
				t.Error("NewEngine accepted invalid options")
			}
		})
	}
}

// A crash during a failed attempt's cleanup leaves the setting open in an
// orphaned journal; the next Resume restores it without touching anything
// else (I5 holds even for an app the engine will not rotate).
func TestResumeRestoresSecretAccessOfABlockedJournal(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.PropagationDelay = 100 * time.Hour
	o := w.Options("a", nil, crashAt("before:close_secret_access#1"))
	o.OrphanAfter = 1
	e, err := rotator.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, errCrash)
	if !w.Org.Access() {
		t.Fatal("setup: the crash should leave secret access on")
	}
	advancePastLease(w)
	mut := w.Org.Count(rotatortest.OpStage) + w.Org.Count(rotatortest.OpPromote)
	_, err = newEngine(t, w, "b", nil).Resume(context.Background(), w.App)
	wantErr(t, err, rotator.ErrOrphaned)
	if w.Org.Access() {
		t.Error("I5: secret access still on")
	}
	if w.Org.Count(rotatortest.OpStage)+w.Org.Count(rotatortest.OpPromote) != mut {
		t.Error("credential mutation on an orphaned app")
	}
	cur, _ := w.Store.Current(w.App.VaultPath)
	if !w.Org.Accepts(cur.Current) {
		t.Error("I1 broken")
	}
}

func TestResumeWithoutJournalDoesNothing(t *testing.T) {
	w := rotatortest.NewWorld(1)
	res, err := newEngine(t, w, "a", nil).Resume(context.Background(), w.App)
	if err != nil || res.Outcome != rotator.OutcomeSkipped || w.Org.Mutations() != 0 || w.Journal.Saves() != 0 {
		t.Errorf("resume = %+v, %v; mutations %d", res, err, w.Org.Mutations())
	}
}

// A verify that waits far longer than the lease keeps renewing it, so the
// rotation is never fenced by its own slowness.
func TestLongVerifyRenewsTheLease(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.PropagationDelay = 5 * time.Minute
	o := w.Options("a", nil, nil)
	o.LockTTL = time.Minute
	o.Backoff = rotator.Backoff{Base: 45 * time.Second, Max: 2 * time.Minute, Attempts: 50, Jitter: 0.5, Rand: func() float64 { return 0.99 }}.NextAttempt
	e, err := rotator.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	start := w.Clock.Now()
	rotate(t, e, w.App)
	if w.Clock.Now().Sub(start) < 5*time.Minute {
		t.Fatal("verify did not wait out the propagation delay")
	}
	checkInvariants(t, w, false)
}

// Someone rewrote the app path with another pair while the rotation ran:
// the check-and-set commit refuses to overwrite it.
func TestCommitRefusesAPathChangedUnderneath(t *testing.T) {
	w := rotatortest.NewWorld(1)
	foreign := rotator.Credentials{Key: "someone-else", Secret: rotator.NewSecret("x")}
	hook := func(p string) error {
		if p == "step:verify" {
			w.Store.Seed(w.App.VaultPath, rotator.StoredCredentials{Current: foreign}, true)
		}
		return nil
	}
	_, err := newEngine(t, w, "a", hook).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrConflict)
	if cur, _ := w.Store.Current(w.App.VaultPath); cur.Current.Key != foreign.Key {
		t.Errorf("vault current = %s, want the foreign write kept", cur.Current.Key)
	}
	if w.Org.Access() {
		t.Error("I5 broken")
	}
}

func TestRetireRefusesWhileARotationIsInFlight(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.PropagationDelay = 100 * time.Hour
	e := newEngine(t, w, "a", nil)
	_, err := e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrVerifyFailed)
	_, err = e.Retire(context.Background(), w.App)
	wantErr(t, err, rotator.ErrInFlight)
	_, err = e.RevokePrevious(context.Background(), w.App, operator)
	wantErr(t, err, rotator.ErrInFlight)
	if !w.Org.Accepts(w.Initial) {
		t.Error("the pair Vault still serves was revoked")
	}
}

// After a POST failed outright, a credential someone staged by hand later is
// not mistaken for this rotation's own.
func TestAnOlderForeignEntryIsNotAdoptedAfterAFailedPost(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.FailNext(rotatortest.OpStage, rotatortest.Fault{Err: rotator.ErrRateLimited})
	e := newEngine(t, w, "a", nil)
	_, err := e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrRateLimited)
	w.Clock.Advance(-time.Hour) // the hand-staged entry predates our POST
	foreign := w.Org.StageOutside(w.AppID, w.Consumer())
	w.Clock.Advance(2 * time.Hour)
	_, err = e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrForeignStaged)
	if sc, _ := w.Org.Slot(w.AppID, w.Consumer()); sc.ID != foreign.ID {
		t.Error("foreign entry touched")
	}
	if j, _ := w.Journal.Entry(w.App.Name); !j.Pending.IsZero() {
		t.Error("foreign pair adopted into the journal")
	}
}

// A foreign Active entry with the setting already on: the fresh
// rotation's POST is refused by the occupied slot, the slot is read, and
// the rotation stops as a preflight stop would: the entry untouched,
// nothing created, Vault and the setting unchanged, no journal left (no
// attempt counted), the stop audited once.
func TestForeignStagedMetByTheFirstPostChangesNothing(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.SetAccess(true)
	foreign := w.Org.StageOutside(w.AppID, w.Consumer())
	_, m := w.Store.Current(w.App.VaultPath)
	_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrForeignStaged)
	if got := w.Audit.Count(rotator.EventForeignStaged); got != 1 {
		t.Errorf("foreign events = %d, want 1", got)
	}
	if sc, _ := w.Org.Slot(w.AppID, w.Consumer()); sc.ID != foreign.ID || sc.Key != foreign.Key || sc.Status != rotator.StagedActive {
		t.Errorf("slot = %+v, want the foreign entry untouched", sc)
	}
	if w.Org.StageOK() != 0 || w.Org.Count(rotatortest.OpPromote) != 0 || w.Org.Count(rotatortest.OpDeleteStaged) != 0 {
		t.Errorf("calls %v: something was created, promoted or deleted", w.Org.Calls())
	}
	if _, m2 := w.Store.Current(w.App.VaultPath); m2.Version != m.Version {
		t.Errorf("store version %d, want %d", m2.Version, m.Version)
	}
	if _, _, err := w.Journal.Load(context.Background(), w.App.Name); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("journal after the stop: %v, want none", err)
	}
	if !w.Org.Access() || w.Locker.Held("app/"+w.App.Name) {
		t.Error("setting changed or lease kept")
	}
	// The next attempt stops the same way: the entry never passes for ours.
	_, err = newEngine(t, w, "b", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrForeignStaged)
	if sc, _ := w.Org.Slot(w.AppID, w.Consumer()); sc.ID != foreign.ID || w.Org.StageOK() != 0 {
		t.Error("the second attempt touched the foreign entry")
	}
}
