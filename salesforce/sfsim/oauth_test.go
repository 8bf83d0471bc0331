package sfsim

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestClientCredentialsFlow(t *testing.T) {
	s := start(t, testConfig(t))
	tests := []struct {
		name      string
		org       string
		form      url.Values
		basic     [2]string
		wantCode  string // "" = success
		wantDesc  string
		wantOrgID string
	}{
		{name: "credentials in the body get a token at the Dev Hub", org: hub,
			form: ccForm(billingKey, billingSecret), wantOrgID: "00D00000000000DHUB"},
		{name: "credentials in a Basic header get a token", org: hub,
			form: url.Values{"grant_type": {"client_credentials"}}, basic: [2]string{billingKey, billingSecret}},
		{name: "a wrong secret is invalid_client", org: hub,
			form: ccForm(billingKey, "nope"), wantCode: "invalid_client", wantDesc: "invalid client credentials"},
		{name: "an unknown key is invalid_client_id", org: hub,
			form: ccForm("3MVG9unknown", "x"), wantCode: "invalid_client_id", wantDesc: "client identifier invalid"},
		{name: "the login host refuses the flow", org: LoginHost,
			form: ccForm(billingKey, billingSecret), wantCode: "invalid_grant", wantDesc: "request not supported on this domain"},
		{name: "an ECA without a run-as user is refused", org: hub,
			form: ccForm(supportKey(t, s, supportCID1)), wantCode: "invalid_grant", wantDesc: "no client credentials user enabled"},
		{name: "a subscriber org accepts an installed ECA", org: acme,
			form: ccForm(billingKey, billingSecret)},
		{name: "a subscriber org refuses an ECA it has not installed", org: acme,
			form: ccForm(analyticKey, analyticSec), wantCode: "app_not_found", wantDesc: "External client app is not installed in this org"},
		{name: "an installed ECA without a run-as user in the org is refused", org: acme,
			form: ccForm(supportKey(t, s, supportCID1)), wantCode: "invalid_grant", wantDesc: "no client credentials user enabled"},
		{name: "an unknown grant type is unsupported_grant_type", org: hub,
			form: url.Values{"grant_type": {"password"}}, wantCode: "unsupported_grant_type"},
		{name: "a missing grant type is unsupported_grant_type", org: hub,
			form: url.Values{}, wantCode: "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, s.TokenURL(tt.org), strings.NewReader(tt.form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.basic[0] != "" {
				req.SetBasicAuth(tt.basic[0], tt.basic[1])
			}
			res, err := freshClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			r := response{status: res.StatusCode, header: res.Header}
			r.body = readAll(t, res)
			if tt.wantCode != "" {
				e := r.oauthErr(t)
				if r.status != http.StatusBadRequest || e.Error != tt.wantCode || (tt.wantDesc != "" && e.Description != tt.wantDesc) {
					t.Fatalf("got %d %+v, want 400 %s %q", r.status, e, tt.wantCode, tt.wantDesc)
				}
				return
			}
			if r.status != http.StatusOK {
				t.Fatalf("got %d %s, want 200", r.status, r.body)
			}
			var tr tokenResponse
			r.decode(t, &tr)
			if tr.InstanceURL != s.OrgURL(tt.org) || tr.TokenType != "Bearer" || tr.Scope == "" || tr.Signature == "" {
				t.Errorf("got %+v, want instance_url %s, Bearer, scope and signature", tr, s.OrgURL(tt.org))
			}
			if !regexp.MustCompile(`^\d{13}$`).MatchString(tr.IssuedAt) {
				t.Errorf("issued_at = %q, want 13 digits", tr.IssuedAt)
			}
			if !strings.HasPrefix(tr.ID, s.LoginURL()+"/id/00D") {
				t.Errorf("id = %q, want %s/id/00D…/005…", tr.ID, s.LoginURL())
			}
			if tt.wantOrgID != "" && !strings.HasPrefix(tr.AccessToken, tt.wantOrgID+"!") {
				t.Errorf("access_token does not start with the org id %s", tt.wantOrgID)
			}
		})
	}
}

