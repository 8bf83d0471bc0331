package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

func TestAPICallKeepsTheTokenOffPlainHTTPAndMapsRefusals(t *testing.T) {
	tok := rotator.NewSecret("hvs.caller-token-never-printed")
	err := apiCall(t.Context(), "http://ecarotator.example:9464", http.MethodPost, "/api/v1/apps/billing/rotate", tok, nil, nil)
	var ue usageError
	if !errors.As(err, &ue) || strings.Contains(err.Error(), tok.Reveal()) {
		t.Fatalf("plain http outside loopback: %v, want a usage error without the token", err)
	}
	var gotToken string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotToken = r.Header.Get("X-Vault-Token")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(server.ErrorBody{Code: server.CodePreviousInOverlap, Error: "the previous pair stays valid until 2026-12-30T00:00:00Z"})
	}))
	t.Cleanup(srv.Close)
	err = apiCall(t.Context(), srv.URL, http.MethodPost, "/api/v1/apps/billing/rotate", tok, server.ActionRequest{Reason: "r"}, nil)
	if !errors.Is(err, rotator.ErrPreviousInOverlap) || !strings.Contains(err.Error(), "2026-12-30") {
		t.Errorf("409 previous_in_overlap: %v", err)
	}
	if gotToken != tok.Reveal() {
		t.Error("the caller's token was not sent as X-Vault-Token")
	}
	if strings.Contains(err.Error(), tok.Reveal()) {
		t.Error("the token appears in the error")
	}
}
