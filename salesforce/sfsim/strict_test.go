package sfsim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// strictConfig is testConfig with the strict profile (the default).
func strictConfig(t testing.TB) Config {
	cfg := testConfig(t)
	cfg.Profile = ProfileStrict
	return cfg
}

func TestProfileSetsTheLenientSwitches(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		want    bool
	}{
		{"an empty profile is strict", "", false},
		{"the strict profile keeps every lenient switch off", ProfileStrict, false},
		{"the lenient profile turns every lenient switch on", ProfileLenient, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Profile = tt.profile
			b := start(t, cfg).Behavior()
			if b.ArrayAudience != tt.want || b.UsageListsAll != tt.want || b.ReadsUngated != tt.want {
				t.Errorf("switches %+v, want all %v", b, tt.want)
			}
		})
	}
	cfg := testConfig(t)
	cfg.Profile = "relaxed"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "profile") {
		t.Errorf("Validate(profile relaxed) = %v, want a profile error", err)
	}
}

func TestArrayAudienceSwitch(t *testing.T) {
	k, _ := keys(t)
	for _, allow := range []bool{false, true} {
		cfg := strictConfig(t)
		cfg.Behavior.ArrayAudience = allow
		s := start(t, cfg)
		claims := map[string]any{"iss": rotatorKey, "sub": adminUser, "aud": []string{s.LoginURL()}, "exp": s.Now().Add(time.Minute).Unix()}
		res := postForm(t, s.TokenURL(hub), url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signJWT(t, k, "RS256", claims)}})
		if allow && res.status != 200 {
			t.Errorf("arrayAudience on: an array aud got %d %s, want 200", res.status, res.body)
		}
		if !allow && (res.status != 400 || res.oauthErr(t).Description != "audience is invalid") {
			t.Errorf("arrayAudience off: an array aud got %d %s, want 400 audience is invalid", res.status, res.body)
		}
		claims["aud"] = s.LoginURL()
		if res := postForm(t, s.TokenURL(hub), url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signJWT(t, k, "RS256", claims)}}); res.status != 200 {
			t.Errorf("arrayAudience %v: a string aud got %d %s", allow, res.status, res.body)
		}
	}
}

func TestJWTExpiry(t *testing.T) {
	k, _ := keys(t)
	tests := []struct {
		name     string
		max      time.Duration
		exp      func(now time.Time) any
		wantDesc string // "" = logs in
	}{
		{"a far-future exp logs in", 0, func(n time.Time) any { return n.Add(50 * 365 * 24 * time.Hour).Unix() }, ""},
		{"an exp in milliseconds logs in", 0, func(n time.Time) any { return n.Add(time.Minute).UnixMilli() }, ""},
		{"a huge exp does not overflow", 0, func(time.Time) any { return 9.9e300 }, ""},
		{"a fractional exp in the future logs in", 0, func(n time.Time) any { return float64(n.Unix()) + 60.5 }, ""},
		{"a past exp is refused with Salesforce's message", 0, func(n time.Time) any { return n.Add(-time.Second).Unix() }, "expired authorization code"},
		{"an exp equal to now is expired", 0, func(n time.Time) any { return n.Unix() }, "expired authorization code"},
		{"jwtMaxLifetime set refuses a far exp", time.Minute, func(n time.Time) any { return n.Add(2 * time.Minute).Unix() }, "assertion expiration is too far in the future"},
		{"jwtMaxLifetime set accepts a near exp", time.Minute, func(n time.Time) any { return n.Add(30 * time.Second).Unix() }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := strictConfig(t)
			cfg.Behavior.JWTMaxLifetime = Duration(tt.max)
			s := start(t, cfg)
			claims := map[string]any{"iss": rotatorKey, "sub": adminUser, "aud": s.LoginURL(), "exp": tt.exp(s.Now())}
			res := postForm(t, s.TokenURL(hub), url.Values{"grant_type": {JWTBearerGrant}, "assertion": {signJWT(t, k, "RS256", claims)}})
			if tt.wantDesc == "" {
				if res.status != 200 {
					t.Fatalf("got %d %s, want 200", res.status, res.body)
				}
				return
			}
			if e := res.oauthErr(t); res.status != 400 || e.Error != "invalid_grant" || e.Description != tt.wantDesc {
				t.Fatalf("got %d %+v, want 400 invalid_grant %q", res.status, e, tt.wantDesc)
			}
		})
	}
}

