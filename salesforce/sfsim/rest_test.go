package sfsim

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestUsagePaging(t *testing.T) {
	s := start(t, testConfig(t))
	tok := adminToken(t, s)
	type page struct {
		Apps           []usageApp `json:"apps"`
		CurrentPageURL string     `json:"currentPageUrl"`
		NextPageURL    string     `json:"nextPageUrl"`
	}
	tests := []struct {
		name      string
		query     string
		wantNames []string
		wantNext  string
	}{
		{name: "the default page lists every app", query: "",
			wantNames: []string{"rotator", "Billing", "Support", "Analytics"}, wantNext: "page=1&pageSize=100"},
		{name: "the first page of two has two apps", query: "?page=0&pageSize=2",
			wantNames: []string{"rotator", "Billing"}, wantNext: "page=1&pageSize=2"},
		{name: "the second page of two has the rest", query: "?page=1&pageSize=2",
			wantNames: []string{"Support", "Analytics"}, wantNext: "page=2&pageSize=2"},
		{name: "a page past the end is empty but still has a next page URL", query: "?page=2&pageSize=2",
			wantNames: nil, wantNext: "page=3&pageSize=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage"+tt.query, tok, "")
			if res.status != http.StatusOK {
				t.Fatalf("got %d %s", res.status, res.body)
			}
			var p page
			res.decode(t, &p)
			var names []string
			for _, a := range p.Apps {
				names = append(names, a.DeveloperName)
				if !strings.HasPrefix(a.Identifier, "0x") || a.Label == "" {
					t.Errorf("app %+v: want a 0x identifier and a label", a)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("apps = %v, want %v", names, tt.wantNames)
			}
			if p.Apps == nil || !strings.HasSuffix(p.NextPageURL, tt.wantNext) || p.CurrentPageURL == "" {
				t.Errorf("got %s, want an apps array and nextPageUrl ending %s", res.body, tt.wantNext)
			}
		})
	}
	t.Run("a subscriber org lists its installed apps", func(t *testing.T) {
		s.SetFaults(nil)
		cfg := testConfig(t)
		cfg.Orgs[1].Users[0].Permissions = append(cfg.Orgs[1].Users[0].Permissions, PermExternalClientAppDeveloper)
		if err := s.Seed(cfg); err != nil {
			t.Fatal(err)
		}
		tok := token(t, s, acme, billingKey, billingSecret)
		res := call(t, http.MethodGet, api(s, acme, "65.0")+"/usage", tok, "")
		if res.status != http.StatusOK || !strings.Contains(string(res.body), `"Billing"`) || !strings.Contains(string(res.body), `"Support"`) ||
			strings.Contains(string(res.body), "Analytics") {
			t.Fatalf("got %d %s, want Billing and Support only", res.status, res.body)
		}
	})
}

