package salesforce

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

const (
	routeUsage    = "GET " + apiPrefix + "/apps/oauth/usage"
	routeCons     = "GET " + apiPrefix + "/apps/oauth/credentials/{app}"
	routeCreds    = "GET " + apiPrefix + "/apps/oauth/credentials/{app}/{consumer}"
	routeStaged   = apiPrefix + "/apps/oauth/credentials/{app}/{consumer}/staged"
	routeStagedID = apiPrefix + "/apps/oauth/credentials/{app}/{consumer}/staged/{id}"
)

func TestFindAppWalksPagesUntilAnEmptyOne(t *testing.T) {
	tests := []struct {
		name      string
		find      string
		wantID    string
		wantErr   error
		wantPages int
	}{
		{"an app on the first page is found without paging further", "Billing_Sync", testApp, nil, 1},
		{"an app on the second page is found", "Late_App", "0xILATE00000001", nil, 2},
		{"a case-insensitive match is accepted after all pages", "billing_sync", testApp, nil, 3},
		{"an unknown app is not found after the empty page", "Nope", "", rotator.ErrNotFound, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle(routeUsage, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("pageSize") != "100" {
					t.Errorf("pageSize %q", r.URL.Query().Get("pageSize"))
				}
				switch r.URL.Query().Get("page") {
				case "0":
					serveGolden(t, 200, "usage_page0.json")(w, r)
				case "1":
					serveGolden(t, 200, "usage_page1.json")(w, r)
				default:
					serveGolden(t, 200, "usage_empty.json")(w, r)
				}
			})
			c, _, _ := testClient(t, f)
			app, err := c.FindApp(t.Context(), tt.find)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if app.ID != tt.wantID {
				t.Errorf("id %q, want %q", app.ID, tt.wantID)
			}
			if got := len(f.usageRequests()); got != tt.wantPages {
				t.Errorf("pages read %d, want %d", got, tt.wantPages)
			}
		})
	}
}

