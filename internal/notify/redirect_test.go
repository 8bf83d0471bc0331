package notify

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
)

// TestWebhooksNeverFollowRedirects reproduces review L3: a receiver that
// answers 307 to another host used to get the signed delivery re-posted
// there. Now the target is never contacted and the delivery fails.
func TestWebhooksNeverFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(target.Close)
	bouncer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/admin/internal-endpoint", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(bouncer.Close)
	for _, client := range []*http.Client{nil, {}} { // the default client, and a caller's own
		rs := &results{}
		n, err := New(Options{Webhooks: []Webhook{hook("ops", bouncer.URL)}, Client: client, Backoff: rotator.NoRetry, Report: rs.add})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(succeeded); err != nil {
			t.Fatal(err)
		}
		closeNow(t, n)
		res := rs.get()
		var se *StatusError
		if len(res) != 1 || !errors.As(res[0].Err, &se) || se.Status != http.StatusTemporaryRedirect {
			t.Errorf("results %+v, want one failure with status 307", res)
		}
	}
	if h := hits.Load(); h != 0 {
		t.Errorf("the redirect target received %d deliveries", h)
	}
}