func TestCredentialResources(t *testing.T) {
	s := start(t, testConfig(t))
	s.SetSecretAccess(hub, true)
	tok := adminToken(t, s)
	v65 := api(s, hub, "65.0")
	tests := []struct {
		name       string
		method     string
		url        string
		wantStatus int
		wantCode   string   // REST errorCode for errors
		wantIn     []string // substrings of a success body
		wantNotIn  []string
	}{
		{name: "the credentials collection lists consumers without secrets", method: "GET", url: v65 + "/credentials/" + billingID,
			wantStatus: 200, wantIn: []string{`"id":"` + billingCID, `"key":"` + billingKey, `"secret":null`, `"stagedCredentialsUrl":"/services/data/v65.0/apps/oauth/credentials/` + billingID + "/" + billingCID + `/staged"`, `"nextPageUrl":null`},
			wantNotIn: []string{billingSecret}},
		{name: "an app with two consumers lists both", method: "GET", url: v65 + "/credentials/" + supportID,
			wantStatus: 200, wantIn: []string{supportCID1, supportCID2}},
		{name: "a consumer without part returns the key only", method: "GET", url: v65 + "/credentials/" + billingID + "/" + billingCID,
			wantStatus: 200, wantIn: []string{`"key":"` + billingKey, `"secret":null`}, wantNotIn: []string{billingSecret}},
		{name: "part=secret returns the secret only", method: "GET", url: v65 + "/credentials/" + billingID + "/" + billingCID + "?part=secret",
			wantStatus: 200, wantIn: []string{`"secret":"` + billingSecret, `"key":null`}},
		{name: "part=keyandsecret returns both", method: "GET", url: v65 + "/credentials/" + billingID + "/" + billingCID + "?part=keyandsecret",
			wantStatus: 200, wantIn: []string{`"secret":"` + billingSecret, `"key":"` + billingKey}},
		{name: "an unknown part is invalid input", method: "GET", url: v65 + "/credentials/" + billingID + "/" + billingCID + "?part=all",
			wantStatus: 400, wantCode: "INVALID_INPUT"},
		{name: "an unknown app is not found", method: "GET", url: v65 + "/credentials/0xInope",
			wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "an app's developer name is not an identifier", method: "GET", url: v65 + "/credentials/Billing",
			wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "an unknown consumer is not found", method: "GET", url: v65 + "/credentials/" + billingID + "/888nope",
			wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "staged credentials before v65.0 are not found", method: "GET", url: api(s, hub, "64.0") + "/credentials/" + billingID + "/" + billingCID + "/staged",
			wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "consumer credentials exist from v60.0", method: "GET", url: api(s, hub, "60.0") + "/credentials/" + billingID + "/" + billingCID,
			wantStatus: 200},
		{name: "consumer credentials before v60.0 are not found", method: "GET", url: api(s, hub, "59.0") + "/credentials/" + billingID + "/" + billingCID,
			wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "a version newer than the max is not found", method: "GET", url: api(s, hub, "99.0") + "/usage",
			wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "an unknown resource is not found", method: "GET", url: v65 + "/nothing",
			wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "PUT on staged is not allowed", method: "PUT", url: v65 + "/credentials/" + billingID + "/" + billingCID + "/staged",
			wantStatus: 405, wantCode: "METHOD_NOT_ALLOWED"},
		{name: "POST on a consumer is not allowed", method: "POST", url: v65 + "/credentials/" + billingID + "/" + billingCID,
			wantStatus: 405, wantCode: "METHOD_NOT_ALLOWED"},
		{name: "an empty staged slot reads as an empty list", method: "GET", url: v65 + "/credentials/" + billingID + "/" + billingCID + "/staged",
			wantStatus: 200, wantIn: []string{`"stagedCredentials":[]`, `"url":"/services/data/v65.0/apps/oauth/credentials/`}},
		{name: "an unknown staged id is not found", method: "GET", url: v65 + "/credentials/" + billingID + "/" + billingCID + "/staged/0Ssnope",
			wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "DELETE of an unknown staged id is not found", method: "DELETE", url: v65 + "/credentials/" + billingID + "/" + billingCID + "/staged/0Ssnope",
			wantStatus: 404, wantCode: "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, tt.method, tt.url, tok, "")
			if res.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", res.status, res.body, tt.wantStatus)
			}
			if tt.wantCode != "" {
				if got := res.restErr(t); got != tt.wantCode {
					t.Fatalf("errorCode = %s, want %s", got, tt.wantCode)
				}
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(string(res.body), w) {
					t.Errorf("body %s does not contain %s", res.body, w)
				}
			}
			for _, w := range tt.wantNotIn {
				if strings.Contains(string(res.body), w) {
					t.Errorf("body %s contains %s", res.body, w)
				}
			}
			if !strings.HasPrefix(res.header.Get("Sforce-Limit-Info"), "api-usage=") {
				t.Errorf("Sforce-Limit-Info = %q, want api-usage=N/LIMIT", res.header.Get("Sforce-Limit-Info"))
			}
		})
	}
}

