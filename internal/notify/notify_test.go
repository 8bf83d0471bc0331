package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

const hmacKey = "whsec-test-key-3f9a1c"

// received is one request a receiver saw.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is an httptest server that answers with the next status of its
// script (200 once the script is used up) and records every request.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	requests []received
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	r := &receiver{script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, received{req.Header.Clone(), body})
		status := http.StatusOK
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// results collects Report calls.
type results struct {
	mu  sync.Mutex
	all []Result
}

func (rs *results) add(r Result) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.all = append(rs.all, r)
}

func (rs *results) get() []Result {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]Result(nil), rs.all...)
}

func hook(name, url string, events ...string) Webhook {
	return Webhook{Name: name, URL: url, Secret: rotator.NewSecret(hmacKey), Events: events, MaxAttempts: 3, Timeout: 5 * time.Second}
}

func newNotifier(t *testing.T, rs *results, hooks ...Webhook) *Notifier {
	t.Helper()
	n, err := New(Options{
		Webhooks: hooks,
		Backoff:  rotator.NoRetry,
		Report:   rs.add,
		Now:      func() time.Time { return time.Unix(1_790_000_000, 0) },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

func closeNow(t *testing.T, n *Notifier) {
	t.Helper()
	if err := n.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

var succeeded = Message{
	Event: EventRotationSucceeded, App: "billing", Org: "devhub-prod", RotationID: "rot-123",
	Outcome: string(rotator.OutcomeOK), Time: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC), Message: "rotated",
}

func TestDeliveryIsSignedAndVerifies(t *testing.T) {
	rcv := newReceiver(t)
	rs := &results{}
	n := newNotifier(t, rs, hook("ops", rcv.URL+"/hook"))
	if err := n.Notify(succeeded); err != nil {
		t.Fatal(err)
	}
	closeNow(t, n)

	reqs := rcv.got()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	ts, sig := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)
	if ts != "1790000000" {
		t.Errorf("timestamp header %q, want 1790000000", ts)
	}
	if !Verify([]byte(hmacKey), ts, r.Body, sig) {
		t.Errorf("signature %q does not verify", sig)
	}
	if !VerifyFresh([]byte(hmacKey), ts, r.Body, sig, time.Unix(1_790_000_060, 0), 5*time.Minute) {
		t.Error("VerifyFresh rejected a one-minute-old delivery")
	}
	var got Message
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Event != succeeded.Event || got.App != "billing" || got.Org != "devhub-prod" || got.RotationID != "rot-123" ||
		got.Outcome != "ok" || !got.Time.Equal(succeeded.Time) || got.Message != "rotated" || got.Delivery == "" {
		t.Errorf("body %+v does not carry the message", got)
	}
	if h := r.Header.Get(HeaderEvent); h != EventRotationSucceeded {
		t.Errorf("event header %q", h)
	}
	if h := r.Header.Get(HeaderDelivery); h != got.Delivery {
		t.Errorf("delivery header %q, body %q", h, got.Delivery)
	}
	if res := rs.get(); len(res) != 1 || res[0].Err != nil || res[0].Attempts != 1 {
		t.Errorf("results %+v, want one success at the first attempt", res)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		script       []int
		wantRequests int
		wantErr      error
	}{
		{"a 500 is retried until it succeeds", []int{500, 503}, 3, nil},
		{"a 429 is retried", []int{429}, 2, nil},
		{"a 400 is final", []int{400}, 1, ErrRejected},
		{"a 401 is final", []int{401}, 1, ErrRejected},
		{"5xx on every attempt gives up after MaxAttempts", []int{500, 500, 500, 500}, 3, ErrGaveUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.script...)
			rs := &results{}
			n := newNotifier(t, rs, hook("ops", rcv.URL))
			if err := n.Notify(succeeded); err != nil {
				t.Fatal(err)
			}
			closeNow(t, n)
			reqs := rcv.got()
			if len(reqs) != tt.wantRequests {
				t.Errorf("got %d requests, want %d", len(reqs), tt.wantRequests)
			}
			res := rs.get()
			if len(res) != 1 {
				t.Fatalf("got %d results, want 1", len(res))
			}
			if tt.wantErr == nil && res[0].Err != nil || tt.wantErr != nil && !errors.Is(res[0].Err, tt.wantErr) {
				t.Errorf("result error %v, want %v", res[0].Err, tt.wantErr)
			}
			var se *StatusError
			if tt.wantErr != nil && !errors.As(res[0].Err, &se) {
				t.Errorf("result error %v carries no *StatusError", res[0].Err)
			}
			// Every retry of one delivery keeps its id and is signed anew.
			for _, r := range reqs {
				if r.Header.Get(HeaderDelivery) != reqs[0].Header.Get(HeaderDelivery) {
					t.Error("delivery id changed between attempts")
				}
				if !Verify([]byte(hmacKey), r.Header.Get(HeaderTimestamp), r.Body, r.Header.Get(HeaderSignature)) {
					t.Error("a retry is not signed")
				}
			}
		})
	}
}