func TestFindAppStopsWhenTheServerIgnoresPage(t *testing.T) {
	f := newFake(t)
	f.handle(routeUsage, serveGolden(t, 200, "usage_page0.json"))
	c, _, _ := testClient(t, f)
	if _, err := c.FindApp(t.Context(), "Nope"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if got := len(f.usageRequests()); got != 2 {
		t.Errorf("pages read %d, want 2 (stop on a repeated page)", got)
	}
}

func TestConsumersAndCredentials(t *testing.T) {
	f := newFake(t)
	f.handle(routeCons, serveGolden(t, 200, "consumers.json"))
	f.handle(routeCreds, func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("app") != testApp || r.PathValue("consumer") != testConsumer {
			t.Errorf("ids %q/%q", r.PathValue("app"), r.PathValue("consumer"))
		}
		switch r.URL.Query().Get("part") {
		case "keyandsecret":
			serveGolden(t, 200, "credentials_keyandsecret.json")(w, r)
		case "key":
			serveGolden(t, 200, "credentials_key.json")(w, r)
		default:
			t.Errorf("part %q", r.URL.Query().Get("part"))
		}
	})
	c, _, logs := testClient(t, f)
	cons, err := c.Consumers(t.Context(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(cons) != 1 || cons[0] != (rotator.Consumer{ID: testConsumer, Key: "3MVGPRIMARYKEY1", Name: "Billing Sync"}) {
		t.Errorf("consumers %+v", cons)
	}
	creds, err := c.Credentials(t.Context(), testApp, testConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if creds.Key != "3MVGPRIMARYKEY1" || creds.Secret.Reveal() != testSecret {
		t.Errorf("credentials key %q", creds.Key)
	}
	key, err := c.PrimaryKey(t.Context(), testApp, testConsumer)
	if err != nil || key != "3MVGPRIMARYKEY1" {
		t.Errorf("primary key %q, %v", key, err)
	}
	assertLogsClean(t, logs)
}

func TestCredentialsWithoutSecretIsAPermissionProblem(t *testing.T) {
	f := newFake(t)
	f.handle(routeCreds, serveGolden(t, 200, "credentials_key.json"))
	c, _, _ := testClient(t, f)
	_, err := c.Credentials(t.Context(), testApp, testConsumer)
	if !errors.Is(err, rotator.ErrPermission) {
		t.Fatalf("err = %v, want ErrPermission", err)
	}
}

func TestStagedDecodesEveryKnownShape(t *testing.T) {
	created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		body       string
		wantLen    int
		wantStatus rotator.StagedStatus
	}{
		{"the wrapper object", 200, "staged_wrapper.json", 1, rotator.StagedActive},
		{"a bare array", 200, "staged_array.json", 1, rotator.StagedRotated},
		{"a bare object", 200, "staged_object.json", 1, rotator.StagedActive},
		{"an empty list is an empty slot", 200, "staged_empty.json", 0, ""},
		{"a 404 is an empty slot", 404, "error_not_found.json", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET "+routeStaged, serveGolden(t, tt.status, tt.body))
			c, _, _ := testClient(t, f)
			got, err := c.Staged(t.Context(), testApp, testConsumer)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || len(got) != tt.wantLen {
				t.Fatalf("got %d entries (nil=%v), want %d", len(got), got == nil, tt.wantLen)
			}
			if tt.wantLen == 0 {
				return
			}
			s := got[0]
			if s.ID != testStagedID || s.Key != "3MVGSTAGEDKEY02" || s.Status != tt.wantStatus {
				t.Errorf("entry %+v", s)
			}
			if !s.Created.Equal(created) || !s.Expires.Equal(created.AddDate(0, 0, 30)) {
				t.Errorf("dates %v / %v", s.Created, s.Expires)
			}
		})
	}
}

func TestStagePostsEmptyJSONAndReturnsTheSecret(t *testing.T) {
	f := newFake(t)
	f.handle("POST "+routeStaged, serveGolden(t, 201, "staged_post.json"))
	c, _, logs := testClient(t, f)
	got, err := c.Stage(t.Context(), testApp, testConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != testStagedID || got.Key != "3MVGSTAGEDKEY02" || got.Secret.Reveal() != testStagedSecret || got.Status != rotator.StagedActive {
		t.Errorf("staged %+v", got)
	}
	r := f.requests()[0]
	if r.Body != golden(t, "post_staged_request.golden.json") || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST body %q content type %q", r.Body, r.Header.Get("Content-Type"))
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		t.Errorf("missing bearer token")
	}
	assertLogsClean(t, logs)
}

func TestStageFallsBackToGetWhenThePostLacksAnID(t *testing.T) {
	tests := []struct {
		name        string
		getBody     string
		wantErr     error
		wantSecret  string
		wantCode    string
		wantStageID string
	}{
		{"the read-back carries the secret", "staged_get_with_secret.json", nil, testStagedSecret, "", testStagedID},
		{"the read-back lacks the secret: ambiguous with the id", "staged_wrapper.json", rotator.ErrAmbiguous, "", "STAGED_SECRET_MISSING", testStagedID},
		{"nothing is staged after all: ambiguous", "staged_empty.json", rotator.ErrAmbiguous, "", "STAGED_NOT_FOUND", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("POST "+routeStaged, serveGolden(t, 201, "staged_post_noid.json"))
			f.handle("GET "+routeStaged, serveGolden(t, 200, tt.getBody))
			c, _, _ := testClient(t, f)
			got, err := c.Stage(t.Context(), testApp, testConsumer)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var apiErr *APIError
			if tt.wantCode != "" && (!errors.As(err, &apiErr) || apiErr.Code != tt.wantCode) {
				t.Errorf("code %v, want %s", err, tt.wantCode)
			}
			if got.Secret.Reveal() != tt.wantSecret || got.ID != tt.wantStageID {
				t.Errorf("staged id %q secret set=%v", got.ID, !got.Secret.IsZero())
			}
			if n := len(f.requests()); n != 2 {
				t.Errorf("requests %d, want POST + GET", n)
			}
		})
	}
}

