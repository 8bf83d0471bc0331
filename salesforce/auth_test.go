package salesforce

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestJWTAssertionCarriesTheDocumentedClaims(t *testing.T) {
	f := newFake(t)
	f.handle("GET "+apiPrefix+"/apps/oauth/credentials/{app}/{consumer}", serveGolden(t, 200, "credentials_key.json"))
	c, _, _ := testClient(t, f, func(o *Options) { o.Audience = "https://test.salesforce.com" })
	if _, err := c.PrimaryKey(t.Context(), testApp, testConsumer); err != nil {
		t.Fatal(err)
	}
	reqs := f.all()
	if len(reqs) == 0 || reqs[0].Path != tokenPath {
		t.Fatalf("first request was not the token request: %+v", reqs)
	}
	form, err := url.ParseQuery(reqs[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := form.Get("grant_type"); got != jwtGrantType {
		t.Errorf("grant_type %q", got)
	}
	if ct := reqs[0].Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", ct)
	}
	now := time.Now()
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(form.Get("assertion"), &claims, func(tok *jwt.Token) (any, error) {
		return &testKey().PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil || !tok.Valid {
		t.Fatalf("assertion does not verify: %v", err)
	}
	if claims.Issuer != "3MVGCLIENT" || claims.Subject != "rotator@example.com" {
		t.Errorf("iss/sub = %q/%q", claims.Issuer, claims.Subject)
	}
	if exp := claims.ExpiresAt.Sub(now); exp <= 0 || exp > 3*time.Minute {
		t.Errorf("exp is %v from now, want within 3 minutes", exp)
	}
	// aud must be one JSON string, never an array (golang-jwt's default
	// for ClaimStrings): every Salesforce reference client sends a string.
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(form.Get("assertion"), ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(payload, &raw); err != nil {
		t.Fatal(err)
	}
	if aud, ok := raw["aud"].(string); !ok || aud != "https://test.salesforce.com" {
		t.Errorf("aud = %#v, want the JSON string https://test.salesforce.com", raw["aud"])
	}
}

func TestClientCredentialsInBodyOrBasicHeader(t *testing.T) {
	tests := []struct {
		name  string
		basic bool
	}{
		{"credentials travel in the form body by default", false},
		{"credentials travel in a Basic header when asked", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET "+apiPrefix+"/apps/oauth/credentials/{app}/{consumer}", serveGolden(t, 200, "credentials_key.json"))
			c, _, _ := testClient(t, f, func(o *Options) {
				o.Auth = Auth{Method: AuthClientCredentials, ClientID: "3MVG+ID", ClientSecret: rotator.NewSecret(testClientSecret), Basic: tt.basic}
			})
			if _, err := c.PrimaryKey(t.Context(), testApp, testConsumer); err != nil {
				t.Fatal(err)
			}
			r := f.all()[0]
			form, _ := url.ParseQuery(r.Body)
			if form.Get("grant_type") != "client_credentials" {
				t.Errorf("grant_type %q", form.Get("grant_type"))
			}
			user, pass, hasBasic := (&http.Request{Header: r.Header}).BasicAuth()
			if tt.basic {
				if !hasBasic || form.Has("client_secret") {
					t.Fatalf("want Basic only, got header=%v body secret=%v", hasBasic, form.Has("client_secret"))
				}
				if u, _ := url.QueryUnescape(user); u != "3MVG+ID" {
					t.Errorf("basic user %q", user)
				}
				if p, _ := url.QueryUnescape(pass); p != testClientSecret {
					t.Errorf("basic password mismatch")
				}
				return
			}
			if hasBasic || form.Get("client_id") != "3MVG+ID" || form.Get("client_secret") != testClientSecret {
				t.Errorf("want body credentials, got header=%v form=%v", hasBasic, form.Has("client_secret"))
			}
		})
	}
}

func TestTokenIsCachedAndInstanceURLIsUsed(t *testing.T) {
	api := newFake(t)
	api.handle("GET "+apiPrefix+"/apps/oauth/credentials/{app}/{consumer}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeJSON(w, 401, golden(t, "error_session.json"))
			return
		}
		writeJSON(w, 200, golden(t, "credentials_key.json"))
	})
	login := newFake(t)
	login.tokenHandler = func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, `{"access_token":"`+testToken+`","instance_url":"`+api.srv.URL+`"}`)
	}
	c, _, _ := testClient(t, login)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := c.PrimaryKey(t.Context(), testApp, testConsumer); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := login.tokenCount(); got != 1 {
		t.Errorf("token requests = %d, want 1 (cached)", got)
	}
	if got := len(api.requests()); got != 5 {
		t.Errorf("API requests at instance_url = %d, want 5", got)
	}
	if got := len(login.requests()); got != 0 {
		t.Errorf("API requests at the login host = %d, want 0", got)
	}
}