func TestNetworkErrorsAreRetriedAndKeepTheURLOut(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL + "/services/T000/B000/url-token-must-not-leak"
	dead.Close()
	rs := &results{}
	n := newNotifier(t, rs, hook("chat", url))
	if err := n.Notify(succeeded); err != nil {
		t.Fatal(err)
	}
	closeNow(t, n)
	res := rs.get()
	if len(res) != 1 || !errors.Is(res[0].Err, ErrGaveUp) || res[0].Attempts != 3 {
		t.Fatalf("results %+v, want one ErrGaveUp after 3 attempts", res)
	}
	if msg := res[0].Err.Error(); strings.Contains(msg, "url-token-must-not-leak") {
		t.Errorf("error %q contains the webhook URL", msg)
	}
}

func TestEventFilters(t *testing.T) {
	all, failures, named := newReceiver(t), newReceiver(t), newReceiver(t)
	rs := &results{}
	n := newNotifier(t, rs,
		hook("all", all.URL),
		hook("failures", failures.URL, EventRotationFailed, EventRotationOrphaned),
		hook("named", named.URL, "*"),
	)
	for _, m := range []Message{
		{Event: EventRotationSucceeded, App: "a"},
		{Event: EventRotationFailed, App: "a"},
		{Event: EventDriftDetected, App: "a", To: []string{"all"}},
		{Event: EventRotationOrphaned, App: "b", To: []string{"failures", "named"}},
	} {
		if err := n.Notify(m); err != nil {
			t.Fatal(err)
		}
	}
	closeNow(t, n)
	events := func(r *receiver) string {
		var out []string
		for _, q := range r.got() {
			out = append(out, q.Header.Get(HeaderEvent))
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name string
		rcv  *receiver
		want string
	}{
		{"a webhook without a filter gets everything addressed to it", all, "rotation.succeeded,rotation.failed,drift.detected"},
		{"a filtered webhook gets only its events", failures, "rotation.failed,rotation.orphaned"},
		{"a star filter with an app notify list gets what is addressed to it", named, "rotation.succeeded,rotation.failed,rotation.orphaned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := events(tt.rcv); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNoSecretInDeliveries(t *testing.T) {
	rcv := newReceiver(t)
	rs := &results{}
	n := newNotifier(t, rs, hook("ops", rcv.URL))
	consumerSecret := rotator.NewSecret("consumer-secret-value-77")
	m := succeeded
	m.Event = EventRotationFailed
	m.Message = fmt.Sprintf("verify failed for %v", consumerSecret) // a careless caller
	if err := n.Notify(m); err != nil {
		t.Fatal(err)
	}
	closeNow(t, n)
	for _, r := range rcv.got() {
		dump := string(r.Body) + fmt.Sprint(r.Header)
		for _, s := range []string{hmacKey, "consumer-secret-value-77"} {
			if strings.Contains(dump, s) {
				t.Errorf("delivery contains secret %q: %s", s, dump)
			}
		}
	}
}

// blocker is a receiver that holds every request until released or the
// client gives up.
func blocker(t *testing.T) (srv *httptest.Server, arrived <-chan struct{}, release func()) {
	t.Helper()
	in := make(chan struct{}, 16)
	stop := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	var once sync.Once
	release = func() { once.Do(func() { close(stop) }) }
	t.Cleanup(func() { release(); srv.Close() })
	return srv, in, release
}

func TestQueueIsBounded(t *testing.T) {
	srv, arrived, release := blocker(t)
	rs := &results{}
	n, err := New(Options{Webhooks: []Webhook{hook("slow", srv.URL)}, QueueSize: 1, Backoff: rotator.NoRetry, Report: rs.add})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(succeeded); err != nil { // taken by the worker
		t.Fatal(err)
	}
	<-arrived
	if err := n.Notify(succeeded); err != nil { // waits in the queue
		t.Fatal(err)
	}
	if err := n.Notify(succeeded); !errors.Is(err, ErrQueueFull) {
		t.Errorf("third Notify = %v, want ErrQueueFull", err)
	}
	release()
	closeNow(t, n)
	if got := len(rs.get()); got != 2 {
		t.Errorf("%d deliveries finished, want 2", got)
	}
	if err := n.Notify(succeeded); !errors.Is(err, ErrClosed) {
		t.Errorf("Notify after Close = %v, want ErrClosed", err)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestCloseDrainsWithinItsBound(t *testing.T) {
	t.Run("a healthy receiver gets every queued message", func(t *testing.T) {
		rcv := newReceiver(t)
		rs := &results{}
		n := newNotifier(t, rs, hook("ops", rcv.URL))
		for range 5 {
			if err := n.Notify(succeeded); err != nil {
				t.Fatal(err)
			}
		}
		closeNow(t, n)
		if got := len(rcv.got()); got != 5 {
			t.Errorf("receiver got %d, want 5", got)
		}
	})
	t.Run("a stuck receiver is abandoned when the close context ends", func(t *testing.T) {
		srv, arrived, _ := blocker(t)
		rs := &results{}
		n := newNotifier(t, rs, hook("stuck", srv.URL))
		for range 3 {
			if err := n.Notify(succeeded); err != nil {
				t.Fatal(err)
			}
		}
		<-arrived
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // the deadline has passed
		if err := n.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Close = %v, want context.Canceled", err)
		}
		if res := rs.get(); len(res) != 1 || !errors.Is(res[0].Err, ErrGaveUp) {
			t.Errorf("results %+v, want the in-flight delivery given up and the rest dropped", res)
		}
	})
}

func TestVerify(t *testing.T) {
	key := []byte(hmacKey)
	body := []byte(`{"event":"rotation.succeeded"}`)
	good := Sign(rotator.NewSecret(hmacKey), "1790000000", body)
	tests := []struct {
		name      string
		key       []byte
		timestamp string
		body      []byte
		signature string
		want      bool
	}{
		{"the signature of the same text verifies", key, "1790000000", body, good, true},
		{"another key fails", []byte("other"), "1790000000", body, good, false},
		{"a changed body fails", key, "1790000000", []byte(`{"event":"rotation.failed"}`), good, false},
		{"a changed timestamp fails", key, "1790000001", body, good, false},
		{"a missing prefix fails", key, "1790000000", body, strings.TrimPrefix(good, "sha256="), false},
		{"bad hex fails", key, "1790000000", body, "sha256=zz", false},
		{"an empty signature fails", key, "1790000000", body, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.key, tt.timestamp, tt.body, tt.signature); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a stale timestamp fails the freshness check", func(t *testing.T) {
		if VerifyFresh(key, "1790000000", body, good, time.Unix(1_790_000_000, 0).Add(time.Hour), 5*time.Minute) {
			t.Error("VerifyFresh accepted an hour-old delivery")
		}
	})
}

func TestUpcomingReminders(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	next := map[string]time.Time{
		"soon":    now.Add(2 * time.Hour),
		"edge":    now.Add(24 * time.Hour),
		"later":   now.Add(48 * time.Hour),
		"overdue": now.Add(-time.Minute),
		"unknown": {},
	}
	tests := []struct {
		name string
		lead time.Duration
		want string
	}{
		{"apps due within the lead are reminded, sorted", 24 * time.Hour, "[edge soon]"},
		{"a short lead reminds only the nearest", 3 * time.Hour, "[soon]"},
		{"a zero lead turns reminders off", 0, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(UpcomingReminders(now, next, tt.lead)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("each planned run is reminded once", func(t *testing.T) {
		var r Reminders
		runs := map[string]time.Time{"soon": now.Add(2 * time.Hour)}
		first := fmt.Sprint(r.Due(now, runs, 24*time.Hour))
		second := fmt.Sprint(r.Due(now.Add(time.Minute), runs, 24*time.Hour))
		runs["soon"] = now.Add(3 * time.Hour) // re-planned: a new run
		third := fmt.Sprint(r.Due(now.Add(2*time.Minute), runs, 24*time.Hour))
		if first != "[soon]" || second != "[]" || third != "[soon]" {
			t.Errorf("reminders %s %s %s, want [soon] [] [soon]", first, second, third)
		}
	})
}

func TestNewRejectsBadWebhooks(t *testing.T) {
	ok := hook("ops", "https://hooks.example.test/x")
	tests := []struct {
		name string
		hook Webhook
	}{
		{"a missing name", func() Webhook { h := ok; h.Name = ""; return h }()},
		{"a relative URL", func() Webhook { h := ok; h.URL = "/hook"; return h }()},
		{"a non-HTTP URL", func() Webhook { h := ok; h.URL = "ftp://x/y"; return h }()},
		{"a missing HMAC secret", func() Webhook { h := ok; h.Secret = rotator.Secret{}; return h }()},
		{"an unknown event", func() Webhook { h := ok; h.Events = []string{"rotation.started"}; return h }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Options{Webhooks: []Webhook{tt.hook}}); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
	t.Run("duplicate names", func(t *testing.T) {
		if _, err := New(Options{Webhooks: []Webhook{ok, ok}}); err == nil {
			t.Error("New succeeded, want an error")
		}
	})
}

func TestDefaultBackoffDoublesFromOneSecondToOneMinute(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 6: 32 * time.Second, 7: time.Minute, 100: time.Minute} {
		if retry, got := DefaultBackoff(attempt); !retry || got != want {
			t.Errorf("DefaultBackoff(%d) = %v, %s; want true, %s", attempt, retry, got, want)
		}
	}
}
