package sfsim

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// isReset reports whether err is a connection reset or an abrupt close, as
// a client sees an aborted Salesforce request.
func isReset(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF") ||
		strings.Contains(err.Error(), "connection reset"))
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults []Fault
		behave Behavior
		// do runs the request(s) and checks what the client saw.
		do func(t *testing.T, s *Sim, tok string)
		// wantLog is the fault of each logged request after the token call.
		wantLog []string
	}{
		{
			name:   "a 503 fault answers SERVER_UNAVAILABLE for the next N requests, then lets requests through",
			faults: []Fault{{Org: hub, Route: RouteUsage, Kind: FaultUnavailable, Count: 2}},
			do: func(t *testing.T, s *Sim, tok string) {
				for i, want := range []int{503, 503, 200} {
					res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage", tok, "")
					if res.status != want {
						t.Fatalf("call %d: got %d, want %d", i+1, res.status, want)
					}
					if want == 503 && (res.restErr(t) != "SERVER_UNAVAILABLE" || res.header.Get("Retry-After") != "") {
						t.Fatalf("got %s Retry-After %q, want SERVER_UNAVAILABLE without Retry-After", res.body, res.header.Get("Retry-After"))
					}
				}
			},
			wantLog: []string{FaultUnavailable, FaultUnavailable, ""},
		},
		{
			name:   "a 503 carries Retry-After when configured",
			faults: []Fault{{Route: RouteUsage, Kind: FaultUnavailable, Count: 1}},
			behave: Behavior{RetryAfter: Duration(1500 * time.Millisecond)},
			do: func(t *testing.T, s *Sim, tok string) {
				res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage", tok, "")
				if res.status != 503 || res.header.Get("Retry-After") != "2" {
					t.Fatalf("got %d Retry-After %q, want 503 and 2", res.status, res.header.Get("Retry-After"))
				}
			},
			wantLog: []string{FaultUnavailable},
		},
		{
			name:   "a 503 on the token endpoint is an OAuth error",
			faults: []Fault{{Route: RouteToken, Kind: FaultUnavailable, Count: 1}},
			do: func(t *testing.T, s *Sim, tok string) {
				res := postForm(t, s.TokenURL(acme), ccForm(billingKey, billingSecret))
				if res.status != 503 || res.oauthErr(t).Error != "temporarily_unavailable" {
					t.Fatalf("got %d %s", res.status, res.body)
				}
			},
			wantLog: []string{FaultUnavailable},
		},
		{
			name:   "a limit fault answers 403 REQUEST_LIMIT_EXCEEDED",
			faults: []Fault{{Method: "GET", Route: Routes[RouteUsage], Kind: FaultLimit, Count: 1}},
			do: func(t *testing.T, s *Sim, tok string) {
				res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage", tok, "")
				if res.status != 403 || res.restErr(t) != "REQUEST_LIMIT_EXCEEDED" || res.header.Get("Sforce-Limit-Info") == "" {
					t.Fatalf("got %d %s", res.status, res.body)
				}
			},
			wantLog: []string{FaultLimit},
		},
		{
			name:   "a fault for another org does not match",
			faults: []Fault{{Org: acme, Kind: FaultUnavailable}},
			do: func(t *testing.T, s *Sim, tok string) {
				if res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage", tok, ""); res.status != 200 {
					t.Fatalf("got %d", res.status)
				}
			},
			wantLog: []string{""},
		},
		{
			name:   "a reset before POST staged leaves the slot empty",
			faults: []Fault{{Method: "POST", Route: RouteStaged, Kind: FaultResetBefore, Count: 1}},
			do: func(t *testing.T, s *Sim, tok string) {
				_, err := send(http.MethodPost, consumerPath(s, billingID, billingCID)+"/staged", tok, "application/json", strings.NewReader("{}"))
				if !isReset(err) {
					t.Fatalf("got err %v, want a connection reset", err)
				}
				if cs, _ := s.ConsumerState(hub, "Billing", billingCID); cs.Staged != nil {
					t.Fatalf("slot = %+v, want empty", cs.Staged)
				}
			},
			wantLog: []string{FaultResetBefore},
		},
		{
			name:   "a reset after POST staged leaves the staged entry in the slot",
			faults: []Fault{{Method: "POST", Route: RouteStaged, Kind: FaultResetAfter, Count: 1}},
			do: func(t *testing.T, s *Sim, tok string) {
				_, err := send(http.MethodPost, consumerPath(s, billingID, billingCID)+"/staged", tok, "application/json", strings.NewReader("{}"))
				if !isReset(err) {
					t.Fatalf("got err %v, want a connection reset", err)
				}
				cs, _ := s.ConsumerState(hub, "Billing", billingCID)
				if cs.Staged == nil || cs.Staged.State != StateActive {
					t.Fatalf("slot = %+v, want the Active entry the client never saw", cs.Staged)
				}
			},
			wantLog: []string{FaultResetAfter},
		},
		{
			name:   "a reset after PATCH rotate leaves the rotation applied",
			faults: []Fault{{Method: "PATCH", Route: RouteStagedItem, Kind: FaultResetAfter, Count: 1}},
			do: func(t *testing.T, s *Sim, tok string) {
				st := stage(t, s, tok, billingID, billingCID)
				_, err := send(http.MethodPatch, consumerPath(s, billingID, billingCID)+"/staged/"+st.ID, tok, "application/json", strings.NewReader(`{"command":"rotate"}`))
				if !isReset(err) {
					t.Fatalf("got err %v, want a connection reset", err)
				}
				cs, _ := s.ConsumerState(hub, "Billing", billingCID)
				if cs.Key != st.Key || cs.Staged == nil || cs.Staged.State != StateRotated {
					t.Fatalf("state = %+v, want the staged pair primary and the old one Rotated", cs)
				}
			},
			wantLog: []string{"", FaultResetAfter},
		},
		{
			name:   "a POST staged without a body resets without staging when the opt-in fault is armed",
			faults: []Fault{{Route: RouteStaged, Method: http.MethodPost, Kind: FaultResetEmptyBody, Count: 1}},
			do: func(t *testing.T, s *Sim, tok string) {
				_, err := send(http.MethodPost, consumerPath(s, billingID, billingCID)+"/staged", tok, "", nil)
				if !isReset(err) {
					t.Fatalf("got err %v, want a connection reset", err)
				}
				if cs, _ := s.ConsumerState(hub, "Billing", billingCID); cs.Staged != nil {
					t.Fatalf("slot = %+v, want empty", cs.Staged)
				}
			},
			wantLog: []string{FaultResetEmptyBody},
		},
		{
			name:   "a latency fault delays the request and is logged",
			faults: []Fault{{Route: RouteConsumer, Kind: FaultLatency, Latency: Duration(30 * time.Millisecond), Count: 1}},
			do: func(t *testing.T, s *Sim, tok string) {
				start := time.Now()
				if res := call(t, http.MethodGet, consumerPath(s, billingID, billingCID), tok, ""); res.status != 200 {
					t.Fatalf("got %d", res.status)
				}
				if el := time.Since(start); el < 30*time.Millisecond {
					t.Fatalf("took %s, want at least 30ms", el)
				}
			},
			wantLog: []string{FaultLatency},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Orgs[0].SecretAccess = true
			cfg.Behavior = tt.behave
			s := start(t, cfg)
			tok := adminToken(t, s)
			s.SetFaults(tt.faults)
			s.ResetRequests()
			tt.do(t, s, tok)
			var got []string
			for _, r := range s.Requests() {
				got = append(got, r.Fault)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantLog, ",") {
				t.Errorf("logged faults = %q, want %q", got, tt.wantLog)
			}
		})
	}
}

