package main

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

const demo = "../../salesforce/sfsim/testdata/demo.yaml"

func TestRunServesTheDemoAndStopsOnSIGINT(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	var stdout, stderr bytes.Buffer
	ready := make(chan *sfsim.Sim, 1)
	code := make(chan int, 1)
	go func() { code <- run([]string{"-c", demo, "-state", state}, &stdout, &stderr, ready) }()

	var sim *sfsim.Sim
	select {
	case sim = <-ready:
	case c := <-code:
		t.Fatalf("run exited with %d: %s", c, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("sfsim did not start")
	}
	form := url.Values{"grant_type": {"client_credentials"},
		"client_id":     {"3MVG9DEMO.billing.consumer.key.0000000000000000000000000000000000000000000002"},
		"client_secret": {"B111111111111111111111111111111111111111111111111111111111111111"}}
	for _, org := range []string{"devhub", "acme", "globex"} {
		res, err := http.PostForm(sim.TokenURL(org), form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("Billing token at %s: %d, want 200", org, res.StatusCode)
		}
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d, want 0: %s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sfsim did not stop on SIGINT")
	}
	out := stdout.String()
	for _, want := range []string{"login ", "org devhub", "org acme", "org globex", "/services/oauth2/token", "/__sfsim/state"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state file: %v", err)
	}
}

func TestRunRejectsBadInvocations(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no config is a usage error", nil, 2},
		{"an unknown flag is a usage error", []string{"-c", demo, "-bogus"}, 2},
		{"a port for an unknown org is a usage error", []string{"-c", demo, "-port", "nope=1"}, 2},
		{"a malformed port flag is a usage error", []string{"-c", demo, "-port", "devhub"}, 2},
		{"a missing config file fails", []string{"-c", "does-not-exist.yaml"}, 1},
		{"an unknown profile is a usage error", []string{"-c", demo, "-profile", "relaxed"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(tt.args, &out, &errOut, nil); got != tt.want {
				t.Fatalf("exit %d, want %d (%s)", got, tt.want, errOut.String())
			}
		})
	}
}
