package mfa

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// testSeed is RFC 6238's SHA-1 test key ("12345678901234567890") in base32.
const testSeed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func codeAt(t *testing.T, seed string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(seed, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMatchAcceptsOneStepOfSkewEitherSide(t *testing.T) {
	s := &Service{o: Options{Skew: 1}}
	now := time.Unix(59, 0) // RFC 6238 test vector time: step 1
	tests := []struct {
		name     string
		at       time.Time
		want     bool
		wantStep int64
	}{
		{"the current step matches", now, true, 1},
		{"one step back matches (clock skew)", now.Add(-30 * time.Second), true, 0},
		{"one step ahead matches (clock skew)", now.Add(30 * time.Second), true, 2},
		{"two steps ahead is refused", now.Add(60 * time.Second), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok := s.match(testSeed, codeAt(t, testSeed, tt.at), now)
			if ok != tt.want || (ok && step != tt.wantStep) {
				t.Errorf("match = step %d ok %v, want step %d ok %v", step, ok, tt.wantStep, tt.want)
			}
		})
	}
}

func TestMatchKnownRFC6238Vector(t *testing.T) {
	// RFC 6238 appendix B: T=59 s, SHA-1 → 94287082; six digits → 287082.
	s := &Service{o: Options{}}
	if _, ok := s.match(testSeed, "287082", time.Unix(59, 0)); !ok {
		t.Error("RFC 6238 test vector refused")
	}
}

func TestMatchRefusesMalformedCodes(t *testing.T) {
	s := &Service{o: Options{Skew: 1}}
	for _, code := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := s.match(testSeed, code, time.Unix(59, 0)); ok {
			t.Errorf("code %q accepted", code)
		}
	}
}

func TestAnOperatorIsAVaultEntity(t *testing.T) {
	const id = "324e1225-9340-0a86-b930-7441cb889548"
	tests := []struct {
		identity        string
		entity, display string
		wantErr         error
	}{
		{"userpass-alice (entity " + id + ")", id, "userpass-alice", nil},
		{"userpass-sso-alice (entity " + id + ")", id, "userpass-sso-alice", nil},
		{"entity " + id, id, "", nil},
		{id, id, "", nil},
		{"token-alice", "", "", ErrNoEntity},
		{"root", "", "", ErrNoEntity},
		{"", "", "", ErrNoEntity},
		{"token-alice (entity ../seeds/bob)", "", "", ErrInvalidOperator},
		{"token-alice (entity 324e1225-9340-0a86-b930-7441cb88954/)", "", "", ErrInvalidOperator},
	}
	for _, tt := range tests {
		op, err := ParseOperator(tt.identity)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseOperator(%q) error = %v, want %v", tt.identity, err, tt.wantErr)
			}
			continue
		}
		if err != nil || op.Entity != tt.entity || op.Display != tt.display {
			t.Errorf("ParseOperator(%q) = %+v, %v; want entity %q display %q", tt.identity, op, err, tt.entity, tt.display)
		}
	}
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New accepted options without vault, audit and logger")
	}
}
