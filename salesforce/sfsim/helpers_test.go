package sfsim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixed names of the test landscape.
const (
	hub        = "devhub"
	acme       = "acme"
	globex     = "globex"
	adminUser  = "admin@devhub.test"
	intUser    = "int@devhub.test"
	acmeUser   = "int@acme.test"
	globexUser = "int@globex.test"

	rotatorID  = "0xI000000000000ROT"
	billingID  = "0xI000000000000BIL"
	supportID  = "0xI000000000000SUP"
	analyticID = "0xI000000000000ANA"

	rotatorKey    = "3MVG9rotatorKey"
	rotatorSecret = "ROTATORSECRET"
	billingCID    = "888000000000000BIL"
	billingKey    = "3MVG9billingKey"
	billingSecret = "BILLINGSECRET"
	supportCID1   = "888000000000000SU1"
	supportCID2   = "888000000000000SU2"
	analyticKey   = "3MVG9analyticsKey"
	analyticSec   = "ANALYTICSSECRET"
)

// epoch is the base of the tests' frozen clock; only Advance moves it.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
	otherKy *rsa.PrivateKey
)

// keys returns the rotator ECA's key pair and an unrelated one.
func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherKy, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return testKey, otherKy
}

// publicPEM encodes k's public key as a PUBLIC KEY PEM.
func publicPEM(t testing.TB, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// testConfig is a Dev Hub with four ECAs and two subscriber orgs.
func testConfig(t testing.TB) Config {
	t.Helper()
	k, _ := keys(t)
	all := []string{PermAPIEnabled, PermExternalClientAppDeveloper, PermViewClientSecret, PermModifyMetadata}
	// The mechanics tests (paging, gates, limits, faults) predate the
	// strict profile and run lenient; strict_test.go runs every switch at
	// both values, and the client contract tests run both profiles.
	return Config{
		Profile: ProfileLenient,
		Orgs: []OrgConfig{
			{
				Name: hub, OrgID: "00D00000000000DHUB", DevHub: true,
				Users: []UserConfig{
					{Username: adminUser, UserID: "005000000000000ADM", Permissions: all},
					{Username: intUser, UserID: "005000000000000INT", Permissions: []string{PermAPIEnabled}},
				},
				ECAs: []ECAConfig{
					{DeveloperName: "rotator", ID: rotatorID, ClientCredentialsUser: adminUser,
						JWTCertificatePEM: publicPEM(t, k), PreAuthorizedUsers: []string{adminUser},
						Consumers: []ConsumerConfig{{ID: "888000000000000ROT", Key: rotatorKey, Secret: rotatorSecret}}},
					{DeveloperName: "Billing", ID: billingID, ClientCredentialsUser: intUser,
						Consumers: []ConsumerConfig{{ID: billingCID, Key: billingKey, Secret: billingSecret}}},
					{DeveloperName: "Support", ID: supportID,
						Consumers: []ConsumerConfig{{ID: supportCID1}, {ID: supportCID2}}},
					{DeveloperName: "Analytics", ID: analyticID, ClientCredentialsUser: intUser,
						Consumers: []ConsumerConfig{{ID: "888000000000000ANA", Key: analyticKey, Secret: analyticSec}}},
				},
			},
			{
				Name: acme, Installs: []string{"devhub/Billing", "devhub/Support"},
				Users: []UserConfig{{Username: acmeUser, Permissions: []string{PermAPIEnabled}}},
				RunAs: map[string]string{"Billing": acmeUser},
			},
			{
				Name: globex, Installs: []string{"devhub/Billing", "devhub/Analytics"},
				Users: []UserConfig{{Username: globexUser, Permissions: []string{PermAPIEnabled}}},
				RunAs: map[string]string{"Billing": globexUser, "Analytics": globexUser},
			},
		},
	}
}

// start builds and starts a sim on a frozen clock; it closes with the test.
func start(t testing.TB, cfg Config, opts ...Option) *Sim {
	t.Helper()
	opts = append([]Option{WithClock(func() time.Time { return epoch })}, opts...)
	s, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// freshClient uses a new connection per request, so a reset connection is
// never retried transparently by the transport.
var freshClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

// response is a completed HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// restErr returns the errorCode of a REST error array body.
func (r response) restErr(t testing.TB) string {
	t.Helper()
	var errs []restError
	r.decode(t, &errs)
	if len(errs) != 1 {
		t.Fatalf("want one error, got %s", r.body)
	}
	return errs[0].ErrorCode
}

// oauthErr returns the error code of an OAuth error body.
func (r response) oauthErr(t testing.TB) oauthError {
	t.Helper()
	var e oauthError
	r.decode(t, &e)
	return e
}

// send does one request; err is a transport error (e.g. a reset).
func send(method, u, token, contentType string, body io.Reader) (response, error) {
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := freshClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}, err
}

// call does one REST request (JSON body when body != "") and fails the test
// on a transport error.
func call(t testing.TB, method, u, token, body string) response {
	t.Helper()
	var r io.Reader
	ct := ""
	if body != "" {
		r, ct = strings.NewReader(body), "application/json"
	}
	res, err := send(method, u, token, ct, r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return res
}

// postForm posts a token request.
func postForm(t testing.TB, u string, form url.Values) response {
	t.Helper()
	res, err := send(http.MethodPost, u, "", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	return res
}

// ccForm is a client credentials request body.
func ccForm(key, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {key}, "client_secret": {secret}}
}

// token gets an access token with the client credentials flow or fails.
func token(t testing.TB, s *Sim, org, key, secret string) string {
	t.Helper()
	res := postForm(t, s.TokenURL(org), ccForm(key, secret))
	if res.status != http.StatusOK {
		t.Fatalf("token for %s at %s: %d %s", key, org, res.status, res.body)
	}
	var tr tokenResponse
	res.decode(t, &tr)
	return tr.AccessToken
}

// adminToken is a Dev Hub token of the user with every permission.
func adminToken(t testing.TB, s *Sim) string {
	t.Helper()
	return token(t, s, hub, rotatorKey, rotatorSecret)
}

// signJWT builds an RS256 (or other alg) assertion signed with k.
func signJWT(t testing.TB, k *rsa.PrivateKey, alg string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg})
	c, _ := json.Marshal(claims)
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// api is the REST base URL of an org at a version.
func api(s *Sim, org, version string) string {
	return s.OrgURL(org) + "/services/data/v" + version + "/apps/oauth"
}

// consumerPath is a consumer's credentials URL at v65.0.
func consumerPath(s *Sim, app, cid string) string {
	return api(s, hub, "65.0") + "/credentials/" + app + "/" + cid
}

// stagedColl decodes a staged credentials collection.
type stagedColl struct {
	StagedCredentials []stagedJSON `json:"stagedCredentials"`
	URL               string       `json:"url"`
}

// stage POSTs {} to the consumer's staged collection and returns the entry.
func stage(t testing.TB, s *Sim, tok, app, cid string) stagedJSON {
	t.Helper()
	res := call(t, http.MethodPost, consumerPath(s, app, cid)+"/staged", tok, "{}")
	if res.status != http.StatusCreated {
		t.Fatalf("POST staged: %d %s", res.status, res.body)
	}
	var c stagedColl
	res.decode(t, &c)
	if len(c.StagedCredentials) != 1 {
		t.Fatalf("POST staged: want one entry, got %s", res.body)
	}
	return c.StagedCredentials[0]
}

// rotate PATCHes the staged entry and returns the Rotated entry.
func rotate(t testing.TB, s *Sim, tok, app, cid, id string) stagedJSON {
	t.Helper()
	res := call(t, http.MethodPatch, consumerPath(s, app, cid)+"/staged/"+id, tok, `{"command":"rotate"}`)
	if res.status != http.StatusOK {
		t.Fatalf("PATCH rotate: %d %s", res.status, res.body)
	}
	var st stagedJSON
	res.decode(t, &st)
	return st
}

// tokenStatus is the outcome of a client credentials request: "ok" or the
// OAuth error code.
func tokenStatus(t testing.TB, s *Sim, org, key, secret string) string {
	t.Helper()
	res := postForm(t, s.TokenURL(org), ccForm(key, secret))
	if res.status == http.StatusOK {
		return "ok"
	}
	return res.oauthErr(t).Error
}

// serveInProcess runs one request through a handler without a network.
func serveInProcess(h http.Handler, method, path, token, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