func TestStageOnAnOccupiedSlot(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		codes     []string
		getBody   string
		want      error
		wantCalls int
	}{
		{"a 409 means occupied without a probe", 409, "error_bad_request.json", nil, "", rotator.ErrSlotOccupied, 1},
		{"a configured errorCode means occupied without a probe", 400, "error_bad_request.json", []string{"INVALID_INPUT"}, "", rotator.ErrSlotOccupied, 1},
		{"an unknown 400 with a visible staged entry is occupied", 400, "error_bad_request.json", nil, "staged_wrapper.json", rotator.ErrSlotOccupied, 2},
		{"an unknown 400 with an empty slot stays final", 400, "error_bad_request.json", nil, "staged_empty.json", nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("POST "+routeStaged, serveGolden(t, tt.status, tt.body))
			if tt.getBody != "" {
				f.handle("GET "+routeStaged, serveGolden(t, 200, tt.getBody))
			}
			c, _, _ := testClient(t, f, func(o *Options) { o.SlotOccupiedCodes = tt.codes })
			_, err := c.Stage(t.Context(), testApp, testConsumer)
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && apiErr.Class != ClassFinal {
				t.Errorf("class %v, want final", apiErr.Class)
			}
			if apiErr.Code != "INVALID_INPUT" || !strings.Contains(apiErr.Message, "already exists") {
				t.Errorf("Salesforce code/message lost: %+v", apiErr)
			}
			if n := len(f.requests()); n != tt.wantCalls {
				t.Errorf("requests %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestPromoteAndDeleteBuildURLsFromIDs(t *testing.T) {
	f := newFake(t)
	f.handle("PATCH "+routeStagedID, func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testStagedID {
			t.Errorf("id %q", r.PathValue("id"))
		}
		serveGolden(t, 200, "staged_object.json")(w, r)
	})
	f.handle("DELETE "+routeStagedID, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	c, _, _ := testClient(t, f)
	if _, err := c.Promote(t.Context(), testApp, testConsumer, testStagedID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteStaged(t.Context(), testApp, testConsumer, testStagedID); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if reqs[0].Body != golden(t, "patch_rotate_request.golden.json") || reqs[0].Header.Get("Content-Type") != "application/json" {
		t.Errorf("PATCH body %q", reqs[0].Body)
	}
	want := apiPrefix + "/apps/oauth/credentials/" + testApp + "/" + testConsumer + "/staged/" + testStagedID
	if reqs[0].Path != want || reqs[1].Path != want {
		t.Errorf("paths %q, %q, want %q", reqs[0].Path, reqs[1].Path, want)
	}
}

func TestIDsAreEscapedAndEmptyIDsRefused(t *testing.T) {
	f := newFake(t)
	f.handle("DELETE "+routeStagedID, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	c, _, _ := testClient(t, f)
	if err := c.DeleteStaged(t.Context(), testApp, testConsumer, "../../x"); err == nil {
		// The mux may 404 the escaped path; either way it must not be
		// interpreted as a parent path.
		if p := f.requests()[0].Path; strings.Contains(p, "/x") && !strings.Contains(p, "..%2F") && !strings.Contains(p, "../") {
			t.Errorf("id not escaped: %q", p)
		}
	}
	for _, call := range []func() error{
		func() error { return c.DeleteStaged(t.Context(), testApp, testConsumer, "") },
		func() error { _, err := c.Staged(t.Context(), "", testConsumer); return err },
		func() error { _, err := c.Promote(t.Context(), testApp, " ", testStagedID); return err },
	} {
		if err := call(); err == nil {
			t.Errorf("empty identifier accepted")
		}
	}
}

func TestDeleteOfAGoneCredentialIsNotFound(t *testing.T) {
	f := newFake(t)
	f.handle("DELETE "+routeStagedID, serveGolden(t, 404, "error_not_found.json"))
	c, _, _ := testClient(t, f)
	err := c.DeleteStaged(t.Context(), testApp, testConsumer, testStagedID)
	if !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

// TestErrorClassesPerCall runs every call against each failure and checks
// retries, the class and the sentinel in one table.
func TestErrorClassesPerCall(t *testing.T) {
	type op struct {
		name       string
		pattern    string
		idempotent bool
		run        func(ctx context.Context, c *Client) error
	}
	ops := []op{
		{"GET consumer credentials", routeCreds, true, func(ctx context.Context, c *Client) error {
			_, err := c.Credentials(ctx, testApp, testConsumer)
			return err
		}},
		{"GET staged", "GET " + routeStaged, true, func(ctx context.Context, c *Client) error {
			_, err := c.Staged(ctx, testApp, testConsumer)
			return err
		}},
		{"POST staged", "POST " + routeStaged, false, func(ctx context.Context, c *Client) error {
			_, err := c.Stage(ctx, testApp, testConsumer)
			return err
		}},
		{"PATCH rotate", "PATCH " + routeStagedID, false, func(ctx context.Context, c *Client) error {
			_, err := c.Promote(ctx, testApp, testConsumer, testStagedID)
			return err
		}},
		{"DELETE staged", "DELETE " + routeStagedID, false, func(ctx context.Context, c *Client) error {
			return c.DeleteStaged(ctx, testApp, testConsumer, testStagedID)
		}},
	}
	type fault struct {
		name string
		h    http.HandlerFunc
		// expectations for idempotent / non-idempotent calls
		readCalls, writeCalls int
		readErr, writeErr     error
	}
	faults := []fault{
		{"a 503 is retried on reads and ambiguous on writes", serveGolden(t, 503, "error_unavailable.json"), 4, 1, rotator.ErrUnreachable, rotator.ErrAmbiguous},
		{"a 500 without a body is retried on reads and ambiguous on writes", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, 4, 1, rotator.ErrUnreachable, rotator.ErrAmbiguous},
		{"a connection reset is retried on reads and ambiguous on writes", resetConn, 4, 1, rotator.ErrUnreachable, rotator.ErrAmbiguous},
		{"REQUEST_LIMIT_EXCEEDED is never hot-retried", serveGolden(t, 403, "error_limit.json"), 1, 1, rotator.ErrRateLimited, rotator.ErrRateLimited},
		{"INSUFFICIENT_ACCESS is a final permission error", serveGolden(t, 403, "error_insufficient.json"), 1, 1, rotator.ErrPermission, rotator.ErrPermission},
		{"a 429 is retried on reads and returned unambiguously on writes", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }, 4, 1, rotator.ErrUnreachable, rotator.ErrUnreachable},
	}
	for _, o := range ops {
		for _, ft := range faults {
			t.Run(o.name+": "+ft.name, func(t *testing.T) {
				f := newFake(t)
				var n atomic.Int32
				f.handle(o.pattern, func(w http.ResponseWriter, r *http.Request) {
					n.Add(1)
					ft.h(w, r)
				})
				if strings.HasPrefix(o.pattern, "POST ") {
					// The occupied-slot probe must not mask the fault.
					f.handle("GET "+routeStaged, serveGolden(t, 200, "staged_empty.json"))
				}
				c, _, logs := testClient(t, f)
				err := o.run(t.Context(), c)
				wantCalls, wantErr := ft.readCalls, ft.readErr
				if !o.idempotent {
					wantCalls, wantErr = ft.writeCalls, ft.writeErr
				}
				if !errors.Is(err, wantErr) {
					t.Errorf("err = %v, want %v", err, wantErr)
				}
				if !o.idempotent && wantErr != rotator.ErrAmbiguous && errors.Is(err, rotator.ErrAmbiguous) {
					t.Errorf("err = %v is ambiguous but Salesforce answered", err)
				}
				got := int(n.Load())
				if o.idempotent && ft.name == faults[2].name {
					// net/http itself replays a GET once when a reused
					// connection dies before answering: each of our 4
					// attempts may count twice.
					if got < wantCalls || got > 2*wantCalls {
						t.Errorf("calls %d, want %d..%d", got, wantCalls, 2*wantCalls)
					}
				} else if got != wantCalls {
					t.Errorf("calls %d, want %d", got, wantCalls)
				}
				if err != nil {
					assertNoLeak(t, "error", err.Error())
				}
				assertLogsClean(t, logs)
			})
		}
	}
}

func TestRetryAfterIsHonouredAndCapped(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		want       time.Duration
	}{
		{"a Retry-After longer than the backoff wins", "5", 5 * time.Second},
		{"a Retry-After beyond the cap is capped", "3600", 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var n atomic.Int32
			f.handle(routeCreds, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", tt.retryAfter)
					writeJSON(w, 503, golden(t, "error_unavailable.json"))
					return
				}
				serveGolden(t, 200, "credentials_key.json")(w, r)
			})
			c, s, _ := testClient(t, f)
			if _, err := c.PrimaryKey(t.Context(), testApp, testConsumer); err != nil {
				t.Fatal(err)
			}
			if w := s.waits(); len(w) != 1 || w[0] != tt.want {
				t.Errorf("waits %v, want [%v]", w, tt.want)
			}
		})
	}
}

func TestBackoffWaitsAreUsedBetweenRetries(t *testing.T) {
	f := newFake(t)
	f.handle(routeCreds, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	c, s, _ := testClient(t, f, func(o *Options) {
		o.Backoff = rotator.Backoff{Base: time.Second, Max: time.Minute, Attempts: 2}.NextAttempt
	})
	_, err := c.PrimaryKey(t.Context(), testApp, testConsumer)
	if !errors.Is(err, rotator.ErrUnreachable) {
		t.Fatalf("err = %v", err)
	}
	if w := s.waits(); len(w) != 2 || w[0] != time.Second || w[1] != 2*time.Second {
		t.Errorf("waits %v, want [1s 2s]", w)
	}
}

func TestLimitInfoIsExposedThroughUsage(t *testing.T) {
	f := newFake(t)
	f.handle(routeCreds, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(LimitInfoHeader, "api-usage=10018/100000; api-bursts=1/750")
		serveGolden(t, 200, "credentials_key.json")(w, r)
	})
	c, _, _ := testClient(t, f)
	if _, ok := c.Usage(); ok {
		t.Fatal("usage known before any call")
	}
	if _, err := c.PrimaryKey(t.Context(), testApp, testConsumer); err != nil {
		t.Fatal(err)
	}
	u, ok := c.Usage()
	if !ok || u.Used != 10018 || u.Limit != 100000 || !u.At.Equal(time.Unix(1_800_000_000, 0)) {
		t.Errorf("usage %+v, %v", u, ok)
	}
}

func TestBodiesAreBounded(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		run     func(context.Context, *Client) error
		want    error
	}{
		{"an oversized read body is a final too-large error", routeCreds, func(ctx context.Context, c *Client) error {
			_, err := c.PrimaryKey(ctx, testApp, testConsumer)
			return err
		}, ErrBodyTooLarge},
		{"an oversized POST staged body is ambiguous", "POST " + routeStaged, func(ctx context.Context, c *Client) error {
			_, err := c.Stage(ctx, testApp, testConsumer)
			return err
		}, rotator.ErrAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			big := `{"key":"` + strings.Repeat("x", 4096) + `"}`
			f.handle(tt.pattern, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, big) })
			c, _, _ := testClient(t, f, func(o *Options) { o.MaxBodyBytes = 1024 })
			err := tt.run(t.Context(), c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("requests %d, want 1 (not retried)", n)
			}
		})
	}
}

