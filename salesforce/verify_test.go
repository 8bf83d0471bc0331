package salesforce

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

var testPair = rotator.Credentials{Key: "3MVGSTAGEDKEY02", Secret: rotator.NewSecret(testStagedSecret)}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		h      http.HandlerFunc
		want   error
		wantOK bool
	}{
		{"a token means the pair works", serveGolden(t, 200, "oauth_token.json"), nil, true},
		{"invalid_client is a rejection", serveGolden(t, 400, "oauth_invalid_client.json"), rotator.ErrRejected, false},
		{"invalid_client_id is a rejection", serveGolden(t, 400, "oauth_invalid_client_id.json"), rotator.ErrRejected, false},
		{"invalid_grant on the wrong domain is a configuration error", serveGolden(t, 400, "oauth_invalid_grant_domain.json"), rotator.ErrMisconfigured, false},
		{"a 503 is unreachable", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, rotator.ErrUnreachable, false},
		{"a reset is unreachable", resetConn, rotator.ErrUnreachable, false},
		{"an oversized body is neither", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, string(make([]byte, 2<<20))) }, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.tokenHandler = tt.h
			v := NewVerifier(VerifierOptions{})
			err := v.Verify(t.Context(), f.srv.URL+tokenPath, testPair)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			} else if err == nil {
				t.Fatalf("err = nil")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if err != nil {
				assertNoLeak(t, "error", err.Error())
				if tt.want == rotator.ErrRejected && errors.Is(err, rotator.ErrUnreachable) {
					t.Errorf("a rejection also matches unreachable")
				}
			}
			form, _ := url.ParseQuery(f.all()[0].Body)
			if form.Get("grant_type") != "client_credentials" || form.Get("client_id") != testPair.Key || form.Get("client_secret") != testStagedSecret {
				t.Errorf("form %v", form.Has("client_secret"))
			}
		})
	}
}

func TestVerifyRefusesBadInput(t *testing.T) {
	v := NewVerifier(VerifierOptions{})
	if err := v.Verify(t.Context(), "http://example.com/services/oauth2/token", testPair); err == nil {
		t.Error("plain http off loopback accepted")
	}
	if err := v.Verify(t.Context(), "https://x.my.salesforce.com/services/oauth2/token", rotator.Credentials{Key: "k"}); err == nil {
		t.Error("empty secret accepted")
	}
}

func TestVerifyWithRetry(t *testing.T) {
	tests := []struct {
		name       string
		rejections int // how many attempts fail before success
		failWith   string
		policy     rotator.BackoffFunc
		want       error
		wantCalls  int
		wantWaits  int
	}{
		{"propagation delay: rejections are retried until accepted", 2, "oauth_invalid_client_id.json", rotator.Backoff{Base: time.Second, Max: time.Minute, Attempts: 4}.NextAttempt, nil, 3, 2},
		{"rejections beyond the bound give up with ErrRejected", 10, "oauth_invalid_client.json", rotator.Backoff{Base: time.Second, Max: time.Minute, Attempts: 2}.NextAttempt, rotator.ErrRejected, 3, 2},
		{"a final error that is not a rejection stops at once", 10, "oauth_unsupported_grant.json", rotator.Backoff{Base: time.Second, Max: time.Minute, Attempts: 4}.NextAttempt, nil, 1, 0},
		{"a nil policy tries once", 10, "oauth_invalid_client.json", nil, rotator.ErrRejected, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var n atomic.Int32
			f.tokenHandler = func(w http.ResponseWriter, r *http.Request) {
				if int(n.Add(1)) <= tt.rejections {
					serveGolden(t, 400, tt.failWith)(w, r)
					return
				}
				serveGolden(t, 200, "oauth_token.json")(w, r)
			}
			s := &sleeps{}
			v := NewVerifier(VerifierOptions{Sleep: s.sleep})
			err := v.VerifyWithRetry(t.Context(), f.srv.URL+tokenPath, testPair, tt.policy)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && tt.wantCalls > tt.rejections && err != nil {
				t.Errorf("err = %v, want success", err)
			}
			if got := int(n.Load()); got != tt.wantCalls {
				t.Errorf("calls %d, want %d", got, tt.wantCalls)
			}
			if got := len(s.waits()); got != tt.wantWaits {
				t.Errorf("waits %d, want %d", got, tt.wantWaits)
			}
		})
	}
}

// x/oauth2's RetrieveError embeds the raw body in its text: a token
// endpoint that echoes the secret (in its description or elsewhere in the
// body) must not get it into our error, for either grant.
func TestTokenErrorsNeverEchoTheSecret(t *testing.T) {
	body := `{"error":"invalid_client","error_description":"bad secret ` + testStagedSecret + `","debug":"` + testStagedSecret + `"}`
	f := newFake(t)
	f.tokenHandler = func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 400, body) }
	err := NewVerifier(VerifierOptions{}).Verify(t.Context(), f.srv.URL+tokenPath, testPair)
	if !errors.Is(err, rotator.ErrRejected) {
		t.Fatalf("err = %v, want a rejection", err)
	}
	assertNoLeak(t, "verify error", err.Error())
	if strings.Contains(err.Error(), testStagedSecret) {
		t.Errorf("the secret is in the error: %v", err)
	}
	// A 2xx that is not a token: x/oauth2's parse error may quote the body.
	f.tokenHandler = func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, `not json `+testStagedSecret) }
	err = NewVerifier(VerifierOptions{}).Verify(t.Context(), f.srv.URL+tokenPath, testPair)
	if err == nil || strings.Contains(err.Error(), testStagedSecret) {
		t.Errorf("err = %v, want a parse error without the body", err)
	}
}