func TestGates(t *testing.T) {
	cfg := testConfig(t)
	cfg.Orgs[0].Users = append(cfg.Orgs[0].Users,
		UserConfig{Username: "dev@devhub.test", Permissions: []string{PermAPIEnabled, PermExternalClientAppDeveloper}},
		UserConfig{Username: "noapi@devhub.test", Permissions: []string{PermExternalClientAppDeveloper, PermViewClientSecret}})
	cfg.Orgs[0].ECAs = append(cfg.Orgs[0].ECAs,
		ECAConfig{DeveloperName: "AsDev", ClientCredentialsUser: "dev@devhub.test", Consumers: []ConsumerConfig{{Key: "3MVG9dev", Secret: "DEV"}}},
		ECAConfig{DeveloperName: "AsNoAPI", ClientCredentialsUser: "noapi@devhub.test", Consumers: []ConsumerConfig{{Key: "3MVG9noapi", Secret: "NOAPI"}}})
	s := start(t, cfg)
	admin := adminToken(t, s)
	plain := token(t, s, hub, billingKey, billingSecret) // int user: ApiEnabled only
	dev := token(t, s, hub, "3MVG9dev", "DEV")
	noAPI := token(t, s, hub, "3MVG9noapi", "NOAPI")
	consumer := consumerPath(s, billingID, billingCID)
	tests := []struct {
		name      string
		secretOn  bool
		token     string
		method    string
		url       string
		wantCode  string
		wantState int
	}{
		{name: "staging with the secret setting off is not enabled", token: admin, method: "POST", url: consumer + "/staged",
			wantCode: "FUNCTIONALITY_NOT_ENABLED", wantState: 403},
		{name: "reading a secret with the setting off is not enabled", token: admin, method: "GET", url: consumer + "?part=secret",
			wantCode: "FUNCTIONALITY_NOT_ENABLED", wantState: 403},
		{name: "reading the key with the setting off works", token: admin, method: "GET", url: consumer, wantState: 200},
		{name: "a user without ExternalClientAppDeveloper has insufficient access", secretOn: true, token: plain, method: "GET", url: consumer,
			wantCode: "INSUFFICIENT_ACCESS", wantState: 403},
		{name: "a user without ViewClientSecret cannot stage", secretOn: true, token: dev, method: "POST", url: consumer + "/staged",
			wantCode: "INSUFFICIENT_ACCESS", wantState: 403},
		{name: "a user without ViewClientSecret can read the key", secretOn: true, token: dev, method: "GET", url: consumer, wantState: 200},
		{name: "a user without ApiEnabled is refused", secretOn: true, token: noAPI, method: "GET", url: consumer,
			wantCode: "API_DISABLED_FOR_ORG", wantState: 403},
		{name: "with the setting on the admin reads the secret", secretOn: true, token: admin, method: "GET", url: consumer + "?part=keyandsecret", wantState: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetSecretAccess(hub, tt.secretOn)
			body := ""
			if tt.method == "POST" {
				body = "{}"
			}
			res := call(t, tt.method, tt.url, tt.token, body)
			if res.status != tt.wantState {
				t.Fatalf("got %d %s, want %d", res.status, res.body, tt.wantState)
			}
			if tt.wantCode != "" {
				var errs []restError
				res.decode(t, &errs)
				if len(errs) != 1 || errs[0].ErrorCode != tt.wantCode {
					t.Fatalf("got %s, want %s", res.body, tt.wantCode)
				}
				if tt.wantCode == "FUNCTIONALITY_NOT_ENABLED" && !strings.Contains(errs[0].Message, "not currently enabled") {
					t.Errorf("message %q lacks \"not currently enabled\"", errs[0].Message)
				}
			}
		})
	}
	t.Run("the secret-access answer is configurable", func(t *testing.T) {
		s.SetBehavior(Behavior{SecretAccessStatus: 400, SecretAccessCode: "API_DISABLED", SecretAccessMessage: "custom"})
		defer s.SetBehavior(Behavior{})
		s.SetSecretAccess(hub, false)
		res := call(t, http.MethodGet, consumer+"/staged", admin, "")
		if res.status != 400 || res.restErr(t) != "API_DISABLED" {
			t.Fatalf("got %d %s, want 400 API_DISABLED", res.status, res.body)
		}
	})
}

