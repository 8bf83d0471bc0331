package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/server"
	yaml "go.yaml.in/yaml/v3"
)

// statusServer answers /api/v1/apps with apps and counts the requests;
// onRequest (optional) sees each request's number.
func statusServer(t *testing.T, apps []server.AppStatus, onRequest ...func(n int32)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		for _, f := range onRequest {
			f(i)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"apps": apps})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestStatusOutputFormats(t *testing.T) {
	last := time.Date(2026, 11, 2, 3, 4, 5, 0, time.UTC)
	srv, _ := statusServer(t, []server.AppStatus{{Name: "billing", DevHub: "devhub", LastRotation: last, ConsumerKey: "3MVG9.billing"}})
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"--output json is the API's JSON", []string{"--output", "json"}, func(t *testing.T, out string) {
			var got []server.AppStatus
			if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].Name != "billing" || got[0].ConsumerKey != "3MVG9.billing" {
				t.Errorf("got %+v (%v) from %q", got, err, out)
			}
		}},
		{"--json stays an alias of --output json", []string{"--json"}, func(t *testing.T, out string) {
			if !json.Valid([]byte(out)) {
				t.Errorf("not JSON: %q", out)
			}
		}},
		{"-o yaml uses the JSON field names", []string{"-o", "yaml"}, func(t *testing.T, out string) {
			var got []map[string]any
			if err := yaml.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
				t.Fatalf("got %v (%v) from %q", got, err, out)
			}
			if got[0]["name"] != "billing" || got[0]["consumer_key"] != "3MVG9.billing" || got[0]["last_rotation"] != "2026-11-02T03:04:05Z" {
				t.Errorf("yaml fields %v", got[0])
			}
		}},
		{"--output table is the default table", []string{"--output", "table"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "APP") || !strings.Contains(out, "billing") {
				t.Errorf("no table: %q", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, nil, append([]string{"status", "--server", srv.URL}, tt.args...)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			tt.check(t, out)
		})
	}
}

func TestOutputFlagRefusesBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"status", "--output", "xml"},
		{"status", "--json", "--output", "yaml"},
		{"plan", "-o", "csv"},
		{"audit", "list", "--output", "toml"},
	} {
		code, _, stderr := runCLI(t, nil, args...)
		if code != ExitUsage || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d, stderr %q; want %d", args, code, stderr, ExitUsage)
		}
	}
}

// TestStatusWatchRefreshesAtEveryTick drives --watch with a fake ticker: one
// view at start and one per tick, then a clean stop (exit 0) when the
// context ends, here during the fourth view (as Ctrl-C would).
func TestStatusWatchRefreshesAtEveryTick(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, requests := statusServer(t, []server.AppStatus{{Name: "billing", DevHub: "devhub"}}, func(n int32) {
		if n == 4 {
			cancel()
		}
	})
	tick := make(chan time.Time)
	var gotInterval time.Duration
	stopped := make(chan struct{})
	var out, errb syncWriter
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" },
		now: func() time.Time { return now },
		newTicker: func(d time.Duration) (<-chan time.Time, func()) {
			gotInterval = d
			return tick, func() { close(stopped) }
		}}
	done := make(chan int, 1)
	go func() { done <- c.runArgs(ctx, []string{"status", "--server", srv.URL, "--watch", "--interval", "2s"}) }()
	for range 3 {
		tick <- now
	}
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	<-stopped
	if gotInterval != 2*time.Second {
		t.Errorf("ticker interval %s, want 2s", gotInterval)
	}
	if n := requests.Load(); n != 4 {
		t.Errorf("%d status requests, want 4 (one at start, one per tick)", n)
	}
	if n := strings.Count(out.String(), "Every 2s: ecarotator status  2026-11-30T12:00:00Z"); n != 4 {
		t.Errorf("%d view headers, want 4:\n%s", n, out.String())
	}
	if code, _, stderr := runCLI(t, nil, "status", "--watch", "--interval", "0s"); code != ExitUsage {
		t.Errorf("--interval 0s: exit %d (%s), want %d", code, stderr, ExitUsage)
	}
}

// syncWriter is a bytes.Buffer safe for the watch goroutine and the test.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
