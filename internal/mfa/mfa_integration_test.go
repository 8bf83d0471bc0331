//go:build integration

package mfa_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
	"github.com/ecarotator/ecarotator/vault"
)

// audit records events as JSON, the way they would reach the trail.
type audit struct {
	mu     sync.Mutex
	events []rotator.Event
	raw    bytes.Buffer
}

func (a *audit) Record(_ context.Context, e rotator.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	b, _ := json.Marshal(e)
	a.raw.Write(b)
	a.raw.WriteByte('\n')
	return nil
}
func (a *audit) Fingerprint(rotator.Secret) string { return "fp" }

func (a *audit) count(t rotator.EventType, o rotator.Outcome) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.events {
		if e.Type == t && (o == "" || e.Outcome == o) {
			n++
		}
	}
	return n
}

type fixture struct {
	svc   *mfa.Service
	clk   *rotatortest.Clock
	audit *audit
	logs  *bytes.Buffer
	seeds map[string]string
	o     mfa.Options
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	v := vaulttest.Start(t)
	logs := &bytes.Buffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&lockedWriter{w: logs}), zap.DebugLevel))
	f := &fixture{clk: rotatortest.NewClock(time.Date(2026, 3, 1, 9, 0, 10, 0, time.UTC)), audit: &audit{}, logs: logs, seeds: map[string]string{}}
	f.o = mfa.Options{
		Vault: vault.FromAPI(v.Client(t), "secret"), SeedPrefix: "ecarotator/mfa-" + strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())),
		Issuer: "ecarotator-test", Skew: 1, MaxFailures: 3, Lockout: 15 * time.Minute, ApprovalTTL: time.Hour,
		Now: f.clk.Now, Audit: f.audit, Logger: log,
	}
	svc, err := mfa.New(f.o)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (f *fixture) enroll(t *testing.T, op string) {
	t.Helper()
	uri, err := f.svc.Enroll(t.Context(), op)
	if err != nil {
		t.Fatalf("Enroll(%s): %v", op, err)
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatal(err)
	}
	if key.Issuer() != "ecarotator-test" || key.AccountName() != displayOf(op) {
		t.Errorf("uri issuer %q account %q", key.Issuer(), key.AccountName())
	}
	f.seeds[op] = key.Secret()
}

func (f *fixture) code(t *testing.T, op string, offset time.Duration) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(f.seeds[op], f.clk.Now().Add(offset), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Operators of these tests: Vault identities with an entity (M1). alice2
// is alice logged in through a second auth mount: the same entity.
const (
	alice  = "token-alice (entity 0000000a-0000-4000-8000-00000000000a)"
	alice2 = "userpass-sso-alice (entity 0000000a-0000-4000-8000-00000000000a)"
	bob    = "token-bob (entity 0000000b-0000-4000-8000-00000000000b)"
	carol  = "token-carol (entity 0000000c-0000-4000-8000-00000000000c)"
)

// displayOf is the display-name part of a test identity.
func displayOf(identity string) string {
	if i := strings.Index(identity, " (entity "); i > 0 {
		return identity[:i]
	}
	return identity
}

func wrongCode(right string) string {
	if right == "000000" {
		return "111111"
	}
	return "000000"
}

func TestVerifyAcceptsACodeOnceAndRefusesItsReplay(t *testing.T) {
	f := newFixture(t)
	f.enroll(t, alice)
	ctx := t.Context()
	code := f.code(t, alice, 0)
	if err := f.svc.Verify(ctx, alice, code, "rotate", "billing"); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := f.svc.Verify(ctx, alice, code, "rotate", "billing"); !errors.Is(err, mfa.ErrReplayed) {
		t.Fatalf("replay: err = %v, want ErrReplayed", err)
	}
	// The previous step's code is inside the skew but older than the step
	// just used: also a replay.
	if err := f.svc.Verify(ctx, alice, f.code(t, alice, -30*time.Second), "rotate", "billing"); !errors.Is(err, mfa.ErrReplayed) {
		t.Fatalf("older step: err = %v, want ErrReplayed", err)
	}
	f.clk.Advance(30 * time.Second)
	if err := f.svc.Verify(ctx, alice, f.code(t, alice, 0), "rotate", "billing"); err != nil {
		t.Fatalf("next step: %v", err)
	}
	if got := f.audit.count(rotator.EventMFAVerified, rotator.OutcomeOK); got != 2 {
		t.Errorf("mfa.verified events = %d, want 2", got)
	}
	if got := f.audit.count(rotator.EventMFAFailed, ""); got != 2 {
		t.Errorf("mfa.failed events = %d, want 2", got)
	}
}

func TestVerifyRefusesAWrongSecondFactor(t *testing.T) {
	f := newFixture(t)
	f.enroll(t, alice)
	f.enroll(t, bob)
	ctx := t.Context()
	// Bob's valid code is a wrong second factor for Alice.
	if err := f.svc.Verify(ctx, alice, f.code(t, bob, 0), "reveal", "billing"); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("another operator's code: err = %v, want ErrInvalidCode", err)
	}
	if err := f.svc.Verify(ctx, alice, wrongCode(f.code(t, alice, 0)), "reveal", "billing"); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("wrong code: err = %v, want ErrInvalidCode", err)
	}
	if err := f.svc.Verify(ctx, alice, f.code(t, alice, 90*time.Second), "reveal", "billing"); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("code three steps ahead: err = %v, want ErrInvalidCode", err)
	}
	if err := f.svc.Verify(ctx, carol, "123456", "reveal", "billing"); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("not enrolled: err = %v, want ErrNotEnrolled", err)
	}
}