func TestStagedCredentialLifecycle(t *testing.T) {
	s := start(t, testConfig(t))
	s.SetSecretAccess(hub, true)
	tok := adminToken(t, s)
	cp := consumerPath(s, billingID, billingCID)

	// POST staged: an Active entry with a new key and secret, 30 days.
	st := stage(t, s, tok, billingID, billingCID)
	if st.State != StateActive || st.Key == billingKey || st.Secret == billingSecret || !strings.HasPrefix(st.Key, "3MVG") || len(st.Secret) != 64 {
		t.Fatalf("staged = %+v, want Active with a new 3MVG key and a 64-char secret", st)
	}
	created, _ := time.Parse(time.RFC3339, st.CreatedDate)
	expires, _ := time.Parse(time.RFC3339, st.ExpirationDate)
	if !created.Equal(s.Now()) || expires.Sub(created) != DefaultValidity {
		t.Errorf("created %s expires %s, want now and +30d", st.CreatedDate, st.ExpirationDate)
	}
	if st.URL != "/services/data/v65.0/apps/oauth/credentials/"+billingID+"/"+billingCID || !strings.HasSuffix(st.StagedCredentialsURL, "/staged/"+st.ID) {
		t.Errorf("url %s stagedCredentialsUrl %s: want the consumer URL and the item URL", st.URL, st.StagedCredentialsURL)
	}
	if got := tokenStatus(t, s, hub, st.Key, st.Secret); got != "invalid_client_id" {
		t.Errorf("staged pair before rotate: %s, want invalid_client_id (StagedAuthenticates is off)", got)
	}

	// A second POST finds the slot occupied.
	res := call(t, http.MethodPost, cp+"/staged", tok, "{}")
	if res.status != http.StatusBadRequest || res.restErr(t) != "INVALID_INPUT" {
		t.Fatalf("second POST: got %d %s, want 400 INVALID_INPUT", res.status, res.body)
	}
	// GET staged and GET staged/{id} show the entry.
	var coll stagedColl
	call(t, http.MethodGet, cp+"/staged", tok, "").decode(t, &coll)
	if len(coll.StagedCredentials) != 1 || coll.StagedCredentials[0] != st {
		t.Fatalf("GET staged = %+v, want [%+v]", coll.StagedCredentials, st)
	}
	var item stagedJSON
	call(t, http.MethodGet, cp+"/staged/"+st.ID, tok, "").decode(t, &item)
	if item != st {
		t.Fatalf("GET staged/{id} = %+v, want %+v", item, st)
	}
	// Bad PATCH bodies change nothing.
	for _, body := range []string{`{"command":"promote"}`, `not json`} {
		if res := call(t, http.MethodPatch, cp+"/staged/"+st.ID, tok, body); res.status != http.StatusBadRequest {
			t.Errorf("PATCH %s: got %d, want 400", body, res.status)
		}
	}

	// PATCH rotate: the staged pair is primary, the old pair Rotated under a new id.
	s.Advance(time.Hour)
	prev := rotate(t, s, tok, billingID, billingCID, st.ID)
	if prev.State != StateRotated || prev.ID == st.ID || prev.Key != billingKey || prev.Secret != billingSecret {
		t.Fatalf("rotated entry = %+v, want Rotated, new id, old pair", prev)
	}
	var now credsJSON
	call(t, http.MethodGet, cp+"?part=keyandsecret", tok, "").decode(t, &now)
	if now.Key == nil || *now.Key != st.Key || now.Secret == nil || *now.Secret != st.Secret {
		t.Fatalf("primary after rotate = %+v, want the staged pair", now)
	}
	for _, tc := range []struct{ name, org, key, secret string }{
		{"the new pair works at the Dev Hub", hub, st.Key, st.Secret},
		{"the old pair still works at the Dev Hub", hub, billingKey, billingSecret},
		{"the new pair works in a subscriber org", acme, st.Key, st.Secret},
		{"the old pair still works in a subscriber org", globex, billingKey, billingSecret},
	} {
		if got := tokenStatus(t, s, tc.org, tc.key, tc.secret); got != "ok" {
			t.Errorf("%s: got %s", tc.name, got)
		}
	}
	if res := call(t, http.MethodPatch, cp+"/staged/"+prev.ID, tok, `{"command":"rotate"}`); res.status != http.StatusBadRequest {
		t.Errorf("rotating a Rotated entry: got %d %s, want 400", res.status, res.body)
	}
	if res := call(t, http.MethodGet, cp+"/staged/"+st.ID, tok, ""); res.status != http.StatusNotFound {
		t.Errorf("the old staged id after rotate: got %d, want 404", res.status)
	}

	// 30 days later (sim clock) the Rotated pair lapses and the slot is empty.
	s.Advance(DefaultValidity - time.Second)
	if got := tokenStatus(t, s, acme, billingKey, billingSecret); got != "ok" {
		t.Errorf("old pair a second before 30 days: %s, want ok", got)
	}
	s.Advance(time.Second)
	for _, org := range []string{hub, acme, globex} {
		if got := tokenStatus(t, s, org, billingKey, billingSecret); got != "invalid_client_id" {
			t.Errorf("old pair after 30 days at %s: %s, want invalid_client_id", org, got)
		}
	}
	tok = adminToken(t, s)
	coll = stagedColl{}
	call(t, http.MethodGet, cp+"/staged", tok, "").decode(t, &coll)
	if len(coll.StagedCredentials) != 0 {
		t.Fatalf("slot after lapse = %+v, want empty", coll.StagedCredentials)
	}

	// Rotate again and DELETE the Rotated pair: it stops at once everywhere.
	st2 := stage(t, s, tok, billingID, billingCID)
	prev2 := rotate(t, s, tok, billingID, billingCID, st2.ID)
	if got := tokenStatus(t, s, globex, st.Key, st.Secret); got != "ok" {
		t.Fatalf("previous pair before DELETE: %s", got)
	}
	if res := call(t, http.MethodDelete, cp+"/staged/"+prev2.ID, tok, ""); res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Fatalf("DELETE: got %d %s, want 204", res.status, res.body)
	}
	for _, org := range []string{hub, acme, globex} {
		if got := tokenStatus(t, s, org, st.Key, st.Secret); got != "invalid_client_id" {
			t.Errorf("deleted previous pair at %s: %s, want invalid_client_id", org, got)
		}
		if got := tokenStatus(t, s, org, st2.Key, st2.Secret); got != "ok" {
			t.Errorf("current pair at %s: %s, want ok", org, got)
		}
	}
}