func TestTimeoutsSurfaceAsDeadlineErrors(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.handle(routeCreds, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _, _ := testClient(t, f, func(o *Options) { o.RequestTimeout = 50 * time.Millisecond; o.Backoff = rotator.NoRetry })
	_, err := c.PrimaryKey(t.Context(), testApp, testConsumer)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, rotator.ErrUnreachable) {
		t.Fatalf("err = %v, want deadline + unreachable", err)
	}
	assertNoLeak(t, "error", err.Error())
	if strings.Contains(err.Error(), "http://") {
		t.Errorf("error carries a URL: %v", err)
	}
}

func TestConnectionRefusedMayRetryAMutation(t *testing.T) {
	f := newFake(t)
	f.handle("POST "+routeStaged, serveGolden(t, 201, "staged_post.json"))
	c, _, _ := testClient(t, f)
	// Authenticate, then point the session at a closed port: the POST is
	// provably never sent, so it is retried (and fails with Unreachable,
	// not Ambiguous).
	sess, err := c.session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dead := newFake(t)
	dead.srv.Close()
	sess.instance.Host = strings.TrimPrefix(dead.srv.URL, "http://")
	_, err = c.Stage(t.Context(), testApp, testConsumer)
	if !errors.Is(err, rotator.ErrUnreachable) || errors.Is(err, rotator.ErrAmbiguous) {
		t.Fatalf("err = %v, want unreachable and not ambiguous", err)
	}
}