// supportKey returns a Support consumer's generated key and secret.
func supportKey(t *testing.T, s *Sim, cid string) (string, string) {
	t.Helper()
	cs, err := s.ConsumerState(hub, "Support", cid)
	if err != nil {
		t.Fatal(err)
	}
	return cs.Key, cs.Secret
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJWTBearerFlow(t *testing.T) {
	s := start(t, testConfig(t))
	k, other := keys(t)
	now := s.Now()
	good := func() map[string]any {
		return map[string]any{"iss": rotatorKey, "sub": adminUser, "aud": s.LoginURL(), "exp": now.Add(2 * time.Minute).Unix()}
	}
	with := func(key string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	tests := []struct {
		name     string
		host     string
		key      any // *rsa.PrivateKey
		alg      string
		claims   map[string]any
		raw      string
		wantCode string
		wantDesc string
	}{
		{name: "a valid assertion at the Dev Hub My Domain gets a token", host: hub, claims: good()},
		{name: "a valid assertion at the login host gets a token for the user's org", host: LoginHost, claims: good()},
		{name: "the My Domain URL is an accepted audience", host: hub, claims: with("aud", s.OrgURL(hub))},
		{name: "an audience array is accepted by the lenient profile", host: hub, claims: with("aud", []string{"x", s.LoginURL()})},
		{name: "a far-future expiry logs in", host: hub, claims: with("exp", now.Add(100*365*24*time.Hour).Unix())},
		{name: "an expiry written in milliseconds logs in", host: hub, claims: with("exp", now.Add(time.Minute).UnixMilli())},
		{name: "an absurdly large expiry logs in without overflowing", host: hub, claims: with("exp", 1e300)},
		{name: "prn wins over sub", host: hub, claims: map[string]any{"iss": rotatorKey, "sub": "nobody@x", "prn": adminUser,
			"aud": s.LoginURL(), "exp": now.Add(time.Minute).Unix()}},
		{name: "a signature by another key is an invalid assertion", host: hub, key: other, claims: good(),
			wantCode: "invalid_grant", wantDesc: "invalid assertion"},
		{name: "an HS256 header is an invalid assertion", host: hub, alg: "HS256", claims: good(),
			wantCode: "invalid_grant", wantDesc: "invalid assertion"},
		{name: "a malformed assertion is invalid", host: hub, raw: "not.a.jwt!",
			wantCode: "invalid_grant", wantDesc: "invalid assertion"},
		{name: "a foreign audience is invalid", host: hub, claims: with("aud", "https://login.salesforce.com"),
			wantCode: "invalid_grant", wantDesc: "audience is invalid"},
		{name: "an expired assertion is refused", host: hub, claims: with("exp", now.Add(-time.Second).Unix()),
			wantCode: "invalid_grant", wantDesc: "expired authorization code"},
		{name: "a negative expiry is expired", host: hub, claims: with("exp", -5),
			wantCode: "invalid_grant", wantDesc: "expired authorization code"},
		{name: "a missing expiry is an invalid assertion", host: hub, claims: with("exp", nil),
			wantCode: "invalid_grant", wantDesc: "invalid assertion"},
		{name: "a user that is not pre-authorized has not approved the consumer", host: hub, claims: with("sub", intUser),
			wantCode: "invalid_grant", wantDesc: "user hasn't approved this consumer"},
		{name: "an unknown user has not approved the consumer", host: hub, claims: with("sub", "nobody@x"),
			wantCode: "invalid_grant", wantDesc: "user hasn't approved this consumer"},
		{name: "an unknown issuer is invalid_client_id", host: hub, claims: with("iss", "3MVG9nope"),
			wantCode: "invalid_client_id"},
		{name: "an ECA without a certificate does not do JWT", host: hub, claims: with("iss", billingKey),
			wantCode: "invalid_grant", wantDesc: "JWT bearer flow is not enabled for this app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertion := tt.raw
			if assertion == "" {
				signer := k
				if tt.key != nil {
					signer = other
				}
				alg := tt.alg
				if alg == "" {
					alg = "RS256"
				}
				assertion = signJWT(t, signer, alg, tt.claims)
			}
			res := postForm(t, s.TokenURL(tt.host), url.Values{"grant_type": {JWTBearerGrant}, "assertion": {assertion}})
			if tt.wantCode != "" {
				e := res.oauthErr(t)
				if res.status != http.StatusBadRequest || e.Error != tt.wantCode || (tt.wantDesc != "" && e.Description != tt.wantDesc) {
					t.Fatalf("got %d %+v, want 400 %s %q", res.status, e, tt.wantCode, tt.wantDesc)
				}
				return
			}
			if res.status != http.StatusOK {
				t.Fatalf("got %d %s, want 200", res.status, res.body)
			}
			var tr tokenResponse
			res.decode(t, &tr)
			if tr.InstanceURL != s.OrgURL(hub) || !strings.HasSuffix(tr.ID, "/005000000000000ADM") {
				t.Errorf("got instance_url %s id %s, want the Dev Hub and the admin user", tr.InstanceURL, tr.ID)
			}
			if res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage", tr.AccessToken, ""); res.status != http.StatusOK {
				t.Errorf("the JWT token does not work on REST: %d %s", res.status, res.body)
			}
		})
	}
}

func TestJWTAudiencesAreConfigurable(t *testing.T) {
	cfg := testConfig(t)
	cfg.Behavior.JWTAudiences = []string{"https://login.salesforce.com"}
	s := start(t, cfg)
	k, _ := keys(t)
	for _, tc := range []struct {
		name string
		aud  string
		want int
	}{
		{"the configured audience is accepted", "https://login.salesforce.com", http.StatusOK},
		{"the sim's login URL is no longer accepted", s.LoginURL(), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := signJWT(t, k, "RS256", map[string]any{"iss": rotatorKey, "sub": adminUser, "aud": tc.aud, "exp": s.Now().Add(time.Minute).Unix()})
			res := postForm(t, s.TokenURL(hub), url.Values{"grant_type": {JWTBearerGrant}, "assertion": {a}})
			if res.status != tc.want {
				t.Fatalf("got %d %s, want %d", res.status, res.body, tc.want)
			}
		})
	}
}

func TestAccessTokens(t *testing.T) {
	s := start(t, testConfig(t))
	tok := adminToken(t, s)
	acmeTok := token(t, s, acme, billingKey, billingSecret)
	usage := api(s, hub, "65.0") + "/usage"
	if res := call(t, http.MethodGet, usage, tok, ""); res.status != http.StatusOK {
		t.Fatalf("fresh token: got %d %s", res.status, res.body)
	}
	tests := []struct {
		name    string
		token   string
		advance time.Duration
	}{
		{name: "a made-up token is an invalid session", token: "00Dxx!nope"},
		{name: "no token is an invalid session", token: ""},
		{name: "another org's token is an invalid session", token: acmeTok},
		{name: "a token past its TTL is an invalid session", token: tok, advance: DefaultTokenTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Advance(tt.advance)
			res := call(t, http.MethodGet, usage, tt.token, "")
			var errs []restError
			res.decode(t, &errs)
			want := restError{Message: "Session expired or invalid", ErrorCode: "INVALID_SESSION_ID"}
			if res.status != http.StatusUnauthorized || len(errs) != 1 || errs[0] != want {
				t.Fatalf("got %d %s, want 401 %+v", res.status, res.body, want)
			}
		})
	}
}