func TestActiveStagedEntryExpires(t *testing.T) {
	s := start(t, testConfig(t))
	s.SetSecretAccess(hub, true)
	tok := adminToken(t, s)
	st := stage(t, s, tok, billingID, billingCID)
	s.Advance(DefaultValidity)
	tok = adminToken(t, s)
	cs, err := s.ConsumerState(hub, "Billing", billingCID)
	if err != nil || cs.Staged == nil || cs.Staged.State != StateExpired {
		t.Fatalf("state = %+v, %v; want an Expired entry left in the slot", cs.Staged, err)
	}
	res := call(t, http.MethodPatch, consumerPath(s, billingID, billingCID)+"/staged/"+st.ID, tok, `{"command":"rotate"}`)
	if res.status != http.StatusBadRequest || res.restErr(t) != "INVALID_INPUT" {
		t.Fatalf("rotating an Expired entry: got %d %s", res.status, res.body)
	}
	if res := call(t, http.MethodDelete, consumerPath(s, billingID, billingCID)+"/staged/"+st.ID, tok, ""); res.status != http.StatusNoContent {
		t.Fatalf("deleting the Expired entry: got %d", res.status)
	}
}

func TestBehaviorSwitches(t *testing.T) {
	tests := []struct {
		name  string
		b     Behavior
		check func(t *testing.T, s *Sim, tok string)
	}{
		{name: "an empty staged slot can answer 404", b: Behavior{EmptyStagedNotFound: true},
			check: func(t *testing.T, s *Sim, tok string) {
				res := call(t, http.MethodGet, consumerPath(s, billingID, billingCID)+"/staged", tok, "")
				if res.status != 404 || res.restErr(t) != "NOT_FOUND" {
					t.Fatalf("got %d %s", res.status, res.body)
				}
			}},
		{name: "Active staged credentials can authenticate before rotate", b: Behavior{StagedAuthenticates: true},
			check: func(t *testing.T, s *Sim, tok string) {
				st := stage(t, s, tok, billingID, billingCID)
				if got := tokenStatus(t, s, acme, st.Key, st.Secret); got != "ok" {
					t.Fatalf("got %s, want ok", got)
				}
			}},
		{name: "the Rotated validity is configurable", b: Behavior{RotatedValidity: Duration(time.Hour)},
			check: func(t *testing.T, s *Sim, tok string) {
				st := stage(t, s, tok, billingID, billingCID)
				prev := rotate(t, s, tok, billingID, billingCID, st.ID)
				if prev.ExpirationDate != sfTime(s.Now().Add(time.Hour)) {
					t.Errorf("expirationDate %s, want now+1h", prev.ExpirationDate)
				}
				s.Advance(time.Hour)
				if got := tokenStatus(t, s, hub, billingKey, billingSecret); got != "invalid_client_id" {
					t.Fatalf("old pair after 1h: %s", got)
				}
			}},
		{name: "the consumer collection can include secrets", b: Behavior{CollectionIncludesSecrets: true},
			check: func(t *testing.T, s *Sim, tok string) {
				res := call(t, http.MethodGet, api(s, hub, "65.0")+"/credentials/"+billingID, tok, "")
				if !strings.Contains(string(res.body), `"secret":"`+billingSecret) {
					t.Fatalf("got %s, want the secret", res.body)
				}
			}},
		{name: "the occupied-slot error is configurable", b: Behavior{OccupiedSlotStatus: 409, OccupiedSlotCode: "DUPLICATE_VALUE"},
			check: func(t *testing.T, s *Sim, tok string) {
				stage(t, s, tok, billingID, billingCID)
				res := call(t, http.MethodPost, consumerPath(s, billingID, billingCID)+"/staged", tok, "{}")
				if res.status != 409 || res.restErr(t) != "DUPLICATE_VALUE" {
					t.Fatalf("got %d %s", res.status, res.body)
				}
			}},
		{name: "PATCH rotate answers with the Rotated entry by default", b: Behavior{},
			check: func(t *testing.T, s *Sim, tok string) {
				st := stage(t, s, tok, billingID, billingCID)
				got := rotate(t, s, tok, billingID, billingCID, st.ID)
				cs, err := s.ConsumerState(hub, "Billing", billingCID)
				if err != nil || cs.Staged == nil {
					t.Fatalf("state %+v, %v", cs, err)
				}
				if got.State != StateRotated || got.ID != cs.Staged.ID || got.Key != billingKey || got.ExpirationDate == "" {
					t.Fatalf("PATCH answered %+v, want the Rotated entry %s holding %s", got, cs.Staged.ID, billingKey)
				}
			}},
		{name: "PATCH rotate can answer without the Rotated entry", b: Behavior{PatchOmitsRotated: true},
			check: func(t *testing.T, s *Sim, tok string) {
				st := stage(t, s, tok, billingID, billingCID)
				got := rotate(t, s, tok, billingID, billingCID, st.ID)
				if got.State == StateRotated || got.ID != st.ID || got.Key != st.Key {
					t.Fatalf("PATCH answered %+v, want the promoted entry %s", got, st.ID)
				}
				cs, err := s.ConsumerState(hub, "Billing", billingCID)
				if err != nil || cs.Staged == nil || cs.Staged.State != StateRotated || cs.Key != st.Key {
					t.Fatalf("the rotate did not apply: %+v, %v", cs, err)
				}
			}},
		{name: "the staged url can be the item's own URL", b: Behavior{StagedURLIsItem: true},
			check: func(t *testing.T, s *Sim, tok string) {
				st := stage(t, s, tok, billingID, billingCID)
				if !strings.HasSuffix(st.URL, "/staged/"+st.ID) {
					t.Fatalf("url = %s", st.URL)
				}
				// A client that PATCHes "url" (Infisical) rotates.
				if res := call(t, http.MethodPatch, s.OrgURL(hub)+st.URL, tok, `{"command":"rotate"}`); res.status != 200 {
					t.Fatalf("PATCH url: %d %s", res.status, res.body)
				}
			}},
		{name: "an empty-body POST is accepted by default", b: Behavior{},
			check: func(t *testing.T, s *Sim, tok string) {
				if res := call(t, http.MethodPost, consumerPath(s, billingID, billingCID)+"/staged", tok, ""); res.status != 201 {
					t.Fatalf("got %d %s", res.status, res.body)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Behavior = tt.b
			cfg.Orgs[0].SecretAccess = true
			s := start(t, cfg)
			tt.check(t, s, adminToken(t, s))
		})
	}
}

func TestDailyAPILimit(t *testing.T) {
	s := start(t, testConfig(t))
	tok := adminToken(t, s)
	s.SetAPILimit(hub, 2)
	usage := api(s, hub, "65.0") + "/usage"
	for i, want := range []struct {
		status int
		header string
	}{{200, "api-usage=1/2"}, {200, "api-usage=2/2"}, {403, "api-usage=3/2"}} {
		res := call(t, http.MethodGet, usage, tok, "")
		if res.status != want.status || res.header.Get("Sforce-Limit-Info") != want.header {
			t.Fatalf("call %d: got %d %q %s, want %d %q", i+1, res.status, res.header.Get("Sforce-Limit-Info"), res.body, want.status, want.header)
		}
		if want.status == 403 && res.restErr(t) != "REQUEST_LIMIT_EXCEEDED" {
			t.Fatalf("got %s, want REQUEST_LIMIT_EXCEEDED", res.body)
		}
	}
	s.Advance(24 * time.Hour)
	tok = adminToken(t, s)
	if res := call(t, http.MethodGet, usage, tok, ""); res.status != 200 || res.header.Get("Sforce-Limit-Info") != "api-usage=1/2" {
		t.Fatalf("next sim-day: got %d %q", res.status, res.header.Get("Sforce-Limit-Info"))
	}
	if used, limit := s.APIUsage(hub); used != 1 || limit != 2 {
		t.Fatalf("APIUsage = %d/%d, want 1/2", used, limit)
	}
}

func TestPropagationDelay(t *testing.T) {
	s := start(t, testConfig(t))
	s.SetSecretAccess(hub, true)
	tok := adminToken(t, s)
	s.SetPropagationDelay(5 * time.Minute)
	s.SetOrgPropagationDelay(globex, 0)
	st := stage(t, s, tok, billingID, billingCID)
	rotate(t, s, tok, billingID, billingCID, st.ID)
	steps := []struct {
		name    string
		advance time.Duration
		org     string
		key     string
		secret  string
		want    string
	}{
		{"the new pair is unknown right after rotate", 0, acme, st.Key, st.Secret, "invalid_client_id"},
		{"the old pair keeps working meanwhile", 0, acme, billingKey, billingSecret, "ok"},
		{"an org without delay knows the new pair at once", 0, globex, st.Key, st.Secret, "ok"},
		{"the new pair is still unknown a second early", 5*time.Minute - time.Second, hub, st.Key, st.Secret, "invalid_client_id"},
		{"the new pair works once the delay has passed", time.Second, acme, st.Key, st.Secret, "ok"},
	}
	for _, step := range steps {
		s.Advance(step.advance)
		if got := tokenStatus(t, s, step.org, step.key, step.secret); got != step.want {
			t.Errorf("%s: got %s, want %s", step.name, got, step.want)
		}
	}
}
