package vault

import (
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
)

// lookupSelfServer answers token lookup-self like Vault does for a valid
// token, and records the namespace header it saw.
func lookupSelfServer(seen *string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			*seen = r.Header.Get("X-Vault-Namespace")
		}
		if r.URL.Path != "/v1/auth/token/lookup-self" || r.Header.Get("X-Vault-Token") != "tok" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"errors":["permission denied"]}`)
			return
		}
		_, _ = io.WriteString(w, `{"data":{"display_name":"token","ttl":0,"renewable":false}}`)
	})
}

func TestTLSOptionsAreHonoured(t *testing.T) {
	srv := httptest.NewTLSServer(lookupSelfServer(nil))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tls     TLSOptions
		wantErr bool
	}{
		{"the server's CA makes the certificate trusted", TLSOptions{CACert: ca}, false},
		{"a server name the certificate names is accepted", TLSOptions{CACert: ca, ServerName: "example.com"}, false},
		{"a server name the certificate does not name is refused", TLSOptions{CACert: ca, ServerName: "vault.other.test"}, true},
		{"without the CA the certificate is refused", TLSOptions{}, true},
		{"skip-verify accepts anything", TLSOptions{SkipVerify: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("VAULT_CACERT", "")
			_, err := New(t.Context(), Options{Address: srv.URL, TLS: tt.tls, Auth: AuthOptions{Token: rotator.NewSecret("tok")}})
			if tt.wantErr {
				if err == nil {
					t.Fatal("got a connection, want a certificate error")
				}
				if errors.Is(err, rotator.ErrUnreachable) {
					t.Fatalf("got %v: an untrusted certificate must not look like a transient outage", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want a connection", err)
			}
		})
	}
}

func TestNamespaceIsSentWithEveryRequest(t *testing.T) {
	var seen string
	srv := httptest.NewServer(lookupSelfServer(&seen))
	defer srv.Close()
	if _, err := New(t.Context(), Options{Address: srv.URL, Namespace: "team-a/", Auth: AuthOptions{Token: rotator.NewSecret("tok")}}); err != nil {
		t.Fatal(err)
	}
	if seen != "team-a/" {
		t.Fatalf("got namespace header %q, want team-a/", seen)
	}
}