func usageNames(t *testing.T, s *Sim, tok string) []string {
	t.Helper()
	res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage", tok, "")
	if res.status != 200 {
		t.Fatalf("usage: %d %s", res.status, res.body)
	}
	var body struct {
		Apps []usageApp `json:"apps"`
	}
	res.decode(t, &body)
	var out []string
	for _, a := range body.Apps {
		out = append(out, a.DeveloperName)
	}
	return out
}

func TestUsageListsAllSwitch(t *testing.T) {
	tests := []struct {
		name     string
		all      bool
		useAlso  bool // get a Billing token first
		expire   bool // then let every token lapse
		wantApps string
	}{
		{"strict usage lists only apps with an active token", false, false, false, "rotator"},
		{"strict usage lists an app once it has a token", false, true, false, "rotator Billing"},
		{"strict usage drops apps whose tokens lapsed (the caller's own is fresh)", false, true, true, "rotator"},
		{"usageListsAll lists every app", true, false, false, "rotator Billing Support Analytics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := strictConfig(t)
			cfg.Behavior.UsageListsAll = tt.all
			cfg.Orgs[0].SecretAccess = true
			s := start(t, cfg)
			if tt.useAlso {
				token(t, s, hub, billingKey, billingSecret)
			}
			if tt.expire {
				s.Advance(DefaultTokenTTL + time.Minute)
			}
			got := strings.Join(usageNames(t, s, adminToken(t, s)), " ")
			if got != tt.wantApps {
				t.Errorf("usage lists %q, want %q", got, tt.wantApps)
			}
		})
	}
}

func TestReadsUngatedSwitch(t *testing.T) {
	for _, ungated := range []bool{false, true} {
		cfg := strictConfig(t)
		cfg.Behavior.ReadsUngated = ungated
		cfg.Behavior.UsageListsAll = true
		s := start(t, cfg)
		tok := adminToken(t, s)
		for _, u := range []string{api(s, hub, "65.0") + "/usage", api(s, hub, "65.0") + "/credentials/" + billingID, consumerPath(s, billingID, billingCID) + "?part=key"} {
			res := call(t, http.MethodGet, u, tok, "")
			switch {
			case ungated && res.status != 200:
				t.Errorf("readsUngated on, setting off: GET %s = %d %s, want 200", u, res.status, res.body)
			case !ungated && (res.status != 403 || res.restErr(t) != defaultAccessCode):
				t.Errorf("readsUngated off, setting off: GET %s = %d %s, want 403 %s", u, res.status, res.body, defaultAccessCode)
			}
		}
		// Secrets stay gated either way.
		if res := call(t, http.MethodGet, consumerPath(s, billingID, billingCID)+"?part=secret", tok, ""); res.status != 403 {
			t.Errorf("readsUngated %v: a secret read with the setting off = %d, want 403", ungated, res.status)
		}
		s.SetSecretAccess(hub, true)
		if res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage", tok, ""); res.status != 200 {
			t.Errorf("readsUngated %v, setting on: usage = %d", ungated, res.status)
		}
	}
}

