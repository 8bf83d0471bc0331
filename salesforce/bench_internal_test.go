package salesforce

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"go.uber.org/zap"
)

// The same pair as BenchmarkClientCall/BenchmarkRawHTTPCall but against a
// minimal httptest server, so the server's own cost (the simulator's model,
// locking and logging) does not hide the client's overhead.

func benchFake(b *testing.B) (*fake, string) {
	body := []byte(`{"id":"888CONSUMER0001","key":"3MVGPRIMARYKEY1","name":"Billing Sync","url":"/x","stagedCredentialsUrl":"/x/staged"}`)
	f := &fake{mux: http.NewServeMux()}
	f.srv = newBenchServer(b, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tokenPath {
			writeJSON(w, 200, `{"access_token":"`+testToken+`","instance_url":"`+f.srv.URL+`"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(LimitInfoHeader, "api-usage=10/100000")
		_, _ = w.Write(body)
	})
	return f, f.srv.URL + apiPrefix + "/apps/oauth/credentials/" + testApp + "/" + testConsumer + "?part=key"
}

func BenchmarkClientCallHTTPTest(b *testing.B) {
	f, _ := benchFake(b)
	c, err := New(Options{LoginURL: f.srv.URL, Auth: Auth{Method: AuthJWT, ClientID: "c", Username: "u", Key: testKey()}, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.PrimaryKey(b.Context(), testApp, testConsumer); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.PrimaryKey(b.Context(), testApp, testConsumer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawHTTPCallHTTPTest(b *testing.B) {
	_, u := benchFake(b)
	hc := &http.Client{Timeout: DefaultRequestTimeout}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct {
			Key string `json:"key"`
		}
		if err != nil || json.Unmarshal(body, &out) != nil || out.Key == "" {
			b.Fatal("bad response")
		}
	}
}
