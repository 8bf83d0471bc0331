package config

import (
	"os"
	"strings"
	"testing"
)

// TestM5PlaintextListenerOutsideLoopbackIsAConfigError: the review's
// `server: {listen: "0.0.0.0:9464"}` without TLS loaded with no error;
// operator tokens would then cross the network in clear.
func TestM5PlaintextListenerOutsideLoopbackIsAConfigError(t *testing.T) {
	base, err := os.ReadFile("../../configs/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		server  string
		env     map[string]string
		wantErr bool
	}{
		{"all interfaces in clear: refused", `{listen: "0.0.0.0:9464"}`, nil, true},
		{"empty host in clear: refused", `{listen: ":9464"}`, nil, true},
		{"a LAN address in clear: refused", `{listen: "10.0.0.5:9464"}`, nil, true},
		{"the env override in clear: refused", `{}`, map[string]string{"ECAROTATOR_LISTEN": "0.0.0.0:9464"}, true},
		{"loopback in clear: fine", `{listen: "127.0.0.1:9464"}`, nil, false},
		{"localhost in clear: fine", `{listen: "localhost:9464"}`, nil, false},
		{"IPv6 loopback in clear: fine", `{listen: "[::1]:9464"}`, nil, false},
		{"all interfaces with TLS: fine", `{listen: "0.0.0.0:9464", tls_cert: c.pem, tls_key: k.pem}`, nil, false},
		{"all interfaces, plaintext explicitly allowed: fine", `{listen: "0.0.0.0:9464", allow_plaintext: true}`, nil, false},
		{"plaintext allowed by env: fine", `{listen: "0.0.0.0:9464"}`, map[string]string{"ECAROTATOR_ALLOW_PLAINTEXT": "true"}, false},
		{"a server url in clear outside loopback: refused", `{url: "http://ecarotator.example:9464"}`, nil, true},
		{"a server url with https: fine", `{url: "https://ecarotator.example:9464"}`, nil, false},
		{"an allowed host with a port: refused", `{allowed_hosts: ["a.example:80"]}`, nil, true},
	}
	for _, tt := range tests {
		data := string(base) + "server: " + tt.server + "\n"
		_, err := LoadBytes([]byte(data), "/etc/ecarotator/config.yaml", env(tt.env))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "server.") {
			t.Errorf("%s: problem without its field path: %v", tt.name, err)
		}
	}
}