func TestInvalidSessionReauthenticatesOnceAndRetriesOnce(t *testing.T) {
	tests := []struct {
		name       string
		failures   int // 401s before success
		wantErr    error
		wantTokens int
		wantCalls  int
	}{
		{"one expired session is renewed transparently", 1, nil, 2, 2},
		{"a second 401 in a row is a rejection", 2, rotator.ErrRejected, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var mu sync.Mutex
			n := 0
			f.handle("POST "+apiPrefix+"/apps/oauth/credentials/{app}/{consumer}/staged", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				fail := n <= tt.failures
				mu.Unlock()
				if fail {
					writeJSON(w, 401, golden(t, "error_session.json"))
					return
				}
				writeJSON(w, 201, golden(t, "staged_post.json"))
			})
			c, _, logs := testClient(t, f)
			_, err := c.Stage(t.Context(), testApp, testConsumer)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := f.tokenCount(); got != tt.wantTokens {
				t.Errorf("token requests %d, want %d", got, tt.wantTokens)
			}
			if got := len(f.requests()); got != tt.wantCalls {
				t.Errorf("API calls %d, want %d", got, tt.wantCalls)
			}
			assertLogsClean(t, logs)
			if err != nil {
				assertNoLeak(t, "error", err.Error())
			}
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		want       error
		wantClass  Class
		wantTokens int
	}{
		{"invalid_grant on the wrong domain is a final configuration error", 400, "oauth_invalid_grant_domain.json", rotator.ErrMisconfigured, ClassConfig, 1},
		{"invalid_client is a final rejection", 400, "oauth_invalid_client.json", rotator.ErrRejected, ClassAuth, 1},
		{"unsupported_grant_type is a final configuration error", 400, "oauth_unsupported_grant.json", rotator.ErrMisconfigured, ClassConfig, 1},
		{"a 503 from the token host is retried then unreachable", 503, "", rotator.ErrUnreachable, ClassTransient, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			body := ""
			if tt.body != "" {
				body = golden(t, tt.body)
			}
			f.tokenHandler = func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, tt.status, body) }
			c, _, logs := testClient(t, f, func(o *Options) {
				o.Auth = Auth{Method: AuthClientCredentials, ClientID: "id", ClientSecret: rotator.NewSecret(testClientSecret)}
			})
			_, err := c.Consumers(t.Context(), testApp)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Class != tt.wantClass {
				t.Fatalf("err = %v, want class %v", err, tt.wantClass)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err %v does not match %v", err, tt.want)
			}
			if got := f.tokenCount(); got != tt.wantTokens {
				t.Errorf("token requests %d, want %d", got, tt.wantTokens)
			}
			if len(f.requests()) != 0 {
				t.Errorf("API was called without a token")
			}
			assertNoLeak(t, "error", err.Error())
			assertLogsClean(t, logs)
		})
	}
}

func TestTokenResponseInstanceURLIsChecked(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"an http instance off loopback is refused", `{"access_token":"` + testToken + `","instance_url":"http://evil.example.com"}`},
		{"a missing instance_url is refused", `{"access_token":"` + testToken + `"}`},
		{"a missing access_token is refused", `{"instance_url":"https://x.my.salesforce.com"}`},
		{"a non-JSON body is refused", `<html>hello</html>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.tokenHandler = func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, tt.body) }
			c, _, _ := testClient(t, f)
			_, err := c.Consumers(t.Context(), testApp)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Class != ClassFinal {
				t.Fatalf("err = %v, want a final error", err)
			}
			assertNoLeak(t, "error", err.Error())
		})
	}
}

func TestBasicHeaderIsNeverInErrors(t *testing.T) {
	f := newFake(t)
	f.tokenHandler = func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, golden(t, "oauth_invalid_client.json"))
	}
	v := NewVerifier(VerifierOptions{Basic: true})
	err := v.Verify(t.Context(), f.srv.URL+tokenPath, rotator.Credentials{Key: "k", Secret: rotator.NewSecret(testSecret)})
	if !errors.Is(err, rotator.ErrRejected) {
		t.Fatalf("err = %v", err)
	}
	enc := base64.StdEncoding.EncodeToString([]byte("k:" + testSecret))
	if strings.Contains(err.Error(), enc) {
		t.Errorf("error carries the Basic header")
	}
	assertNoLeak(t, "error", err.Error())
}
