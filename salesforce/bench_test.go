package salesforce_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// benchSim is a simulator whose API limit will not trip during a benchmark.
func benchSim(b *testing.B) *sfsim.Sim {
	b.Helper()
	return startSim(b, func(c *sfsim.Config) { c.Orgs[0].APILimit = 1 << 30 })
}

// benchTarget resolves the target app and consumer with a throwaway client.
func benchTarget(b *testing.B, sim *sfsim.Sim) (appID, consumerID string) {
	b.Helper()
	c, _ := simClient(b, sim)
	app, err := c.FindApp(b.Context(), targetECA)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := c.Consumers(b.Context(), app.ID)
	if err != nil || len(cons) == 0 {
		b.Fatal(err)
	}
	return app.ID, cons[0].ID
}

// BenchmarkClientCall reads a consumer's primary key through the client:
// token cache, request building, limit header parsing, bounded read,
// tolerant decoding, error classification.
func BenchmarkClientCall(b *testing.B) {
	sim := benchSim(b)
	appID, consumerID := benchTarget(b, sim)
	// A no-op logger like production at info level; the tests' observer
	// would record every debug entry.
	c, _ := simClient(b, sim, func(o *salesforce.Options) { o.Logger = zap.NewNop() })
	if _, err := c.PrimaryKey(b.Context(), appID, consumerID); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.PrimaryKey(b.Context(), appID, consumerID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawHTTPCall is the same GET with plain net/http and a token
// obtained once: the floor the client's overhead is measured against.
func BenchmarkRawHTTPCall(b *testing.B) {
	sim := benchSim(b)
	appID, consumerID := benchTarget(b, sim)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {rotatorKey}, "client_secret": {rotatorSecret}}
	resp, err := http.Post(sim.TokenURL(devhub), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		b.Fatalf("token: %v", err)
	}
	u := tok.InstanceURL + "/services/data/v" + salesforce.MinAPIVersion + "/apps/oauth/credentials/" + appID + "/" + consumerID + "?part=key"
	hc := &http.Client{Timeout: salesforce.DefaultRequestTimeout}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		var out struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.Key == "" {
			b.Fatalf("decode: %v", err)
		}
	}
}
