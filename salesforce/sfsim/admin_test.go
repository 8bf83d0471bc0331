package sfsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAdminAPI(t *testing.T) {
	cfg := testConfig(t)
	cfg.Orgs[0].SecretAccess = true
	s := start(t, cfg)
	tok := adminToken(t, s)
	st := stage(t, s, tok, billingID, billingCID)
	admin := s.LoginURL() + "/__sfsim/"
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantIn     []string
		wantNotIn  []string
		after      func(t *testing.T)
	}{
		{name: "the state hides secrets by default", method: "GET", path: "state", wantStatus: 200,
			wantIn:    []string{`"name":"devhub"`, billingKey, st.Key, `"state":"Active"`, s.OrgURL(acme)},
			wantNotIn: []string{billingSecret, st.Secret, rotatorSecret}},
		{name: "the state shows secrets with reveal=1", method: "GET", path: "state?reveal=1", wantStatus: 200,
			wantIn: []string{billingSecret, st.Secret}},
		{name: "faults can be replaced", method: "PUT", path: "faults", body: `[{"org":"acme","route":"token","kind":"503","count":2}]`,
			wantStatus: 200, wantIn: []string{`"kind":"503"`, `"count":2`},
			after: func(t *testing.T) {
				if res := postForm(t, s.TokenURL(acme), ccForm(billingKey, billingSecret)); res.status != 503 {
					t.Fatalf("token at acme: got %d, want 503", res.status)
				}
			}},
		{name: "faults can be added", method: "POST", path: "faults", body: `[{"kind":"latency","latency":"1ms"}]`,
			wantStatus: 200, wantIn: []string{`"kind":"503","count":1`, `"kind":"latency"`}},
		{name: "an invalid fault is refused with its path", method: "PUT", path: "faults", body: `[{"kind":"boom"}]`,
			wantStatus: 400, wantIn: []string{`faults[0].kind`}},
		{name: "an unknown fault field is refused", method: "PUT", path: "faults", body: `[{"kind":"503","nope":1}]`,
			wantStatus: 400},
		{name: "the request log lists requests without secrets or tokens", method: "GET", path: "requests", wantStatus: 200,
			wantIn: []string{`"route":"staged"`, `"status":201`}, wantNotIn: []string{tok, st.Secret, billingSecret, rotatorSecret}},
		{name: "the request log can be emptied", method: "DELETE", path: "requests", wantStatus: 204,
			after: func(t *testing.T) {
				if n := len(s.Requests()); n != 0 {
					t.Fatalf("log has %d entries", n)
				}
			}},
		{name: "the clock advances", method: "POST", path: "clock", body: `{"advance":"31d"}`, wantStatus: 200,
			wantIn: []string{epoch.Add(31 * 24 * time.Hour).Format(time.RFC3339)},
			after: func(t *testing.T) {
				if cs, _ := s.ConsumerState(hub, "Billing", billingCID); cs.Staged == nil || cs.Staged.State != StateExpired {
					t.Fatalf("staged after 31d = %+v, want Expired", cs.Staged)
				}
			}},
		{name: "the clock does not go back", method: "POST", path: "clock", body: `{"advance":"-1h"}`, wantStatus: 400},
		{name: "secret access can be switched off", method: "PUT", path: "orgs/devhub/secret-access", body: `{"enabled":false}`, wantStatus: 204,
			after: func(t *testing.T) {
				if s.SecretAccess(hub) {
					t.Fatal("still on")
				}
			}},
		{name: "the API limit can be set", method: "PUT", path: "orgs/devhub/api-limit", body: `{"limit":7}`, wantStatus: 204,
			after: func(t *testing.T) {
				if _, limit := s.APIUsage(hub); limit != 7 {
					t.Fatalf("limit = %d", limit)
				}
			}},
		{name: "an unknown org is not found", method: "PUT", path: "orgs/nope/api-limit", body: `{"limit":7}`, wantStatus: 404},
		{name: "the propagation delay can be set", method: "PUT", path: "propagation", body: `{"delay":"5m"}`, wantStatus: 204},
		{name: "the behaviour can be replaced", method: "PUT", path: "behavior", body: `{"emptyStagedNotFound":true}`, wantStatus: 200,
			wantIn: []string{`"emptyStagedNotFound":true`, `"occupiedSlotCode":"INVALID_INPUT"`}},
		{name: "an unknown admin route is not found", method: "GET", path: "nope", wantStatus: 404},
		{name: "the model can be replaced and new orgs get a listener", method: "PUT", path: "model",
			body: mustJSON(t, Config{Orgs: append(testConfig(t).Orgs, OrgConfig{Name: "initech"})}), wantStatus: 200,
			wantIn: []string{`"name":"initech"`},
			after: func(t *testing.T) {
				if u := s.OrgURL("initech"); !strings.HasPrefix(u, "http://127.0.0.1:") {
					t.Fatalf("OrgURL(initech) = %q, want a listener", u)
				}
				if res := call(t, http.MethodGet, s.OrgURL("initech")+"/__sfsim/clock", "", ""); res.status != 200 {
					t.Fatalf("the new listener does not answer: %d", res.status)
				}
				if cs, _ := s.ConsumerState(hub, "Billing", billingCID); cs.Staged != nil {
					t.Fatalf("staged after reseed = %+v, want empty", cs.Staged)
				}
			}},
		{name: "an invalid model is refused", method: "PUT", path: "model", body: `{"orgs":[]}`, wantStatus: 400,
			wantIn: []string{"orgs: at least one org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, tt.method, admin+tt.path, "", tt.body)
			if res.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", res.status, res.body, tt.wantStatus)
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(string(res.body), w) {
					t.Errorf("body %s lacks %s", res.body, w)
				}
			}
			for _, w := range tt.wantNotIn {
				if strings.Contains(string(res.body), w) {
					t.Errorf("body contains a secret or token %.12s…", w)
				}
			}
			if tt.after != nil {
				tt.after(t)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStateFileRoundTrip(t *testing.T) {
	cfg := testConfig(t)
	cfg.Orgs[0].SecretAccess = true
	cfg.StateFile = t.TempDir() + "/state.json"
	s1 := start(t, cfg)
	tok := adminToken(t, s1)
	st := stage(t, s1, tok, billingID, billingCID)
	rotate(t, s1, tok, billingID, billingCID, st.ID)
	stage(t, s1, tok, supportID, supportCID2)
	s1.SetSecretAccess(hub, false)
	s1.Advance(48 * time.Hour)
	want := s1.State(true)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := start(t, cfg)
	got := s2.State(true)
	if !got.Now.Equal(want.Now) {
		t.Errorf("clock = %s, want %s (the offset survives)", got.Now, want.Now)
	}
	for i := range want.Orgs {
		w, g := want.Orgs[i], got.Orgs[i]
		if g.SecretAccess != w.SecretAccess || g.OrgID != w.OrgID || mustJSON(t, g.ECAs) != mustJSON(t, w.ECAs) {
			t.Errorf("org %s after restart:\n got %s\nwant %s", w.Name, mustJSON(t, g), mustJSON(t, w))
		}
	}
	// The restored model still works: the old pair is Rotated, the new primary.
	for _, c := range []struct{ key, secret string }{{st.Key, st.Secret}, {billingKey, billingSecret}} {
		if got := tokenStatus(t, s2, acme, c.key, c.secret); got != "ok" {
			t.Errorf("pair %s after restart: %s", c.key, got)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Run("the demo config loads and starts", func(t *testing.T) {
		cfg, err := LoadConfig("testdata/demo.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s := start(t, cfg)
		if len(s.Orgs()) != 3 || s.OrgURL("devhub") == "" {
			t.Fatalf("orgs = %v", s.Orgs())
		}
	})
	tests := []struct {
		name    string
		yaml    string
		wantErr []string
	}{
		{name: "an unknown key is an error", yaml: "orgs: [{name: a}]\nbogus: 1\n", wantErr: []string{"bogus"}},
		{name: "an empty file is an error", yaml: "", wantErr: []string{"empty config"}},
		{name: "every problem is reported with its path", yaml: `
orgs:
  - name: hub
    devHub: false
    ecas: [{developerName: X, consumers: [{}]}]
    installs: [nowhere/X, bad]
  - name: hub
faults: [{kind: nope}, {kind: latency}]
behavior: {occupiedSlotStatus: 200}
`, wantErr: []string{"orgs[0].ecas: only a Dev Hub", "orgs[1].name: duplicate org", "orgs[0].installs[0]: no Dev Hub org",
			"orgs[0].installs[1]: want", "faults[0].kind", "faults[1].latency", "behavior.occupiedSlotStatus"}},
		{name: "an ECA needs consumers and a known run-as user", yaml: `
orgs:
  - name: hub
    devHub: true
    ecas: [{developerName: X, clientCredentialsUser: ghost, jwtCertificatePEM: "junk"}]
`, wantErr: []string{"orgs[0].ecas[0].consumers", "orgs[0].ecas[0].clientCredentialsUser", "orgs[0].ecas[0].jwtCertificatePEM"}},
		{name: "durations accept days", yaml: "orgs: [{name: a}]\nbehavior: {rotatedValidity: 7d}\ntokenTTL: 90m\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("orgs: [{name: a}]\n")
	f.Add("orgs: [{name: h, devHub: true, ecas: [{developerName: X, consumers: [{key: k}]}]}, {name: s, installs: [h/X]}]\n")
	f.Add("behavior: {rotatedValidity: 30d}\nfaults: [{kind: latency, latency: 1s}]\n")
	f.Add("orgs: &a [{name: x}]\nfaults: *a\n")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := ParseConfig([]byte(in))
		if err != nil {
			return
		}
		// A config that parses builds a simulator.
		if _, err := New(cfg); err != nil {
			t.Fatalf("valid config %q: New: %v", in, err)
		}
	})
}