func TestSettingDelaySwitch(t *testing.T) {
	for _, delay := range []time.Duration{0, 2 * time.Second} {
		cfg := strictConfig(t)
		cfg.Behavior.SettingDelay = Duration(delay)
		s := start(t, cfg)
		tok := adminToken(t, s)
		res := call(t, http.MethodPost, s.OrgURL(hub)+"/services/Soap/m/65.0", "", envelope(tok, updateOn))
		if res.status != 200 {
			t.Fatalf("updateMetadata: %d %s", res.status, res.body)
		}
		secret := func() string {
			res := call(t, http.MethodGet, consumerPath(s, billingID, billingCID)+"?part=keyandsecret", tok, "")
			if res.status != 200 {
				t.Fatalf("keyandsecret: %d %s", res.status, res.body)
			}
			var c credsJSON
			res.decode(t, &c)
			if c.Secret == nil {
				return ""
			}
			return *c.Secret
		}
		if delay == 0 {
			if secret() != billingSecret {
				t.Errorf("settingDelay 0: the secret is not returned at once")
			}
			continue
		}
		if got := secret(); got != "" {
			t.Errorf("settingDelay %s: a 200 right after the update carries the secret", delay)
		}
		// A POST staged meanwhile creates an entry without its secret.
		st := stage(t, s, tok, billingID, billingCID)
		if st.Secret != "" || st.ID == "" {
			t.Errorf("settingDelay: POST staged during the delay = %+v, want an entry without secret", st)
		}
		s.Advance(delay)
		if secret() != billingSecret {
			t.Errorf("settingDelay %s: the secret is still withheld after the delay", delay)
		}
		var coll stagedColl
		call(t, http.MethodGet, consumerPath(s, billingID, billingCID)+"/staged", tok, "").decode(t, &coll)
		if len(coll.StagedCredentials) != 1 || coll.StagedCredentials[0].Secret == "" {
			t.Errorf("after the delay GET staged = %+v, want the entry with its secret", coll)
		}
	}
}

func TestAppNotInstalledIsAppNotFound(t *testing.T) {
	s := start(t, strictConfig(t))
	res := postForm(t, s.TokenURL(acme), ccForm(analyticKey, analyticSec))
	if e := res.oauthErr(t); res.status != 400 || e.Error != "app_not_found" {
		t.Errorf("got %d %+v, want 400 app_not_found", res.status, e)
	}
}

