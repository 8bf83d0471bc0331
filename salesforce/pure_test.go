package salesforce

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"delay seconds are honoured", "7", 7 * time.Second, true},
		{"an HTTP date in the future gives the difference", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"an HTTP date in the past means now", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"a missing header is absent", "", 0, false},
		{"a negative number is ignored", "-3", 0, false},
		{"garbage is ignored", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("Retry-After", tt.value)
			}
			got, ok := parseRetryAfter(h, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got (%v, %v), want (%v, %v)", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseLimitInfo(t *testing.T) {
	tests := []struct {
		name   string
		value  string
		want   rotator.APIUsage
		wantOK bool
	}{
		{"the documented api-usage form parses", "api-usage=10018/100000", rotator.APIUsage{Used: 10018, Limit: 100000}, true},
		{"api-bursts after a semicolon is tolerated", "api-usage=18/5000; api-bursts=1/750", rotator.APIUsage{Used: 18, Limit: 5000}, true},
		{"api-bursts first is tolerated", "api-bursts=1/750;api-usage=2/3", rotator.APIUsage{Used: 2, Limit: 3}, true},
		{"per-app usage separated by commas is skipped", "per-app-api-usage=5/100(appName=x), api-usage=9/10", rotator.APIUsage{Used: 9, Limit: 10}, true},
		{"spaces around parts are tolerated", "  api-usage = 1 / 2 ", rotator.APIUsage{Used: 1, Limit: 2}, true},
		{"an empty header is absent", "", rotator.APIUsage{}, false},
		{"only bursts is absent", "api-bursts=1/750", rotator.APIUsage{}, false},
		{"a zero limit is rejected", "api-usage=1/0", rotator.APIUsage{}, false},
		{"a negative count is rejected", "api-usage=-1/10", rotator.APIUsage{}, false},
		{"a missing slash is rejected", "api-usage=10", rotator.APIUsage{}, false},
		{"non-numbers are rejected", "api-usage=a/b", rotator.APIUsage{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseLimitInfo(tt.value)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseLimitInfo(%q) = (%+v, %v), want (%+v, %v)", tt.value, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestClassifyREST(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		code       string
		idempotent bool
		want       Class
	}{
		{"a 503 on a read is transient", 503, "SERVER_UNAVAILABLE", true, ClassTransient},
		{"a 500 on a read is transient", 500, "", true, ClassTransient},
		{"a 502 on a mutation is ambiguous", 502, "", false, ClassAmbiguous},
		{"a 503 on a mutation is ambiguous", 503, "", false, ClassAmbiguous},
		{"a 429 is transient even on a mutation", 429, "", false, ClassTransient},
		{"REQUEST_LIMIT_EXCEEDED is its own class", 403, "REQUEST_LIMIT_EXCEEDED", true, ClassRateLimited},
		{"REQUEST_LIMIT_EXCEEDED with an odd status is still rate limiting", 503, "REQUEST_LIMIT_EXCEEDED", false, ClassRateLimited},
		{"INSUFFICIENT_ACCESS is a permission problem", 403, "INSUFFICIENT_ACCESS", true, ClassPermission},
		{"a bare 403 is a permission problem", 403, "", true, ClassPermission},
		{"a 401 is an auth problem", 401, "INVALID_SESSION_ID", true, ClassAuth},
		{"a 404 is not found", 404, "NOT_FOUND", false, ClassNotFound},
		{"a 409 is an occupied slot", 409, "", false, ClassSlotOccupied},
		{"a 400 is final", 400, "INVALID_INPUT", true, ClassFinal},
		{"a 410 is final", 410, "", true, ClassFinal},
		{"a 412 is final", 412, "", false, ClassFinal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyREST(tt.status, tt.code, tt.idempotent); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClassifyOAuth(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
		want   Class
	}{
		{"invalid_client is a rejection", 400, "invalid_client", ClassAuth},
		{"invalid_client_id is a rejection", 400, "invalid_client_id", ClassAuth},
		{"invalid_client_credentials is a rejection like invalid_client", 400, "invalid_client_credentials", ClassAuth},
		{"invalid_grant is a rejection", 400, "invalid_grant", ClassAuth},
		{"inactive_user is a rejection", 400, "inactive_user", ClassAuth},
		{"rate_limit_exceeded is rate limiting", 400, "rate_limit_exceeded", ClassRateLimited},
		{"app_not_found is a configuration error", 400, "app_not_found", ClassConfig},
		{"unsupported_grant_type is a configuration error", 400, "unsupported_grant_type", ClassConfig},
		{"an unknown code is final", 400, "invalid_request", ClassFinal},
		{"a 503 without a body is transient", 503, "", ClassTransient},
		{"a 429 without a body is transient", 429, "", ClassTransient},
		{"a 400 without a body is final", 400, "", ClassFinal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyOAuth(tt.status, tt.code); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClassifyOAuthInvalidGrantTexts(t *testing.T) {
	tests := []struct {
		name, desc string
		want       Class
	}{
		{"a user who has not approved the consumer is a rejection", "user hasn't approved this consumer", ClassAuth},
		{"an expired JWT (expired authorization code) is a rejection", "expired authorization code", ClassAuth},
		{"an invalid assertion is a rejection", "invalid assertion", ClassAuth},
		{"a wrong audience is a rejection", "audience is invalid", ClassAuth},
		{"a missing run-as user is a configuration error", "no client credentials user enabled", ClassConfig},
		{"client credentials on the login host is a configuration error", "request not supported on this domain", ClassConfig},
		{"an app not installed in the org is a configuration error", "External client app is not installed in this org", ClassConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyOAuthError(400, "invalid_grant", tt.desc); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAPIErrorMatchesSentinels(t *testing.T) {
	all := []error{rotator.ErrNotFound, rotator.ErrRateLimited, rotator.ErrPermission, rotator.ErrRejected, rotator.ErrUnreachable, rotator.ErrAmbiguous, rotator.ErrSlotOccupied, rotator.ErrConflict}
	tests := []struct {
		name  string
		class Class
		want  []error
	}{
		{"transient matches unreachable", ClassTransient, []error{rotator.ErrUnreachable}},
		{"rate limited matches rate limited", ClassRateLimited, []error{rotator.ErrRateLimited}},
		{"auth matches rejected", ClassAuth, []error{rotator.ErrRejected}},
		{"permission matches permission", ClassPermission, []error{rotator.ErrPermission}},
		{"not found matches not found", ClassNotFound, []error{rotator.ErrNotFound}},
		{"slot occupied matches slot occupied", ClassSlotOccupied, []error{rotator.ErrSlotOccupied}},
		{"ambiguous matches ambiguous and unreachable", ClassAmbiguous, []error{rotator.ErrAmbiguous, rotator.ErrUnreachable}},
		{"final matches nothing", ClassFinal, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error = &APIError{Op: "GET /x", Status: 400, Class: tt.class}
			wrapped := errors.Join(errors.New("context"), err)
			for _, s := range all {
				want := false
				for _, w := range tt.want {
					want = want || w == s
				}
				if got := errors.Is(wrapped, s); got != want {
					t.Errorf("errors.Is(%v, %q) = %v, want %v", tt.class, s, got, want)
				}
			}
			var apiErr *APIError
			if !errors.As(wrapped, &apiErr) || apiErr.Class != tt.class {
				t.Errorf("errors.As lost the class")
			}
		})
	}
}

func TestAPIErrorRetryableOnlyWhenTransient(t *testing.T) {
	for c := ClassFinal; c <= ClassAmbiguous; c++ {
		e := &APIError{Class: c}
		if got, want := e.Retryable(), c == ClassTransient; got != want {
			t.Errorf("%v: Retryable() = %v, want %v", c, got, want)
		}
		if strings.HasPrefix(c.String(), "class(") {
			t.Errorf("class %d has no name", c)
		}
	}
}

func TestParseRESTError(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode string
		wantMsg  string
	}{
		{"the documented array shape", `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, "INVALID_SESSION_ID", "Session expired or invalid"},
		{"a bare object", `{"message":"nope","errorCode":"NOT_FOUND"}`, "NOT_FOUND", "nope"},
		{"an OAuth error object", `{"error":"invalid_grant","error_description":"expired"}`, "invalid_grant", "expired"},
		{"an HTML page gives nothing", `<html>503</html>`, "", ""},
		{"an empty array gives nothing", `[]`, "", ""},
		{"an empty body gives nothing", ``, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := parseRESTError([]byte(tt.body))
			if code != tt.wantCode || msg != tt.wantMsg {
				t.Errorf("got (%q, %q), want (%q, %q)", code, msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
	long := `[{"errorCode":"X","message":"` + strings.Repeat("a", 5000) + `"}]`
	if _, msg := parseRESTError([]byte(long)); len(msg) > maxMessage+4 {
		t.Errorf("message not truncated: %d bytes", len(msg))
	}
}

func TestNewValidatesOptions(t *testing.T) {
	jwtAuth := Auth{Method: AuthJWT, ClientID: "id", Username: "u@example.com", PrivateKey: testKeyPEM()}
	ccAuth := Auth{Method: AuthClientCredentials, ClientID: "id", ClientSecret: rotator.NewSecret(testClientSecret)}
	tests := []struct {
		name    string
		opts    Options
		wantErr string // a fragment naming the field
	}{
		{"jwt with defaults is valid", Options{Auth: jwtAuth}, ""},
		{"client credentials on My Domain is valid", Options{LoginURL: "https://acme.my.salesforce.com", Auth: ccAuth}, ""},
		{"client credentials on loopback is valid", Options{LoginURL: "http://127.0.0.1:1234", Auth: ccAuth}, ""},
		{"API version 64.0 is rejected", Options{Auth: jwtAuth, APIVersion: "64.0"}, "api version"},
		{"API version v66.0 is accepted", Options{Auth: jwtAuth, APIVersion: "v66.0"}, ""},
		{"a garbage API version is rejected", Options{Auth: jwtAuth, APIVersion: "latest"}, "api version"},
		{"plain http off loopback is rejected", Options{Auth: jwtAuth, LoginURL: "http://login.salesforce.com"}, "login url"},
		{"a login URL with a query is rejected", Options{Auth: jwtAuth, LoginURL: "https://login.salesforce.com?x=1"}, "login url"},
		{"client credentials on login.salesforce.com is rejected", Options{Auth: ccAuth}, "My Domain"},
		{"jwt without a username is rejected", Options{Auth: Auth{Method: AuthJWT, ClientID: "id", PrivateKey: testKeyPEM()}}, "auth.username"},
		{"jwt without a key is rejected", Options{Auth: Auth{Method: AuthJWT, ClientID: "id", Username: "u"}}, "auth.private_key"},
		{"jwt with a non-PEM key is rejected", Options{Auth: Auth{Method: AuthJWT, ClientID: "id", Username: "u", PrivateKey: rotator.NewSecret("not a key SUPERSECRET")}}, "auth.private_key"},
		{"client credentials without a secret is rejected", Options{LoginURL: "https://acme.my.salesforce.com", Auth: Auth{Method: AuthClientCredentials, ClientID: "id"}}, "auth.client_secret"},
		{"an unknown method is rejected", Options{Auth: Auth{Method: "password"}}, "auth.method"},
		{"a negative body bound is rejected", Options{Auth: jwtAuth, MaxBodyBytes: -1}, "max body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.APIVersion() < MinAPIVersion {
					t.Errorf("version %s", c.APIVersion())
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want an error about %s", tt.wantErr)
			}
			// Reporting which field is wrong is the contract here, so a
			// fragment check on the validation message is intended.
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not name %q", err, tt.wantErr)
			}
			assertNoLeak(t, "validation error", err.Error())
			if strings.Contains(err.Error(), "SUPERSECRET") {
				t.Errorf("validation error quotes key material: %v", err)
			}
		})
	}
}

func TestJWTAudienceCandidates(t *testing.T) {
	tests := []struct {
		name, login, myDomain, audience string
		want                            []string
		wantErr                         bool
	}{
		{"auto on the production login host tries the login URL", ProductionLoginURL, "", "", []string{ProductionLoginURL}, false},
		{"auto with a known My Domain tries it first, then login", ProductionLoginURL, "https://acme.my.salesforce.com", "auto", []string{"https://acme.my.salesforce.com", ProductionLoginURL}, false},
		{"auto on a My Domain token host tries it first", "https://acme.my.salesforce.com", "", "", []string{"https://acme.my.salesforce.com", ProductionLoginURL}, false},
		{"auto on a sandbox My Domain falls back to the sandbox login", "https://acme--dev.sandbox.my.salesforce.com", "", "", []string{"https://acme--dev.sandbox.my.salesforce.com", SandboxLoginURL}, false},
		{"login on the sandbox host is the sandbox login URL", SandboxLoginURL, "", "login", []string{SandboxLoginURL}, false},
		{"login on a My Domain host is the production login URL", "https://acme.my.salesforce.com", "", "login", []string{ProductionLoginURL}, false},
		{"mydomain uses the configured My Domain", ProductionLoginURL, "https://acme.my.salesforce.com/", "mydomain", []string{"https://acme.my.salesforce.com"}, false},
		{"mydomain without a known My Domain is an error", ProductionLoginURL, "", "mydomain", nil, true},
		{"an explicit URL is used as is", ProductionLoginURL, "", "https://site.force.com/customers", []string{"https://site.force.com/customers"}, false},
		{"a word that is no mode nor URL is an error", ProductionLoginURL, "", "sometimes", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Options{LoginURL: tt.login, MyDomainURL: tt.myDomain, Audience: tt.audience, Auth: Auth{Method: AuthJWT, ClientID: "id", Username: "u", Key: testKey()}})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want an error, got audiences %v", c.audiences)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.audiences, " ") != strings.Join(tt.want, " ") {
				t.Errorf("audiences %v, want %v", c.audiences, tt.want)
			}
		})
	}
}

func TestDecodeListShapes(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantIDs []string
		wantErr bool
	}{
		{"a wrapper with an array", `{"consumers":[{"id":"a"},{"id":"b"}],"nextPageUrl":null}`, []string{"a", "b"}, false},
		{"a wrapper with a single object", `{"consumers":{"id":"a"}}`, []string{"a"}, false},
		{"a wrapper with null", `{"consumers":null}`, nil, false},
		{"a bare array", `[{"id":"a"}]`, []string{"a"}, false},
		{"a bare item", `{"id":"a","key":"k"}`, []string{"a"}, false},
		{"a bare item whose value names the wrapper key", `{"id":"a","name":"consumers"}`, []string{"a"}, false},
		{"an empty object", `{}`, nil, false},
		{"an empty body", ``, nil, false},
		{"null", `null`, nil, false},
		{"a BOM and whitespace", "\ufeff \n[{\"id\":\"a\"}]", []string{"a"}, false},
		{"a string is an error", `"x"`, nil, true},
		{"a wrapper holding a string is an error", `{"consumers":"x"}`, nil, true},
		{"broken JSON is an error", `{"consumers":[`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := decodeConsumers([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			var ids []string
			for _, it := range items {
				ids = append(ids, it.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("ids %v, want %v", ids, tt.wantIDs)
			}
		})
	}
}

func TestParseSFTime(t *testing.T) {
	want := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-11-20T10:00:00.000Z", "2026-11-20T10:00:00.000+0000", "2026-11-20T10:00:00Z", "2026-11-20T11:00:00+01:00", "1795168800000"} {
		if got := parseSFTime(s); !got.Equal(want) {
			t.Errorf("parseSFTime(%q) = %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"", "yesterday", "-5"} {
		if got := parseSFTime(s); !got.IsZero() {
			t.Errorf("parseSFTime(%q) = %v, want zero", s, got)
		}
	}
}

func TestGateClosedWordings(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{"This feature is not currently enabled for this org.", true},
		{"The feature is not enabled", true},
		{"REST API access to secrets is not enabled for this user", true},
		{"A staged credential already exists", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := gateClosed(tt.msg); got != tt.want {
			t.Errorf("gateClosed(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}

func TestSleepCtxReturnsAtOnceWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if err := sleepCtx(t.Context(), 0); err != nil {
		t.Errorf("zero sleep: %v", err)
	}
}

// TestDefaultBackoffKeepsItsNumbers pins the client's retry pacing: 4
// attempts in all, 500ms doubling to 10s, equal jitter.
func TestDefaultBackoffKeepsItsNumbers(t *testing.T) {
	tests := []struct {
		name      string
		attempt   int
		rand      float64
		wantRetry bool
		wantWait  time.Duration
	}{
		{"the first retry waits between 250ms and 500ms", 1, 0, true, 250 * time.Millisecond},
		{"the third retry waits up to 2s", 3, 0.999999999, true, 2 * time.Second},
		{"the fourth failure is the last", 4, 0, false, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry, wait := DefaultBackoff(func() float64 { return tt.rand }).NextAttempt(tt.attempt)
			if retry != tt.wantRetry || wait.Round(time.Millisecond) != tt.wantWait {
				t.Errorf("got (%v, %s), want (%v, %s)", retry, wait, tt.wantRetry, tt.wantWait)
			}
		})
	}
	if retry, wait := DefaultMetadataPoll(59); !retry || wait != 5*time.Second {
		t.Errorf("poll 59: got (%v, %s), want (true, 5s)", retry, wait)
	}
	if retry, _ := DefaultMetadataPoll(60); retry {
		t.Error("poll 60: want no more polls")
	}
}