func TestBruteForceLocksTheOperatorOut(t *testing.T) {
	f := newFixture(t)
	f.enroll(t, alice)
	ctx := t.Context()
	right := f.code(t, alice, 0)
	for i := 0; i < f.o.MaxFailures; i++ {
		if err := f.svc.Verify(ctx, alice, wrongCode(right), "rotate", "billing"); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("attempt %d: err = %v, want ErrInvalidCode", i+1, err)
		}
	}
	if err := f.svc.Verify(ctx, alice, right, "rotate", "billing"); !errors.Is(err, mfa.ErrLockedOut) {
		t.Fatalf("right code while locked out: err = %v, want ErrLockedOut", err)
	}
	// Another replica (a second Service on the same Vault) agrees.
	other, err := mfa.New(f.o)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Verify(ctx, alice, right, "rotate", "billing"); !errors.Is(err, mfa.ErrLockedOut) {
		t.Fatalf("other replica: err = %v, want ErrLockedOut", err)
	}
	f.clk.Advance(f.o.Lockout)
	if err := f.svc.Verify(ctx, alice, f.code(t, alice, 0), "rotate", "billing"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}

func TestConcurrentReplicasAcceptACodeOnce(t *testing.T) {
	f := newFixture(t)
	f.enroll(t, alice)
	code := f.code(t, alice, 0)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		svc, err := mfa.New(f.o)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = svc.Verify(t.Context(), alice, code, "rotate", "billing")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, mfa.ErrReplayed):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("code accepted %d times, want once", ok)
	}
}

func TestEnrollRefusesReEnrolmentUntilDisabled(t *testing.T) {
	f := newFixture(t)
	f.enroll(t, alice)
	ctx := t.Context()
	if _, err := f.svc.Enroll(ctx, alice); !errors.Is(err, mfa.ErrAlreadyEnrolled) {
		t.Fatalf("re-enroll: err = %v, want ErrAlreadyEnrolled", err)
	}
	old := f.code(t, alice, 0)
	if err := f.svc.Disable(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Verify(ctx, alice, old, "rotate", "billing"); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("after disable: err = %v, want ErrNotEnrolled", err)
	}
	if err := f.svc.Disable(ctx, alice); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("disable twice: err = %v, want ErrNotEnrolled", err)
	}
	f.enroll(t, alice)
	if f.audit.count(rotator.EventMFAEnrolled, "") != 2 || f.audit.count(rotator.EventMFADisabled, "") != 1 {
		t.Error("enrol/disable events missing")
	}
}