func TestDiscoveryEndpoints(t *testing.T) {
	cfg := strictConfig(t)
	cfg.Orgs[0].ECAs[1].DistributionState = DistributionPackaged
	s := start(t, cfg)
	tok := adminToken(t, s)

	t.Run("GET /services/data/ lists versions with release labels, without auth or limit header", func(t *testing.T) {
		res := call(t, http.MethodGet, s.OrgURL(hub)+"/services/data/", "", "")
		var vs []struct{ Label, URL, Version string }
		res.decode(t, &vs)
		if res.status != 200 || len(vs) == 0 || vs[0].Version != "31.0" {
			t.Fatalf("got %d %s", res.status, res.body)
		}
		found := false
		for _, v := range vs {
			if v.Version == "65.0" {
				found = v.Label == "Winter '26" && v.URL == "/services/data/v65.0"
			}
		}
		if !found {
			t.Errorf("65.0 missing or mislabelled in %s", res.body)
		}
		if res.header.Get("Sforce-Limit-Info") != "" {
			t.Errorf("the versions resource carries Sforce-Limit-Info")
		}
	})
	t.Run("GET /services/data/v65.0/ lists the resources of the version", func(t *testing.T) {
		res := call(t, http.MethodGet, s.OrgURL(hub)+"/services/data/v65.0/", tok, "")
		var m map[string]string
		res.decode(t, &m)
		if res.status != 200 || m["query"] != "/services/data/v65.0/query" || m["limits"] != "/services/data/v65.0/limits" || m["sobjects"] == "" {
			t.Errorf("got %d %s", res.status, res.body)
		}
		if res := call(t, http.MethodGet, s.OrgURL(hub)+"/services/data/v65.0/", "", ""); res.status != 401 {
			t.Errorf("without a token: %d, want 401", res.status)
		}
	})
	t.Run("a version newer than the org serves is not found", func(t *testing.T) {
		cfg := strictConfig(t)
		cfg.Behavior.MaxAPIVersion = 64
		s := start(t, cfg)
		if res := call(t, http.MethodGet, s.OrgURL(hub)+"/services/data/v65.0/", adminToken(t, s), ""); res.status != 404 {
			t.Errorf("got %d, want 404", res.status)
		}
	})
	t.Run("userinfo and the identity URL describe the token's user", func(t *testing.T) {
		res := call(t, http.MethodGet, s.OrgURL(hub)+"/services/oauth2/userinfo", tok, "")
		var ui map[string]any
		res.decode(t, &ui)
		if res.status != 200 || ui["preferred_username"] != adminUser || ui["user_id"] != "005000000000000ADM" {
			t.Errorf("userinfo: %d %s", res.status, res.body)
		}
		idURL := s.LoginURL() + "/id/00D00000000000DHUB/005000000000000ADM"
		res = call(t, http.MethodGet, idURL, tok, "")
		var id map[string]any
		res.decode(t, &id)
		if res.status != 200 || id["username"] != adminUser || id["organization_id"] != "00D00000000000DHUB" {
			t.Errorf("identity: %d %s", res.status, res.body)
		}
		if res := call(t, http.MethodGet, idURL, "bogus", ""); res.status != 403 || string(res.body) != "Bad_OAuth_Token" {
			t.Errorf("identity with a bad token: %d %s", res.status, res.body)
		}
		other := s.LoginURL() + "/id/00D00000000000DHUB/005000000000000INT"
		if res := call(t, http.MethodGet, other, tok, ""); res.status != 403 {
			t.Errorf("another user's identity: %d", res.status)
		}
	})
	t.Run("limits report the daily API budget", func(t *testing.T) {
		res := call(t, http.MethodGet, s.OrgURL(hub)+"/services/data/v65.0/limits", tok, "")
		var m map[string]struct{ Max, Remaining int }
		res.decode(t, &m)
		if res.status != 200 || m["DailyApiRequests"].Max != DefaultAPILimit || m["DailyApiRequests"].Remaining >= DefaultAPILimit {
			t.Errorf("got %d %s", res.status, res.body)
		}
	})
	q := func(soql string) response {
		return call(t, http.MethodGet, s.OrgURL(hub)+"/services/data/v65.0/query?q="+url.QueryEscape(soql), tok, "")
	}
	t.Run("SOQL finds an ECA by developer name with its distribution state", func(t *testing.T) {
		res := q("SELECT Id, DeveloperName, DistributionState FROM ExternalClientApplication WHERE DeveloperName = 'Billing'")
		var body struct {
			TotalSize int              `json:"totalSize"`
			Records   []map[string]any `json:"records"`
		}
		res.decode(t, &body)
		if res.status != 200 || body.TotalSize != 1 || body.Records[0]["Id"] != billingID || body.Records[0]["DistributionState"] != DistributionPackaged {
			t.Errorf("got %d %s", res.status, res.body)
		}
	})
	t.Run("SOQL reads a user and its permission assignments", func(t *testing.T) {
		res := q("SELECT Id, Username FROM User WHERE Username = '" + intUser + "'")
		if res.status != 200 || !strings.Contains(string(res.body), "005000000000000INT") {
			t.Errorf("user: %d %s", res.status, res.body)
		}
		res = q("SELECT PermissionSet.Name, PermissionSet.PermissionsApiEnabled, PermissionSet.PermissionsViewClientSecret FROM PermissionSetAssignment WHERE AssigneeId = '005000000000000INT'")
		var body struct {
			Records []struct {
				PermissionSet map[string]any `json:"PermissionSet"`
			} `json:"records"`
		}
		res.decode(t, &body)
		if res.status != 200 || len(body.Records) != 1 || body.Records[0].PermissionSet["PermissionsApiEnabled"] != true || body.Records[0].PermissionSet["PermissionsViewClientSecret"] != false {
			t.Errorf("permissions: %d %s", res.status, res.body)
		}
	})
	t.Run("malformed or unsupported SOQL is a 400", func(t *testing.T) {
		for soql, code := range map[string]string{
			"DELETE FROM User":                       "MALFORMED_QUERY",
			"SELECT Id FROM Account":                 "INVALID_TYPE",
			"SELECT Bogus FROM User":                 "INVALID_FIELD",
			"SELECT Id FROM User WHERE Id LIKE 'x%'": "MALFORMED_QUERY",
		} {
			if res := q(soql); res.status != 400 || res.restErr(t) != code {
				t.Errorf("%q: %d %s, want 400 %s", soql, res.status, res.body, code)
			}
		}
	})
}
