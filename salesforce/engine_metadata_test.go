package salesforce_test

// The engine's metadata strategy driven end to end against sfsim (strict
// defaults) through the real client, with the rotator's in-memory Vault,
// journal, locker and audit fakes and one fake clock shared by engine,
// client and simulator. Vault-backed end-to-end and SIGKILL tests live in
// integration/.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// mdWorld is a packaged target ECA in the Dev Hub (installed in the
// subscriber org), both secret-access settings off, the rotator user with
// the Metadata secrets permission, and an engine over fakes.
type mdWorld struct {
	sim     *sfsim.Sim
	clk     *rotatortest.Clock
	client  *salesforce.Client
	store   *rotatortest.Store
	journal *rotatortest.Journal
	locker  *rotatortest.Locker
	audit   *rotatortest.Audit
	app     rotator.App
	hook    func(string) error
	log     *zap.Logger
}

func newMDWorld(t *testing.T, mod func(*sfsim.Config)) *mdWorld {
	t.Helper()
	clk := rotatortest.NewClock(time.Now().UTC().Truncate(time.Second))
	cfg := simConfig(t)
	packaged(&cfg)
	cfg.Orgs[0].SecretAccess = false
	cfg.Orgs[0].MetadataSecretAccess = false
	if mod != nil {
		mod(&cfg)
	}
	sim, err := sfsim.New(cfg, sfsim.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	c, _ := simClient(t, sim, func(o *salesforce.Options) {
		o.Now = clk.Now
		o.MetadataPoll = func(a int) (bool, time.Duration) { return a < 20, time.Second }
		o.Sleep = clk.Sleep
	})
	lk := rotatortest.NewLocker(clk)
	w := &mdWorld{sim: sim, clk: clk, client: c, locker: lk, journal: rotatortest.NewJournal(lk), store: rotatortest.NewStore(clk, lk), audit: rotatortest.NewAudit()}
	w.app = rotator.App{
		Name: "billing", DevHub: devhub, ECA: targetECA, VaultPath: "salesforce/billing",
		TokenURL: sim.TokenURL(devhub), VerifyURLs: []string{sim.TokenURL(devhub), sim.TokenURL(subscriber)},
		VerifyTimeout: 5 * time.Minute, Overlap: rotator.Overlap{Policy: rotator.OverlapSalesforceExpiry},
		SecretAccessMode: rotator.SecretAccessToggle, OwnECA: "Rotator_App", DeployTimeout: 2 * time.Minute,
	}
	w.store.Seed(w.app.VaultPath, rotator.StoredCredentials{Current: rotator.Credentials{Key: targetKey, Secret: rotator.NewSecret(targetSecret)}, TokenURL: w.app.TokenURL, RotationID: "seed"}, true)
	return w
}

func (w *mdWorld) logger() *zap.Logger {
	if w.log == nil {
		return zap.NewNop()
	}
	return w.log
}

func (w *mdWorld) engine(t *testing.T) *rotator.Engine {
	t.Helper()
	e, err := rotator.NewEngine(rotator.Options{
		Issuers: map[string]rotator.Issuer{devhub: w.client}, Verifier: salesforce.NewVerifier(salesforce.VerifierOptions{}),
		Store: w.store, Journal: w.journal, Locker: w.locker, Audit: w.audit, Clock: w.clk, Logger: w.logger(),
		Backoff: rotator.Backoff{Base: time.Second, Max: 10 * time.Second, Attempts: 20, Jitter: 0.5, Rand: func() float64 { return 0.5 }}.NextAttempt,
		Holder:  "test", LockTTL: 10 * time.Minute, OrphanAfter: 5, Hook: w.hook, Sleep: w.clk.Sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// rotatingDeploys counts the deploys that set a rotate flag.
func (w *mdWorld) rotatingDeploys() int {
	n := 0
	for _, d := range w.sim.MetadataDeploys() {
		if d.RotateKey || d.RotateSecret {
			n++
		}
	}
	return n
}

// check asserts the end state: Vault holds exactly Salesforce's pair, the
// pair works at both orgs, the old one nowhere, both settings restored to
// off, the flags cleared, no journal left.
func (w *mdWorld) check(t *testing.T, wantDeploys int) rotator.StoredCredentials {
	t.Helper()
	cur, _ := w.store.Current(w.app.VaultPath)
	cs, err := w.sim.ConsumerState(devhub, targetECA, consumerID(t, w.sim))
	if err != nil {
		t.Fatal(err)
	}
	if cur.Current.Key != cs.Key || cur.Current.Secret.Reveal() != cs.Secret {
		t.Errorf("vault holds key %s, salesforce %s (secrets equal %v)", cur.Current.Key, cs.Key, cur.Current.Secret.Reveal() == cs.Secret)
	}
	if cs.Secret == targetSecret {
		t.Error("salesforce still holds the old secret")
	}
	v := salesforce.NewVerifier(salesforce.VerifierOptions{})
	for _, org := range []string{devhub, subscriber} {
		if err := v.Verify(t.Context(), w.sim.TokenURL(org), cur.Current); err != nil {
			t.Errorf("vault's pair at %s: %v", org, err)
		}
	}
	if w.sim.SecretAccess(devhub) || w.sim.MetadataSecretAccess(devhub) {
		t.Errorf("settings not restored: rest %v metadata %v", w.sim.SecretAccess(devhub), w.sim.MetadataSecretAccess(devhub))
	}
	if k, s := w.sim.RotateFlags(devhub, targetECA); k || s {
		t.Errorf("rotate flags left true: key %v secret %v", k, s)
	}
	if got := w.rotatingDeploys(); got != wantDeploys {
		t.Errorf("rotating deploys = %d, want %d", got, wantDeploys)
	}
	if _, ok := w.journal.Entry(w.app.Name); ok {
		t.Error("journal left behind")
	}
	return cur
}

// consumerID reads the target consumer's id from the simulator's model,
// not through the REST API: after a rotation the settings are restored to
// off, and the strict profile gates those reads behind them (a test's
// observation must not need the access the rotation just closed).
func consumerID(t *testing.T, sim *sfsim.Sim) string {
	t.Helper()
	for _, o := range sim.State(false).Orgs {
		for _, e := range o.ECAs {
			if o.Name == devhub && e.DeveloperName == targetECA && len(e.Consumers) == 1 {
				return e.Consumers[0].ID
			}
		}
	}
	t.Fatalf("sfsim has no single consumer of %s in %s", targetECA, devhub)
	return ""
}

func TestEngineMetadataRotatesPackagedECA(t *testing.T) {
	w := newMDWorld(t, nil)
	core, logs := observer.New(zap.DebugLevel)
	w.log = zap.New(core)
	res, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{Actor: rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice"}})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if res.Strategy != rotator.StrategyMetadata || res.Outcome != rotator.OutcomeOK {
		t.Fatalf("result = %+v", res)
	}
	cur := w.check(t, 1)
	if cur.Previous.Key != targetKey || !cur.PreviousValidUntil.Equal(cur.RotatedAt) {
		t.Errorf("previous %s valid until %v, rotated %v: want the old pair valid until the rotation time", cur.Previous.Key, cur.PreviousValidUntil, cur.RotatedAt)
	}
	for _, want := range []rotator.EventType{rotator.EventMetadataDeploy, rotator.EventDowntimeMeasured, rotator.EventRotationSucceeded} {
		if w.audit.Count(want) == 0 {
			t.Errorf("no %s event", want)
		}
	}
	opened, restored := 0, 0
	for _, ev := range w.audit.Events() {
		switch {
		case ev.Type == rotator.EventSecretAccessOpened && ev.Details["setting"] == "metadata":
			opened++
		case ev.Type == rotator.EventSecretAccessRestored && ev.Details["setting"] == "metadata":
			restored++
		}
	}
	if opened != 1 || restored != 1 {
		t.Errorf("metadata setting opened %d, restored %d times; want 1 and 1", opened, restored)
	}
	j := w.audit.JSON()
	if strings.Contains(j, targetSecret) || strings.Contains(j, cur.Current.Secret.Reveal()) {
		t.Error("audit trail leaks a secret")
	}
	for _, l := range logs.All() {
		noLeak(t, "log", l.Message+fmt.Sprint(l.ContextMap()), cur.Current.Secret.Reveal())
	}
	noLeak(t, "result", fmt.Sprintf("%+v", res), cur.Current.Secret.Reveal())
	if logs.FilterMessage("downtime window closed: the new pair is in Vault").Len() != 1 {
		t.Error("downtime not logged")
	}
}

func TestEngineMetadataAutoPicksPerApp(t *testing.T) {
	w := newMDWorld(t, nil)
	e := w.engine(t)
	local := w.app
	local.Name, local.ECA, local.VaultPath, local.OwnECA = "rotator", "Rotator_App", "salesforce/rotator", "Other"
	for _, tc := range []struct {
		app  rotator.App
		want rotator.Strategy
	}{{w.app, rotator.StrategyMetadata}, {local, rotator.StrategyStaged}} {
		c, err := e.ChooseStrategy(t.Context(), tc.app)
		if err != nil || c.Strategy != tc.want || c.Why == "" {
			t.Errorf("ChooseStrategy(%s) = %+v, %v; want %s", tc.app.Name, c, err, tc.want)
		}
	}
	staged := w.app
	staged.Strategy = rotator.StrategyStaged
	_, err := e.Rotate(t.Context(), staged, rotator.Request{})
	if !errors.Is(err, rotator.ErrPackagedStaged) || !strings.Contains(err.Error(), "strategy: metadata") {
		t.Fatalf("staged on a packaged ECA: %v", err)
	}
	if len(w.sim.MetadataDeploys()) != 0 {
		t.Fatal("a refused strategy deployed")
	}
}

// TestEngineMetadataCrashPoints kills the engine (hook abort, no cleanup) at
// every new point and resumes with a fresh engine: exactly one rotating
// deploy, Salesforce's pair in Vault, settings restored.
func TestEngineMetadataCrashPoints(t *testing.T) {
	for _, point := range []string{
		"before:open_md_secret_access", "after:open_md_secret_access", "before:deploy", "after:deploy", "poll:deploy", "step:rotate",
		"step:persist", "before:write_credentials", "after:write_credentials", "step:commit", "step:verify",
		"before:clear_flags", "after:clear_flags", "before:close_md_secret_access", "after:close_md_secret_access", "before:clear_journal",
	} {
		t.Run(point, func(t *testing.T) {
			w := newMDWorld(t, func(c *sfsim.Config) { c.Behavior.DeployDelay = sfsim.Duration(3 * time.Second) })
			crashed := false
			w.hook = func(p string) error {
				if p == point && !crashed {
					crashed = true
					return errors.New("crash")
				}
				return nil
			}
			if _, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{}); err == nil || !crashed {
				t.Fatalf("no crash at %s: %v", point, err)
			}
			w.clk.Advance(11 * time.Minute) // the dead run's lease expires
			w.hook = nil
			if _, err := w.engine(t).Resume(t.Context(), w.app); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			w.check(t, 1)
		})
	}
}

func TestEngineMetadataFaults(t *testing.T) {
	t.Run("reset after the deploy was accepted: settled by reading, one deploy", func(t *testing.T) {
		w := newMDWorld(t, func(c *sfsim.Config) { c.Behavior.DeployResetAfterAccept = 1 })
		if _, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{}); err != nil {
			t.Fatal(err)
		}
		w.check(t, 1)
	})
	t.Run("component error: nothing changes, settings restored, attempt backs off", func(t *testing.T) {
		w := newMDWorld(t, func(c *sfsim.Config) { c.Behavior.DeployComponentError = "Invalid callback URL" })
		_, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{})
		if !errors.Is(err, rotator.ErrDeployFailed) || !strings.Contains(err.Error(), "Invalid callback URL") {
			t.Fatalf("err = %v", err)
		}
		cur, _ := w.store.Current(w.app.VaultPath)
		if cur.Current.Secret.Reveal() != targetSecret || w.sim.SecretAccess(devhub) || w.sim.MetadataSecretAccess(devhub) {
			t.Fatal("a failed deploy changed vault or left a setting open")
		}
		j, ok := w.journal.Entry(w.app.Name)
		if !ok || j.NextAttemptAt.IsZero() || j.Extra[rotator.ExtraMDPhase] != "" {
			t.Fatalf("journal after failure = %+v", j)
		}
	})
	t.Run("deploy never finishes: bounded polling, no second deploy", func(t *testing.T) {
		w := newMDWorld(t, func(c *sfsim.Config) { c.Behavior.DeployNeverFinishes = true })
		e := w.engine(t)
		_, err := e.Rotate(t.Context(), w.app, rotator.Request{})
		if !errors.Is(err, rotator.ErrDeployTimeout) {
			t.Fatalf("err = %v", err)
		}
		w.clk.Advance(time.Hour)
		_, err = e.Rotate(t.Context(), w.app, rotator.Request{})
		if !errors.Is(err, rotator.ErrDeployTimeout) || w.rotatingDeploys() != 1 {
			t.Fatalf("second attempt: %v, deploys %d", err, w.rotatingDeploys())
		}
		if w.sim.SecretAccess(devhub) || w.sim.MetadataSecretAccess(devhub) {
			t.Fatal("settings left open")
		}
	})
	t.Run("packaged ECA without REST secret: auto reads by retrieve", func(t *testing.T) {
		w := newMDWorld(t, func(c *sfsim.Config) { c.Behavior.PackagedSecretNotInREST = true })
		if _, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{}); err != nil {
			t.Fatal(err)
		}
		w.check(t, 1)
	})
	t.Run("retrieve without the secret: auto reads by REST", func(t *testing.T) {
		w := newMDWorld(t, func(c *sfsim.Config) { c.Behavior.ConsumerSecretInRetrieve = new(bool) })
		if _, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{}); err != nil {
			t.Fatal(err)
		}
		w.check(t, 1)
	})
	t.Run("secret_read metadata with a retrieve that never carries the secret fails before deploying", func(t *testing.T) {
		w := newMDWorld(t, func(c *sfsim.Config) { c.Behavior.ConsumerSecretInRetrieve = new(bool) })
		w.app.SecretRead = rotator.SecretReadMetadata
		_, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{})
		if !errors.Is(err, rotator.ErrSecretUnreadable) || len(w.sim.MetadataDeploys()) != 0 {
			t.Fatalf("err = %v, deploys %d; want ErrSecretUnreadable before any deploy", err, len(w.sim.MetadataDeploys()))
		}
		if w.sim.SecretAccess(devhub) || w.sim.MetadataSecretAccess(devhub) {
			t.Fatal("settings left open")
		}
	})
	t.Run("drift: vault's secret differs from salesforce's, nothing deployed", func(t *testing.T) {
		w := newMDWorld(t, nil)
		w.store.Seed(w.app.VaultPath, rotator.StoredCredentials{Current: rotator.Credentials{Key: targetKey, Secret: rotator.NewSecret("STALE")}, RotationID: "x"}, true)
		_, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{})
		if !errors.Is(err, rotator.ErrDrift) || len(w.sim.MetadataDeploys()) != 0 {
			t.Fatalf("err = %v, deploys %d", err, len(w.sim.MetadataDeploys()))
		}
	})
}

