package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestPlanFromServerAsksForTheNamedAppsAndPrintsTheTable(t *testing.T) {
	var gotQuery []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/plan" {
			http.NotFound(w, r)
			return
		}
		gotQuery = r.URL.Query()["app"]
		_ = json.NewEncoder(w).Encode(map[string]any{"plan": []rotator.PlanResult{{
			App: "billing", WouldRotate: true, DevHubOK: true, VaultVersion: 3, Managed: true,
			Decision: rotator.Decision{Reason: "MaxAgeExceeded", Message: "current pair is older than max age", Rotate: true},
		}}})
	}))
	t.Cleanup(srv.Close)

	code, out, errOut := runCLI(t, nil, "plan", "billing", "--server", srv.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if len(gotQuery) != 1 || gotQuery[0] != "billing" {
		t.Errorf("daemon was asked for %v, want [billing]", gotQuery)
	}
	for _, want := range []string{"APP", "billing", "true", "MaxAgeExceeded", "v3", "current pair is older than max age"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
}

func TestPlanFromAnUnreachableServerIsARuntimeError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	code, _, errOut := runCLI(t, map[string]string{"ECAROTATOR_SERVER": srv.URL}, "plan")
	if code != ExitRuntime || !strings.Contains(errOut, "plan from") {
		t.Fatalf("exit %d, stderr %q; want %d", code, errOut, ExitRuntime)
	}
}
