package rotator_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// addApp adds a managed app on the World's Dev Hub with its own ECA.
func addApp(w *rotatortest.World, name string) (rotator.App, string, []rotator.Consumer, []rotator.Credentials) {
	eca := name + "_ECA"
	appID, cons, pairs := w.Org.AddECA(eca, 1)
	app := w.App
	app.Name, app.ECA, app.VaultPath = name, eca, "salesforce/"+name
	w.Store.Seed(app.VaultPath, rotator.StoredCredentials{Current: pairs[0], TokenURL: app.TokenURL, RotationID: "seed"}, true)
	return app, appID, cons, pairs
}

func holders(t *testing.T, e *rotator.Engine) []string {
	t.Helper()
	h, err := e.SecretAccessHolders(context.Background(), "hub")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestConcurrentAppsShareOneOpeningAndTheLastOutRestores runs two apps of
// one Dev Hub at the same time: billing opens the setting and pauses inside
// its rotation; payroll joins, rotates and leaves while billing still holds
// the opening, so the setting stays on; billing then finishes as the last
// one out and restores it. One opening, one restore.
func TestConcurrentAppsShareOneOpeningAndTheLastOutRestores(t *testing.T) {
	w := rotatortest.NewWorld(1)
	payroll, _, _, _ := addApp(w, "payroll")
	opened, resume := make(chan struct{}), make(chan struct{})
	pause := func(p string) error {
		if p == "step:expose" {
			close(opened)
			<-resume
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := newEngine(t, w, "replica-a", pause).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
		done <- err
	}()
	<-opened
	b := newEngine(t, w, "replica-b", nil)
	rotate(t, b, payroll)
	if !w.Org.Access() {
		t.Error("payroll restored the setting while billing still held the opening")
	}
	if got := holders(t, b); fmt.Sprint(got) != "[billing]" {
		t.Errorf("holders after payroll = %v, want [billing]", got)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatalf("billing: %v", err)
	}
	checkInvariants(t, w, false)
	if n := w.Org.Count(rotatortest.OpSetAccess); n != 2 {
		t.Errorf("SetSecretAccess calls = %d, want 2 (one opening, one restore)", n)
	}
	if o, r := w.Audit.Count(rotator.EventSecretAccessOpened), w.Audit.Count(rotator.EventSecretAccessRestored); o != 1 || r != 1 {
		t.Errorf("secret-access events: opened %d, restored %d, want 1 and 1", o, r)
	}
	if got := holders(t, b); len(got) != 0 {
		t.Errorf("holders left: %v", got)
	}
}

// TestFirstInFinishingFirstLeavesTheSettingToTheOthers: billing opens
// the setting, payroll joins and is still in flight when billing finishes;
// billing leaves the setting on, and payroll, the last one out, restores it.
func TestFirstInFinishingFirstLeavesTheSettingToTheOthers(t *testing.T) {
	w := rotatortest.NewWorld(1)
	payroll, _, _, _ := addApp(w, "payroll")
	joined, resume, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	b := newEngine(t, w, "replica-b", func(p string) error {
		if p == "step:expose" {
			close(joined)
			<-resume
		}
		return nil
	})
	var started bool
	a := newEngine(t, w, "replica-a", func(p string) error {
		if p == "step:expose" && !started {
			started = true
			go func() {
				_, err := b.Rotate(context.Background(), payroll, rotator.Request{Actor: operator})
				done <- err
			}()
			<-joined
		}
		return nil
	})
	rotate(t, a, w.App)
	if !w.Org.Access() {
		t.Error("billing restored the setting while payroll still held the opening")
	}
	if got := holders(t, a); fmt.Sprint(got) != "[payroll]" {
		t.Errorf("holders after billing = %v, want [payroll]", got)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatalf("payroll: %v", err)
	}
	checkInvariants(t, w, false)
	if o, r := w.Audit.Count(rotator.EventSecretAccessOpened), w.Audit.Count(rotator.EventSecretAccessRestored); o != 1 || r != 1 {
		t.Errorf("secret-access events: opened %d, restored %d, want 1 and 1", o, r)
	}
}

// TestCrashedHolderIsDroppedOnceItsLeaseIsGone: a rotation that crashed
// with the setting open no longer counts once its app lease expired, so the
// next rotation of the Dev Hub restores the setting at its end; the crashed
// one re-opens it when it resumes and restores it again.
func TestCrashedHolderIsDroppedOnceItsLeaseIsGone(t *testing.T) {
	w := rotatortest.NewWorld(1)
	payroll, _, _, _ := addApp(w, "payroll")
	_, err := newEngine(t, w, "a", crashAt("after:promote#1")).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, errCrash)
	advancePastLease(w)
	b := newEngine(t, w, "b", nil)
	rotate(t, b, payroll)
	if w.Org.Access() {
		t.Error("I5: the crashed holder kept the setting open after its lease expired")
	}
	if got := holders(t, b); len(got) != 0 {
		t.Errorf("holders = %v, want none", got)
	}
	if _, err := b.Resume(context.Background(), w.App); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, w, false)
	if o, r := w.Audit.Count(rotator.EventSecretAccessOpened), w.Audit.Count(rotator.EventSecretAccessRestored); o != 2 || r != 2 {
		t.Errorf("secret-access events: opened %d, restored %d, want 2 and 2", o, r)
	}
}