func TestEngineMetadataOverlapAndRotateKey(t *testing.T) {
	w := newMDWorld(t, func(c *sfsim.Config) { c.Behavior.MetadataRotationOverlap = sfsim.Duration(time.Hour) })
	w.app.MetadataOverlap = time.Hour
	w.app.RotateKey = true
	if _, err := w.engine(t).Rotate(t.Context(), w.app, rotator.Request{}); err != nil {
		t.Fatal(err)
	}
	cur := w.check(t, 1)
	if cur.Current.Key == targetKey {
		t.Error("rotate_key kept the key")
	}
	if got := cur.PreviousValidUntil.Sub(cur.RotatedAt); got != time.Hour {
		t.Errorf("previous valid for %v after the rotation, want 1h", got)
	}
	v := salesforce.NewVerifier(salesforce.VerifierOptions{})
	if err := v.Verify(t.Context(), w.sim.TokenURL(subscriber), cur.Previous); err != nil {
		t.Errorf("previous pair inside the overlap: %v", err)
	}
}

func TestEngineMetadataRetire(t *testing.T) {
	w := newMDWorld(t, nil)
	e := w.engine(t)
	if _, err := e.Rotate(t.Context(), w.app, rotator.Request{}); err != nil {
		t.Fatal(err)
	}
	before := len(w.sim.Requests())
	res, err := e.Retire(t.Context(), w.app)
	if err != nil || res.Outcome != rotator.OutcomeOK {
		t.Fatalf("Retire = %+v, %v", res, err)
	}
	cur, _ := w.store.Current(w.app.VaultPath)
	if !cur.Previous.IsZero() {
		t.Fatal("previous_* kept")
	}
	for _, r := range w.sim.Requests()[before:] {
		if r.Route == sfsim.RouteStaged || r.Route == sfsim.RouteStagedItem {
			t.Fatalf("retire called %s", r.Path)
		}
	}
}

