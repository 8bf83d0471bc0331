package sfsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkRotationCycle measures simulator throughput for one rotation
// cycle — token (client credentials), POST staged, PATCH rotate, DELETE the
// Rotated pair — over loopback HTTP (keep-alive client) and through Handler
// in process. Compare the two cycles/s figures for the cost of real HTTP.
func BenchmarkRotationCycle(b *testing.B) {
	b.Run("loopback", func(b *testing.B) {
		cfg := testConfig(b)
		cfg.Orgs[0].SecretAccess = true
		s := start(b, cfg)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		base := s.OrgURL(hub)
		do := func(method, path, ctype, body, tok string) []byte {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer res.Body.Close()
			out, _ := io.ReadAll(res.Body)
			if res.StatusCode >= 300 {
				b.Fatalf("%s %s: %d %s", method, path, res.StatusCode, out)
			}
			return out
		}
		runCycles(b, s, do)
	})
	b.Run("handler", func(b *testing.B) {
		cfg := testConfig(b)
		cfg.Orgs[0].SecretAccess = true
		s, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		h := s.Handler(hub)
		do := func(method, path, ctype, body, tok string) []byte {
			rec := serveInProcess(h, method, path, tok, ctype, body)
			if rec.Code >= 300 {
				b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
			}
			return rec.Body.Bytes()
		}
		runCycles(b, s, do)
	})
}

// runCycles runs b.N rotation cycles with do.
func runCycles(b *testing.B, s *Sim, do func(method, path, ctype, body, tok string) []byte) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {rotatorKey}, "client_secret": {rotatorSecret}}.Encode()
	cp := "/services/data/v65.0/apps/oauth/credentials/" + billingID + "/" + billingCID
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var tr tokenResponse
		_ = json.Unmarshal(do(http.MethodPost, tokenPath, "application/x-www-form-urlencoded", form, ""), &tr)
		var coll stagedColl
		_ = json.Unmarshal(do(http.MethodPost, cp+"/staged", "application/json", "{}", tr.AccessToken), &coll)
		var prev stagedJSON
		_ = json.Unmarshal(do(http.MethodPatch, cp+"/staged/"+coll.StagedCredentials[0].ID, "application/json", `{"command":"rotate"}`, tr.AccessToken), &prev)
		do(http.MethodDelete, cp+"/staged/"+prev.ID, "", "", tr.AccessToken)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
	s.ResetRequests()
}