// TestJoinDuringARestoreBacksOff: the last holder announced its restore and
// crashed before switching the setting off; while its lease lives nobody
// joins (the setting is about to be closed), afterwards the next rotation
// takes over the recorded prior value.
func TestJoinDuringARestoreBacksOff(t *testing.T) {
	w := rotatortest.NewWorld(1)
	payroll, _, _, _ := addApp(w, "payroll")
	_, err := newEngine(t, w, "a", crashAt("before:close_secret_access#1")).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, errCrash)
	b := newEngine(t, w, "b", nil)
	_, err = b.Rotate(context.Background(), payroll, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrLocked)
	if w.Org.Count(rotatortest.OpStage) != 1 {
		t.Error("payroll staged while the setting was being restored")
	}
	advancePastLease(w)
	w.Clock.Advance(time.Hour) // past payroll's backoff
	rotate(t, b, payroll)
	if _, err := b.Resume(context.Background(), w.App); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, w, false)
}

// TestManyAppsOfOneDevHubRotatingAtOnce hammers the ledger from goroutines
// (run with -race): every app ends rotated, the setting ends off, nobody is
// left holding it, and openings and restores are audited.
func TestManyAppsOfOneDevHubRotatingAtOnce(t *testing.T) {
	w := rotatortest.NewWorld(1)
	apps := []rotator.App{w.App}
	initial := map[string]string{w.App.Name: w.Initial.Key}
	for i := range 4 {
		app, _, _, pairs := addApp(w, fmt.Sprintf("app%d", i))
		apps = append(apps, app)
		initial[app.Name] = pairs[0].Key
	}
	var wg sync.WaitGroup
	errs := make([]error, len(apps))
	for i, app := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := newEngine(t, w, "replica-"+app.Name, nil)
			for try := 0; try < 40; try++ {
				res, err := e.Rotate(context.Background(), app, rotator.Request{Actor: operator})
				if err == nil && res.Outcome == rotator.OutcomeOK {
					errs[i] = nil
					return
				}
				errs[i] = err
				w.Clock.Advance(time.Minute) // past the backoff of a failed attempt
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s never finished: %v", apps[i].Name, err)
		}
	}
	for _, app := range apps {
		cur, _ := w.Store.Current(app.VaultPath)
		if cur.Current.Key == initial[app.Name] || !w.Org.Accepts(cur.Current) {
			t.Errorf("%s: vault current %s not a fresh accepted pair", app.Name, cur.Current.Key)
		}
	}
	if w.Org.Access() {
		t.Error("I5: secret access left on")
	}
	if got := holders(t, newEngine(t, w, "x", nil)); len(got) != 0 {
		t.Errorf("holders left: %v", got)
	}
	// Two holders that join before either has switched the setting on both
	// switch it on (each records that call), so openings can outnumber
	// restores; a restore is recorded for every switch-off.
	if o, r := w.Audit.Count(rotator.EventSecretAccessOpened), w.Audit.Count(rotator.EventSecretAccessRestored); o == 0 || r == 0 {
		t.Errorf("secret-access events: opened %d, restored %d, want both", o, r)
	}
}

// TestCrashRightAfterASettingChangeStillAuditsIt: a crash between the
// setting change and its event leaves the change unaudited in that
// process; the resumed run records it, so the trail shows exactly one
// opening and one restore.
func TestCrashRightAfterASettingChangeStillAuditsIt(t *testing.T) {
	for _, point := range []string{"after:open_secret_access#1", "after:close_secret_access#1"} {
		t.Run("crash at "+point, func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			_, err := newEngine(t, w, "a", crashAt(point)).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
			wantErr(t, err, errCrash)
			advancePastLease(w)
			if _, err := newEngine(t, w, "b", nil).Resume(context.Background(), w.App); err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, w, false)
			if o, r := w.Audit.Count(rotator.EventSecretAccessOpened), w.Audit.Count(rotator.EventSecretAccessRestored); o != 1 || r != 1 {
				t.Errorf("secret-access events: opened %d, restored %d, want 1 and 1", o, r)
			}
		})
	}
}
