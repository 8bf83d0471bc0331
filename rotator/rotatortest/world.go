package rotatortest

import (
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// Epoch is the fake clock's start in every World.
var Epoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// World is a complete set of fakes wired together: one Dev Hub ("hub")
// owning one ECA ("Billing_ECA") with one managed app ("billing") whose
// Vault path already holds the ECA's current pair.
type World struct {
	Clock    *Clock
	Org      *Org
	Verifier *Verifier
	Store    *Store
	Journal  *Journal
	Locker   *Locker
	Audit    *Audit

	AppID     string
	Consumers []rotator.Consumer
	Initial   rotator.Credentials
	App       rotator.App
}

// NewWorld builds a World with consumers consumers on the ECA and the
// secret-access setting off (Salesforce's recommendation).
func NewWorld(consumers int) *World {
	clk := NewClock(Epoch)
	lk := NewLocker(clk)
	w := &World{Clock: clk, Org: NewOrg(clk, false), Locker: lk, Journal: NewJournal(lk), Store: NewStore(clk, lk), Audit: NewAudit()}
	w.Verifier = NewVerifier(w.Org)
	var pairs []rotator.Credentials
	w.AppID, w.Consumers, pairs = w.Org.AddECA("Billing_ECA", consumers)
	w.Initial = pairs[0]
	w.App = rotator.App{
		Name: "billing", DevHub: "hub", ECA: "Billing_ECA", VaultPath: "salesforce/billing",
		TokenURL: "https://hub.my.salesforce.com/services/oauth2/token", VerifyURLs: []string{"https://hub.my.salesforce.com/services/oauth2/token"},
		VerifyTimeout: 10 * time.Minute, Overlap: rotator.Overlap{Policy: rotator.OverlapSalesforceExpiry},
		MaxAge: 30 * 24 * time.Hour, Schedule: "0 3 * * 1", Window: time.Hour,
		SecretAccessMode: rotator.SecretAccessToggle, OwnECA: "Rotator_ECA",
	}
	w.Store.Seed(w.App.VaultPath, rotator.StoredCredentials{Current: w.Initial, TokenURL: w.App.TokenURL, RotatedAt: Epoch.Add(-40 * 24 * time.Hour), RotationID: "seed"}, true)
	return w
}

// TestBackoff is a deterministic backoff for tests: 10s doubling to 1m,
// 20 tries, no randomness.
func TestBackoff() func(int) (bool, time.Duration) {
	return rotator.Backoff{Base: 10 * time.Second, Max: time.Minute, Attempts: 20, Jitter: 0.5, Rand: func() float64 { return 0.5 }}.NextAttempt
}

// Options returns engine options over the World's fakes with holder as the
// replica id and hook as the crash hook (nil for none).
func (w *World) Options(holder string, log *zap.Logger, hook func(string) error) rotator.Options {
	if log == nil {
		log = zap.NewNop()
	}
	return rotator.Options{
		Issuers: map[string]rotator.Issuer{"hub": w.Org}, Verifier: w.Verifier, Store: w.Store, Journal: w.Journal,
		Locker: w.Locker, Audit: w.Audit, Clock: w.Clock, Logger: log, Backoff: TestBackoff(),
		Holder: holder, LockTTL: 10 * time.Minute, OrphanAfter: 3, Hook: hook, Sleep: w.Clock.Sleep, SettleSleep: w.Clock.Sleep,
	}
}

// Consumer returns the id of the first consumer.
func (w *World) Consumer() string { return w.Consumers[0].ID }
