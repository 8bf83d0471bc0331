package sfsim

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestJWTWithACertificateAcrossARotation(t *testing.T) {
	k, _ := keys(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rotator"},
		NotBefore: epoch.Add(-time.Hour), NotAfter: epoch.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Orgs[0].SecretAccess = true
	cfg.Orgs[0].ECAs[0].JWTCertificatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	s := start(t, cfg)
	tok := adminToken(t, s)
	st := stage(t, s, tok, rotatorID, "888000000000000ROT")
	rotate(t, s, tok, rotatorID, "888000000000000ROT", st.ID)
	for _, tc := range []struct {
		name string
		iss  string
	}{
		{"the new consumer key signs in", st.Key},
		{"the Rotated consumer key still signs in", rotatorKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := signJWT(t, k, "RS256", map[string]any{"iss": tc.iss, "sub": adminUser, "aud": s.LoginURL(), "exp": s.Now().Add(time.Minute).Unix()})
			res := postForm(t, s.TokenURL(LoginHost), url.Values{"grant_type": {JWTBearerGrant}, "assertion": {a}})
			if res.status != http.StatusOK {
				t.Fatalf("got %d %s", res.status, res.body)
			}
		})
	}
}

func TestVersionsList(t *testing.T) {
	s := start(t, testConfig(t))
	res := call(t, http.MethodGet, s.OrgURL(hub)+"/services/data/", "", "")
	if res.status != 200 || !strings.Contains(string(res.body), `"version":"65.0"`) || !strings.Contains(string(res.body), `"url":"/services/data/v67.0"`) {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	if res := call(t, http.MethodGet, s.LoginURL()+"/services/data/v65.0/apps/oauth/usage", "", ""); res.status != 404 {
		t.Fatalf("REST on the login host: got %d, want 404", res.status)
	}
}

func TestWithRandMakesIDsReproducible(t *testing.T) {
	build := func() ConsumerState {
		s, err := New(testConfig(t), WithRand(bytes.NewReader(bytes.Repeat([]byte{7, 42, 99}, 4096))))
		if err != nil {
			t.Fatal(err)
		}
		cs, err := s.ConsumerState(hub, supportID, supportCID1)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	a, b := build(), build()
	if a.Key != b.Key || a.Secret != b.Secret || !strings.HasPrefix(a.Key, "3MVG9") || len(a.Secret) != 64 {
		t.Fatalf("got %+v and %+v, want equal generated credentials", a, b)
	}
}

func TestDurationDecoding(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		err  bool
	}{
		{"a Go duration string", `"90s"`, 90 * time.Second, false},
		{"a number of days", `"30d"`, 30 * 24 * time.Hour, false},
		{"a JSON number is nanoseconds", `1000`, time.Microsecond, false},
		{"garbage is an error", `"soon"`, 0, true},
		{"a bad day count is an error", `"xd"`, 0, true},
		{"an object is an error", `{}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tt.in), &d)
			if (err != nil) != tt.err || (!tt.err && time.Duration(d) != tt.want) {
				t.Fatalf("got %v, %v; want %v, error %v", time.Duration(d), err, tt.want, tt.err)
			}
		})
	}
}

func TestSeedClosesRemovedOrgs(t *testing.T) {
	s := start(t, testConfig(t))
	old := s.OrgURL(globex)
	cfg := testConfig(t)
	cfg.Orgs = cfg.Orgs[:2]
	if err := s.Seed(cfg); err != nil {
		t.Fatal(err)
	}
	if s.OrgURL(globex) != "" {
		t.Fatalf("OrgURL(globex) = %q after removal", s.OrgURL(globex))
	}
	if _, err := send(http.MethodGet, old+"/__sfsim/clock", "", "", nil); err == nil {
		t.Fatal("the removed org's listener still answers")
	}
	if err := s.Save(); err != nil {
		t.Fatalf("Save without a state file: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	s := start(t, testConfig(t))
	tok := adminToken(t, s)
	steps := []struct {
		name string
		want int
	}{
		{"revoking a live token succeeds", http.StatusOK},
		{"revoking it again is an invalid token", http.StatusBadRequest},
	}
	for _, st := range steps {
		if res := postForm(t, s.OrgURL(hub)+revokePath, url.Values{"token": {tok}}); res.status != st.want {
			t.Fatalf("%s: got %d %s", st.name, res.status, res.body)
		}
	}
	if res := call(t, http.MethodGet, api(s, hub, "65.0")+"/usage", tok, ""); res.status != http.StatusUnauthorized {
		t.Fatalf("revoked token on REST: got %d, want 401", res.status)
	}
}