func TestRetryLogsUseStableKeys(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	f.handle(routeCreds, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeJSON(w, 503, golden(t, "error_unavailable.json"))
			return
		}
		serveGolden(t, 200, "credentials_keyandsecret.json")(w, r)
	})
	c, _, logs := testClient(t, f)
	if _, err := c.Credentials(t.Context(), testApp, testConsumer); err != nil {
		t.Fatal(err)
	}
	warns := logs.FilterMessage("salesforce call failed, retrying").All()
	if len(warns) != 1 {
		t.Fatalf("retry log entries %d, want 1", len(warns))
	}
	fields := warns[0].ContextMap()
	for _, k := range []string{"org", "method", "route", "status", "attempt", "err"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("retry log lacks key %q: %v", k, fields)
		}
	}
	if fields["route"] != RouteCredentials || fields["org"] != "devhub" {
		t.Errorf("route/org = %v/%v", fields["route"], fields["org"])
	}
	assertLogsClean(t, logs)
}

func TestACutOffBodyIsRetriedOnReadsAndAmbiguousOnWrites(t *testing.T) {
	cutOff := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "500")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"key":`))
	}
	t.Run("a read is retried", func(t *testing.T) {
		f := newFake(t)
		var n atomic.Int32
		f.handle(routeCreds, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				cutOff(w, r)
				return
			}
			serveGolden(t, 200, "credentials_key.json")(w, r)
		})
		c, _, _ := testClient(t, f)
		if _, err := c.PrimaryKey(t.Context(), testApp, testConsumer); err != nil {
			t.Fatalf("err = %v", err)
		}
		if got := n.Load(); got != 2 {
			t.Errorf("calls %d, want 2", got)
		}
	})
	t.Run("a POST staged is ambiguous", func(t *testing.T) {
		f := newFake(t)
		f.handle("POST "+routeStaged, cutOff)
		c, _, _ := testClient(t, f)
		if _, err := c.Stage(t.Context(), testApp, testConsumer); !errors.Is(err, rotator.ErrAmbiguous) {
			t.Fatalf("err = %v, want ErrAmbiguous", err)
		}
		if got := len(f.requests()); got != 1 {
			t.Errorf("calls %d, want 1", got)
		}
	})
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	f := newFake(t)
	f.handle("POST "+routeStaged, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	f.handle("GET "+routeStaged, serveGolden(t, 200, "staged_empty.json"))
	c, _, _ := testClient(t, f)
	_, err := c.Stage(t.Context(), testApp, testConsumer)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusFound || apiErr.Class != ClassFinal {
		t.Fatalf("err = %v, want a final 302", err)
	}
	for _, r := range f.requests() {
		if r.Path == "/elsewhere" {
			t.Errorf("redirect followed")
		}
	}
}

func TestEchoedSecretsAreScrubbedFromErrors(t *testing.T) {
	f := newFake(t)
	f.handle(routeCreds, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, `[{"errorCode":"MALFORMED","message":"bad header `+r.Header.Get("Authorization")+`"}]`)
	})
	c, _, logs := testClient(t, f)
	_, err := c.PrimaryKey(t.Context(), testApp, testConsumer)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "MALFORMED" {
		t.Fatalf("err = %v", err)
	}
	assertNoLeak(t, "error", err.Error())
	assertLogsClean(t, logs)

	f.tokenHandler = func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		writeJSON(w, 400, `{"error":"invalid_client","error_description":"bad secret `+r.PostForm.Get("client_secret")+`"}`)
	}
	v := NewVerifier(VerifierOptions{})
	err = v.Verify(t.Context(), f.srv.URL+tokenPath, rotator.Credentials{Key: "k", Secret: rotator.NewSecret(testSecret)})
	if !errors.Is(err, rotator.ErrRejected) {
		t.Fatalf("err = %v", err)
	}
	assertNoLeak(t, "verify error", err.Error())
}

// PATCH rotate's answer is parsed defensively (its shape is unconfirmed):
// the Rotated entry is returned, without a secret, from a bare object or
// the collection wrapper; any other answer gives a zero entry and no
// error, since the rotate itself succeeded.
func TestPromoteReturnsTheRotatedEntryOnly(t *testing.T) {
	tests := []struct {
		name, body string
		wantID     string
	}{
		{"the collection wrapper with the Rotated entry", `{"stagedCredentials":[{"id":"0ZzROTATED00001","key":"3MVGPRIMARYKEY1","secret":"old-secret","state":"Rotated","expirationDate":"2026-12-26T01:00:00.000Z"}]}`, "0ZzROTATED00001"},
		{"a bare Rotated object", `{"id":"0ZzROTATED00002","key":"3MVGPRIMARYKEY1","state":"Rotated","expirationDate":"2026-12-26T01:00:00.000Z"}`, "0ZzROTATED00002"},
		{"the promoted (Active) entry", `{"id":"0ZzSTAGED000001","key":"3MVGSTAGEDKEY02","state":"Active"}`, ""},
		{"an entry without state", `{"id":"0ZzSTAGED000001","key":"3MVGSTAGEDKEY02"}`, ""},
		{"a Rotated entry without id", `{"key":"3MVGPRIMARYKEY1","state":"Rotated"}`, ""},
		{"an empty body", ``, ""},
		{"not JSON", `<html>ok</html>`, ""},
		{"a wrong type", `{"stagedCredentials":"Rotated"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("PATCH "+routeStagedID, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tt.body))
			})
			c, _, _ := testClient(t, f)
			got, err := c.Promote(t.Context(), testApp, testConsumer, testStagedID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.wantID {
				t.Fatalf("Promote = %+v, want id %q", got, tt.wantID)
			}
			if !got.Secret.IsZero() {
				t.Error("the Rotated entry's secret was kept")
			}
			if tt.wantID != "" && (got.Status != rotator.StagedRotated || got.Key != "3MVGPRIMARYKEY1" || got.Expires.IsZero()) {
				t.Errorf("Promote = %+v, want the Rotated entry with key and expiry", got)
			}
		})
	}
}