func TestResetAfterIsLoggedWithTheAppliedStatus(t *testing.T) {
	cfg := testConfig(t)
	cfg.Orgs[0].SecretAccess = true
	cfg.Faults = []Fault{{Org: hub, Method: "POST", Route: RouteStaged, Kind: FaultResetAfter, Count: 1}}
	s := start(t, cfg)
	tok := adminToken(t, s)
	_, _ = send(http.MethodPost, consumerPath(s, billingID, billingCID)+"/staged", tok, "application/json", strings.NewReader("{}"))
	log := s.Requests()
	last := log[len(log)-1]
	if last.Route != RouteStaged || last.Status != http.StatusCreated || last.Fault != FaultResetAfter || last.Org != hub {
		t.Fatalf("last request = %+v, want staged 201 reset-after at %s", last, hub)
	}
	if left := s.Faults(); len(left) != 0 {
		t.Fatalf("faults left = %+v, want none (count 1 used)", left)
	}
}

func TestInProcessHandler(t *testing.T) {
	s, err := New(testConfig(t), WithClock(func() time.Time { return epoch }))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler(hub)
	rec := serveInProcess(h, http.MethodPost, tokenPath, "", "application/x-www-form-urlencoded",
		ccForm(billingKey, billingSecret).Encode())
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"instance_url":"http://devhub.sfsim.invalid"`) {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	s.SetFaults([]Fault{{Kind: FaultResetBefore}})
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", r)
		}
	}()
	serveInProcess(h, http.MethodGet, "/services/data/v65.0/apps/oauth/usage", "", "", "")
}