func TestEngineMetadataPlanAndKnownStrategy(t *testing.T) {
	w := newMDWorld(t, nil)
	e := w.engine(t)
	if c := e.KnownStrategy(w.app, nil); c.Strategy != rotator.StrategyAuto {
		t.Fatalf("before any read: %+v", c)
	}
	p, err := e.Plan(t.Context(), w.app, w.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.Strategy.Strategy != rotator.StrategyMetadata || p.Strategy.Distribution != rotator.DistributionPackaged || p.MetadataSecretAccess == nil || len(p.Problems) != 0 {
		t.Fatalf("plan = strategy %+v, metadata access %v, problems %v", p.Strategy, p.MetadataSecretAccess, p.Problems)
	}
	if c := e.KnownStrategy(w.app, nil); c.Strategy != rotator.StrategyMetadata || !strings.Contains(c.Why, "Packaged") {
		t.Fatalf("after plan: %+v", c)
	}
	for _, r := range w.sim.Requests() {
		if r.Route == sfsim.RouteStaged || r.Route == sfsim.RouteStagedItem {
			t.Fatalf("plan of a packaged app called %s", r.Path)
		}
	}
	staged := w.app
	staged.Strategy = rotator.StrategyStaged
	p, _ = e.Plan(t.Context(), staged, w.clk.Now())
	if len(p.Problems) == 0 || !strings.Contains(strings.Join(p.Problems, " "), "strategy: metadata") {
		t.Fatalf("plan of staged on packaged: problems %v", p.Problems)
	}
}

// TestEngineMetadataConcurrentAppsShareTheGate rotates two packaged ECAs of
// one Dev Hub at once: they share one opening of each secret-access
// setting, and the last one out restores both.
func TestEngineMetadataConcurrentAppsShareTheGate(t *testing.T) {
	const otherKey, otherSecret = "3MVGOTHERKEY0001", "OTHER-SECRET-DO-NOT-LEAK"
	w := newMDWorld(t, func(c *sfsim.Config) {
		c.Orgs[0].ECAs = append(c.Orgs[0].ECAs, sfsim.ECAConfig{DeveloperName: "Other_Sync", DistributionState: sfsim.DistributionPackaged,
			ClientCredentialsUser: runAsUser, Consumers: []sfsim.ConsumerConfig{{Key: otherKey, Secret: otherSecret}}})
		c.Behavior.DeployDelay = sfsim.Duration(2 * time.Second)
	})
	other := w.app
	other.Name, other.ECA, other.VaultPath, other.VerifyURLs = "other", "Other_Sync", "salesforce/other", []string{w.sim.TokenURL(devhub)}
	w.store.Seed(other.VaultPath, rotator.StoredCredentials{Current: rotator.Credentials{Key: otherKey, Secret: rotator.NewSecret(otherSecret)}, RotationID: "seed"}, true)
	e := w.engine(t)
	errs := make(chan error, 2)
	for _, app := range []rotator.App{w.app, other} {
		go func() {
			_, err := e.Rotate(t.Context(), app, rotator.Request{})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil && !errors.Is(err, rotator.ErrLocked) {
			t.Fatalf("Rotate: %v", err)
		}
	}
	// A rotation that backed off because the other was restoring the
	// setting (ErrLocked) runs again.
	for _, app := range []rotator.App{w.app, other} {
		if cur, _ := w.store.Current(app.VaultPath); cur.RotationID == "seed" {
			w.clk.Advance(time.Hour)
			if _, err := e.Rotate(t.Context(), app, rotator.Request{}); err != nil {
				t.Fatalf("Rotate %s again: %v", app.Name, err)
			}
		}
	}
	if w.sim.SecretAccess(devhub) || w.sim.MetadataSecretAccess(devhub) {
		t.Fatalf("settings left on: rest %v metadata %v", w.sim.SecretAccess(devhub), w.sim.MetadataSecretAccess(devhub))
	}
	for _, app := range []rotator.App{w.app, other} {
		if cur, _ := w.store.Current(app.VaultPath); cur.RotationID == "seed" {
			t.Errorf("%s not rotated", app.Name)
		}
	}
	if got := w.rotatingDeploys(); got != 2 {
		t.Errorf("rotating deploys = %d, want 2", got)
	}
}

// distCounter counts distributionState reads through the real client.
type distCounter struct {
	*salesforce.Client
	n int
}

func (d *distCounter) DistributionState(ctx context.Context, eca string) (string, error) {
	d.n++
	return d.Client.DistributionState(ctx, eca)
}

// engineWith is w.engine with iss as the Dev Hub's issuer.
func (w *mdWorld) engineWith(t *testing.T, iss rotator.Issuer) *rotator.Engine {
	t.Helper()
	e, err := rotator.NewEngine(rotator.Options{
		Issuers: map[string]rotator.Issuer{devhub: iss}, Verifier: salesforce.NewVerifier(salesforce.VerifierOptions{}),
		Store: w.store, Journal: w.journal, Locker: w.locker, Audit: w.audit, Clock: w.clk, Logger: w.logger(),
		Backoff: rotator.Backoff{Base: time.Second, Max: 10 * time.Second, Attempts: 20, Jitter: 0.5, Rand: func() float64 { return 0.5 }}.NextAttempt,
		Holder:  "test", LockTTL: 10 * time.Minute, OrphanAfter: 5, Sleep: w.clk.Sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Strategy auto keeps the distribution state in the app's ECA cache in
// Vault (the entry that also holds app id and consumer id), so a new
// engine — another process, a restart — decides without reading it again.
func TestEngineMetadataStrategyFromVaultCache(t *testing.T) {
	w := newMDWorld(t, nil)
	first := &distCounter{Client: w.client}
	if res, err := w.engineWith(t, first).Rotate(t.Context(), w.app, rotator.Request{}); err != nil || res.Strategy != rotator.StrategyMetadata {
		t.Fatalf("first rotation = %+v, %v", res, err)
	}
	if first.n != 1 {
		t.Errorf("first rotation read distributionState %d times, want 1", first.n)
	}
	c, ok := w.journal.Entry(rotator.ECACacheKey(w.app.Name))
	if !ok || c.Extra["distribution"] != rotator.DistributionPackaged || c.Extra["developer_name"] != targetECA || c.AppID == "" || c.ConsumerID == "" {
		t.Fatalf("eca cache = %+v (found %v), want Packaged with the app id and consumer id", c, ok)
	}
	w.check(t, 1)
	second := &distCounter{Client: w.client}
	e2 := w.engineWith(t, second)
	if k := e2.KnownStrategy(w.app, nil); k.Strategy != rotator.StrategyAuto {
		t.Fatalf("a new engine knows %+v before reading the cache", k)
	}
	// Status without a daemon reads the same Vault entry, not Salesforce.
	if k := w.engineWith(t, second).StrategyOf(t.Context(), w.app, nil); k.Strategy != rotator.StrategyMetadata || k.Distribution != rotator.DistributionPackaged {
		t.Errorf("StrategyOf from the Vault cache = %+v", k)
	}
	if res, err := e2.Rotate(t.Context(), w.app, rotator.Request{}); err != nil || res.Strategy != rotator.StrategyMetadata {
		t.Fatalf("second rotation = %+v, %v", res, err)
	}
	if second.n != 0 {
		t.Errorf("second rotation read distributionState %d times; want it from the Vault cache", second.n)
	}
	if k := e2.KnownStrategy(w.app, nil); k.Strategy != rotator.StrategyMetadata || k.Distribution != rotator.DistributionPackaged {
		t.Errorf("KnownStrategy after the rotation = %+v", k)
	}
	w.check(t, 2)
}

// A cached distribution state that Salesforce contradicts (cached Local,
// but the staged API refuses the ECA as packaged) is read again, and the
// rotation goes on with the metadata strategy: one deploy, the cache fixed,
// the setting the gated reads needed opened journaled-first and restored.
func TestEngineMetadataStaleCacheRevalidated(t *testing.T) {
	w := newMDWorld(t, nil)
	stale := rotator.JournalEntry{App: rotator.ECACacheKey(w.app.Name), Step: rotator.StepPreflight, Extra: map[string]string{"developer_name": targetECA, "distribution": rotator.DistributionLocal}}
	if _, err := w.journal.Save(t.Context(), rotator.ECACacheKey(w.app.Name), stale, 0, nil); err != nil {
		t.Fatal(err)
	}
	iss := &distCounter{Client: w.client}
	res, err := w.engineWith(t, iss).Rotate(t.Context(), w.app, rotator.Request{})
	if err != nil || res.Strategy != rotator.StrategyMetadata || res.Outcome != rotator.OutcomeOK {
		t.Fatalf("Rotate = %+v, %v", res, err)
	}
	if iss.n != 1 {
		t.Errorf("distributionState read %d times, want 1 (the re-validation)", iss.n)
	}
	if c, _ := w.journal.Entry(rotator.ECACacheKey(w.app.Name)); c.Extra["distribution"] != rotator.DistributionPackaged {
		t.Errorf("cache after re-validation = %+v, want Packaged", c.Extra)
	}
	for _, r := range w.sim.Requests() {
		if (r.Route == sfsim.RouteStaged || r.Route == sfsim.RouteStagedItem) && r.Method != "GET" {
			t.Errorf("staged mutation %s %s on a packaged ECA", r.Method, r.Path)
		}
	}
	w.check(t, 1)
}
