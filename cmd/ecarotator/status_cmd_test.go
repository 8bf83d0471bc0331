package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/server"
)

func TestStatusFromServerPrintsTheTable(t *testing.T) {
	// Not truncated: the command's own clock reads a few ms later, and the
	// age it prints (rounded to the second) must still be exactly 1m30s.
	now := time.Now().UTC()
	apps := []server.AppStatus{
		{Name: "billing", DevHub: "devhub", LastRotation: now.Add(-90 * time.Second), NextRotation: now.Add(time.Hour), PreviousValidUntil: now.Add(time.Minute)},
		{Name: "support", DevHub: "devhub", Orphaned: true, InFlight: true, LastError: "3 failed attempts"},
		{Name: "analytics", DevHub: "devhub", NextRotation: now.Add(-time.Second), NextReason: "Retry"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/apps" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"apps": apps, "daemon": map[string]string{"mfa_enabled": "false", "revoke_needs_approval": "on"}})
	}))
	t.Cleanup(srv.Close)

	code, got, stderr := runCLI(t, nil, "status", "--server", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	for _, want := range []string{
		"APP", "LAST ROTATED", "PREVIOUS VALID UNTIL", "STATE",
		"billing", "1m30s", "ok",
		"support", "orphaned",
		"analytics", "due, Retry", "never rotated",
		"daemon: mfa enabled false, revoke needs approval on",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status output lacks %q:\n%s", want, got)
		}
	}
}

func TestStatusFromServerReportsHTTPErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(server.ErrorBody{Error: "a dependency is unavailable", Code: server.CodeUnavailable})
	}))
	t.Cleanup(srv.Close)
	// ECAROTATOR_SERVER is the flag's default.
	code, _, stderr := runCLI(t, map[string]string{"ECAROTATOR_SERVER": srv.URL}, "status")
	if code != ExitRuntime || !strings.Contains(stderr, "HTTP 503") {
		t.Fatalf("exit %d, stderr %q: want %d and HTTP 503", code, stderr, ExitRuntime)
	}
}

func TestStateNamesEveryCase(t *testing.T) {
	tests := []struct {
		name string
		in   server.AppStatus
		want string
	}{
		{"an orphaned app is orphaned", server.AppStatus{Orphaned: true, InFlight: true}, "orphaned"},
		{"an in-flight app with an error is retrying", server.AppStatus{InFlight: true, LastError: "x"}, "retrying"},
		{"an in-flight app is in flight", server.AppStatus{InFlight: true}, "in flight"},
		{"an app whose last run failed is failing", server.AppStatus{LastError: "x", LastRotation: time.Unix(1, 0)}, "failing"},
		{"an app without a rotation is never rotated", server.AppStatus{}, "never rotated"},
		{"a rotated app is ok", server.AppStatus{LastRotation: time.Unix(1, 0)}, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := state(tt.in); got != tt.want {
				t.Errorf("state() = %q, want %q", got, tt.want)
			}
		})
	}
}