func TestTwoPersonApproval(t *testing.T) {
	f := newFixture(t)
	for _, op := range []string{alice, bob, carol} {
		f.enroll(t, op)
	}
	ctx := t.Context()
	a, err := f.svc.RequestApproval(ctx, "revoke", "billing", alice, f.code(t, alice, 0), "leaked in a ticket")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || a.Status != mfa.StatusPending || !a.Expires.Equal(f.clk.Now().Add(time.Hour)) {
		t.Fatalf("approval = %+v", a)
	}
	f.clk.Advance(30 * time.Second)

	t.Run("the same operator approving is refused", func(t *testing.T) {
		if _, err := f.svc.Approve(ctx, a.ID, alice, f.code(t, alice, 0)); !errors.Is(err, mfa.ErrSameOperator) {
			t.Fatalf("err = %v, want ErrSameOperator", err)
		}
		// M1: the same entity under another display name (a second auth
		// mount) is still the requester; its seed is the requester's seed.
		if _, err := f.svc.Approve(ctx, a.ID, alice2, f.code(t, alice, 0)); !errors.Is(err, mfa.ErrSameOperator) {
			t.Fatalf("same entity, other mount: err = %v, want ErrSameOperator", err)
		}
		if _, err := f.svc.Approve(ctx, a.ID, "token-anon", f.code(t, alice, 0)); !errors.Is(err, mfa.ErrNoEntity) {
			t.Fatalf("token without entity: err = %v, want ErrNoEntity", err)
		}
	})
	t.Run("a wrong second factor is refused", func(t *testing.T) {
		if _, err := f.svc.Approve(ctx, a.ID, bob, f.code(t, alice, 0)); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("err = %v, want ErrInvalidCode", err)
		}
	})
	t.Run("a second operator approves once", func(t *testing.T) {
		got, err := f.svc.Approve(ctx, a.ID, bob, f.code(t, bob, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != mfa.StatusApproved || got.Approver != bob || got.Requester != alice || got.App != "billing" {
			t.Errorf("approval = %+v", got)
		}
		if _, err := f.svc.Approve(ctx, a.ID, carol, f.code(t, carol, 0)); !errors.Is(err, mfa.ErrApprovalUsed) {
			t.Fatalf("second approval: err = %v, want ErrApprovalUsed", err)
		}
	})
	t.Run("an unknown id is not found", func(t *testing.T) {
		if _, err := f.svc.Approve(ctx, "0123456789abcdef", bob, "123456"); !errors.Is(err, mfa.ErrApprovalNotFound) {
			t.Fatalf("err = %v, want ErrApprovalNotFound", err)
		}
	})
	if f.audit.count(rotator.EventApprovalRequested, rotator.OutcomeOK) != 1 || f.audit.count(rotator.EventApprovalGranted, rotator.OutcomeOK) != 1 {
		t.Error("approval events missing")
	}
	if f.audit.count(rotator.EventApprovalGranted, rotator.OutcomeDenied) != 3 {
		t.Errorf("denied approval events = %d, want 3 (same operator twice, used)", f.audit.count(rotator.EventApprovalGranted, rotator.OutcomeDenied))
	}
}

func TestApprovalsExpire(t *testing.T) {
	f := newFixture(t)
	f.enroll(t, alice)
	f.enroll(t, bob)
	ctx := t.Context()
	a, err := f.svc.RequestApproval(ctx, "revoke", "billing", alice, f.code(t, alice, 0), "")
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(f.o.ApprovalTTL)
	if _, err := f.svc.Approve(ctx, a.ID, bob, f.code(t, bob, 0)); !errors.Is(err, mfa.ErrApprovalExpired) {
		t.Fatalf("err = %v, want ErrApprovalExpired", err)
	}
	got, _, err := f.svc.Get(ctx, a.ID)
	if err != nil || got.Status != mfa.StatusExpired {
		t.Fatalf("after expiry: %+v, %v", got, err)
	}
	// Bob's code was not consumed by the refusal.
	if err := f.svc.Verify(ctx, bob, f.code(t, bob, 0), "revoke", "billing"); err != nil {
		t.Fatalf("bob's code after the refusal: %v", err)
	}
}

// TestSeedsAndCodesNeverLeak runs every operation and looks for the seeds
// and every code used in the logs and the audit events.
func TestSeedsAndCodesNeverLeak(t *testing.T) {
	f := newFixture(t)
	f.enroll(t, alice)
	f.enroll(t, bob)
	ctx := t.Context()
	var codes []string
	use := func(op string) string { c := f.code(t, op, 0); codes = append(codes, c); return c }
	a, err := f.svc.RequestApproval(ctx, "revoke", "billing", alice, use(alice), "why")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.svc.Verify(ctx, alice, use(alice), "reveal", "billing") // replay
	_ = f.svc.Verify(ctx, bob, wrongCode(use(bob)), "reveal", "billing")
	if _, err := f.svc.Approve(ctx, a.ID, bob, use(bob)); err != nil {
		t.Fatal(err)
	}
	_ = f.svc.Disable(ctx, alice)
	text := f.logs.String() + f.audit.raw.String()
	for op, seed := range f.seeds {
		if strings.Contains(text, seed) {
			t.Errorf("seed of %s leaked", op)
		}
	}
	for _, c := range codes {
		if strings.Contains(text, `"`+c+`"`) || strings.Contains(text, "="+c) {
			t.Errorf("code %s leaked", c)
		}
	}
	if !strings.Contains(f.logs.String(), "mfa code accepted") {
		t.Error("logs are empty: the leak check proves nothing")
	}
}
