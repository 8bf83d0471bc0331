package salesforce_test

// Contract tests: the client against the simulator (salesforce/sfsim) over
// real loopback HTTP, for every endpoint and every error class.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

const (
	devhub        = "devhub"
	subscriber    = "subscriber"
	rotatorUser   = "rotator@devhub.example"
	weakUser      = "weak@devhub.example"
	runAsUser     = "runas@devhub.example"
	rotatorKey    = "3MVGROTATORKEY0001"
	rotatorSecret = "ROTATOR-SECRET-DO-NOT-LEAK"
	targetECA     = "Billing_Sync"
	targetKey     = "3MVGBILLINGKEY0001"
	targetSecret  = "BILLING-SECRET-DO-NOT-LEAK"
)

var simKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func publicPEM(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&simKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// simConfig is a Dev Hub owning the rotator's own app (JWT + client
// credentials) and the target app, plus a subscriber org where the target is
// installed.
func simConfig(t testing.TB) sfsim.Config {
	all := []string{sfsim.PermAPIEnabled, sfsim.PermExternalClientAppDeveloper, sfsim.PermViewClientSecret, sfsim.PermModifyMetadata}
	return sfsim.Config{
		Profile: contractProfile,
		Orgs: []sfsim.OrgConfig{
			{
				Name: devhub, DevHub: true, SecretAccess: true,
				Users: []sfsim.UserConfig{
					{Username: rotatorUser, Permissions: all},
					{Username: weakUser, Permissions: []string{sfsim.PermAPIEnabled}},
					{Username: runAsUser, Permissions: []string{sfsim.PermAPIEnabled}},
				},
				ECAs: []sfsim.ECAConfig{
					{
						DeveloperName: "Rotator_App", Label: "Rotator",
						Consumers:             []sfsim.ConsumerConfig{{Key: rotatorKey, Secret: rotatorSecret}},
						ClientCredentialsUser: rotatorUser,
						JWTCertificatePEM:     publicPEM(t),
						PreAuthorizedUsers:    []string{rotatorUser, weakUser},
					},
					{
						DeveloperName: targetECA, Label: "Billing Sync",
						Consumers:             []sfsim.ConsumerConfig{{Key: targetKey, Secret: targetSecret}},
						ClientCredentialsUser: runAsUser,
					},
				},
			},
			{
				Name:     subscriber,
				Users:    []sfsim.UserConfig{{Username: "runas@sub.example", Permissions: []string{sfsim.PermAPIEnabled}}},
				Installs: []string{devhub + "/" + targetECA},
				RunAs:    map[string]string{targetECA: "runas@sub.example"},
			},
		},
	}
}

// contractProfile is the sfsim profile the contract tests run against:
// strict (the default) when run on their own, and lenient again under
// TestContractLenientProfile. Contract tests are not parallel.
var contractProfile = sfsim.ProfileStrict

// TestContractLenientProfile runs every contract test against the lenient
// profile too: the client must work whichever way Salesforce decides the
// uncertain behaviours.
func TestContractLenientProfile(t *testing.T) {
	contractProfile = sfsim.ProfileLenient
	t.Cleanup(func() { contractProfile = sfsim.ProfileStrict })
	for name, fn := range map[string]func(*testing.T){
		"full rotation":                      TestContractFullRotation,
		"authentication":                     TestContractAuthentication,
		"expired token is renewed once":      TestContractExpiredTokenIsRenewedOnce,
		"secret access gate":                 TestContractSecretAccessGate,
		"missing permissions":                TestContractMissingPermissions,
		"occupied slot, not found and final": TestContractOccupiedSlotNotFoundAndFinal,
		"rate limit":                         TestContractRateLimit,
		"verify waits for propagation":       TestContractVerifyWaitsForPropagation,
		"strict login and discovery":         TestContractStrictLoginAndDiscovery,
	} {
		t.Run(name, fn)
	}
}

// TestContractStrictLoginAndDiscovery: the client's JWT (aud a string) logs
// in whatever the profile; audience auto falls back from a refused My
// Domain audience to the login URL and remembers it; an ECA with no active
// token is found through SOQL; discovery reads work.
func TestContractStrictLoginAndDiscovery(t *testing.T) {
	sim := startSim(t, func(c *sfsim.Config) { c.Behavior.JWTAudiences = []string{"LOGIN"} })
	// JWTAudiences needs the real login URL: set after start.
	b := sim.Behavior()
	b.JWTAudiences = []string{sim.LoginURL()}
	sim.SetBehavior(b)
	c, logs := simClient(t, sim, func(o *salesforce.Options) {
		o.Audience = salesforce.AudienceAuto
		o.MyDomainURL = sim.OrgURL(devhub)
	})
	ctx := t.Context()
	app, err := c.FindApp(ctx, targetECA)
	if err != nil {
		t.Fatalf("FindApp: %v", err)
	}
	if aud, mode := c.Audience(); aud != sim.LoginURL() || mode != salesforce.AudienceAuto {
		t.Errorf("audience %q (%s), want the login URL after My Domain was refused", aud, mode)
	}
	if n := logs.FilterMessage("jwt audience chosen").Len(); n != 1 {
		t.Errorf("audience choice logged %d times, want 1", n)
	}
	sim.ExpireTokens()
	before := countRequests(sim, sfsim.LoginHost, http.MethodPost, sfsim.RouteToken)
	if _, err := c.Consumers(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if got := countRequests(sim, sfsim.LoginHost, http.MethodPost, sfsim.RouteToken) - before; got != 1 {
		t.Errorf("re-login token requests = %d, want 1 (the remembered audience only)", got)
	}
	rec, err := c.FindECA(ctx, targetECA)
	if err != nil || rec.ID != app.ID || rec.DistributionState != sfsim.DistributionLocal {
		t.Errorf("FindECA = %+v, %v", rec, err)
	}
	vs, err := c.Versions(ctx)
	if err != nil || len(vs) == 0 || vs[len(vs)-1].Version != "67.0" {
		t.Errorf("Versions = %v, %v", vs, err)
	}
	id, err := c.Identity(ctx)
	if err != nil || id.Username != rotatorUser {
		t.Errorf("Identity = %+v, %v", id, err)
	}
	perms, err := c.UserPermissions(ctx, id.UserID, []string{"PermissionsApiEnabled", "PermissionsViewClientSecret"})
	if err != nil || !perms["PermissionsApiEnabled"] || !perms["PermissionsViewClientSecret"] {
		t.Errorf("UserPermissions = %v, %v", perms, err)
	}
	rest, meta, known, err := c.SecretAccessSettings(ctx)
	if err != nil || !rest || meta || !known {
		t.Errorf("SecretAccessSettings = rest %v metadata %v (known %v), %v; want true, false, known", rest, meta, known, err)
	}
	lims, err := c.Limits(ctx)
	if err != nil || lims["DailyApiRequests"].Max == 0 {
		t.Errorf("Limits = %v, %v", lims, err)
	}
}

func startSim(t testing.TB, mod func(*sfsim.Config)) *sfsim.Sim {
	t.Helper()
	cfg := simConfig(t)
	if mod != nil {
		mod(&cfg)
	}
	sim, err := sfsim.New(cfg)
	if err != nil {
		t.Fatalf("sfsim.New: %v", err)
	}
	if err := sim.Start(); err != nil {
		t.Fatalf("sfsim.Start: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// simClient is a JWT client of the Dev Hub with zero-wait retries.
func simClient(t testing.TB, sim *sfsim.Sim, mod ...func(*salesforce.Options)) (*salesforce.Client, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	opts := salesforce.Options{
		LoginURL: sim.LoginURL(),
		Audience: sim.LoginURL(),
		Auth:     salesforce.Auth{Method: salesforce.AuthJWT, ClientID: rotatorKey, Username: rotatorUser, Key: simKey()},
		Logger:   zap.New(core),
		Now:      sim.Now,
		Backoff:  rotator.Backoff{Base: 0, Max: 0, Attempts: 3}.NextAttempt,
		Sleep:    func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Org:      devhub,
	}
	for _, m := range mod {
		m(&opts)
	}
	c, err := salesforce.New(opts)
	if err != nil {
		t.Fatalf("salesforce.New: %v", err)
	}
	return c, logs
}

// target resolves the target app and its consumer.
func target(t *testing.T, c *salesforce.Client) (rotator.AppRef, rotator.Consumer) {
	t.Helper()
	app, err := c.FindApp(t.Context(), targetECA)
	if err != nil {
		t.Fatalf("FindApp: %v", err)
	}
	cons, err := c.Consumers(t.Context(), app.ID)
	if err != nil || len(cons) != 1 {
		t.Fatalf("Consumers: %v %v", cons, err)
	}
	return app, cons[0]
}

func countRequests(sim *sfsim.Sim, org, method, route string) int {
	n := 0
	for _, r := range sim.Requests() {
		if r.Org == org && r.Method == method && r.Route == route {
			n++
		}
	}
	return n
}

func noLeak(t *testing.T, where, s string, secrets ...string) {
	t.Helper()
	for _, sec := range append(secrets, rotatorSecret, targetSecret) {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s leaks a secret: %s", where, s)
		}
	}
}

func TestContractFullRotation(t *testing.T) {
	sim := startSim(t, nil)
	c, logs := simClient(t, sim)
	ctx := t.Context()
	v := salesforce.NewVerifier(salesforce.VerifierOptions{})
	tokenURL, err := c.OrgTokenURL(ctx)
	if err != nil || tokenURL != sim.TokenURL(devhub) {
		t.Fatalf("OrgTokenURL = %q, %v; want %q", tokenURL, err, sim.TokenURL(devhub))
	}

	app, cons := target(t, c)
	if app.DeveloperName != targetECA || cons.Key != targetKey {
		t.Fatalf("resolved %+v %+v", app, cons)
	}
	primary, err := c.Credentials(ctx, app.ID, cons.ID)
	if err != nil || primary.Key != targetKey || primary.Secret.Reveal() != targetSecret {
		t.Fatalf("Credentials: %v (key %q)", err, primary.Key)
	}
	if err := v.Verify(ctx, tokenURL, primary); err != nil {
		t.Fatalf("Verify(primary): %v", err)
	}
	staged, err := c.Staged(ctx, app.ID, cons.ID)
	if err != nil || len(staged) != 0 {
		t.Fatalf("Staged before: %v %v", staged, err)
	}

	next, err := c.Stage(ctx, app.ID, cons.ID)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if next.ID == "" || next.Key == "" || next.Key == targetKey || next.Secret.IsZero() || next.Status != rotator.StagedActive {
		t.Fatalf("staged %+v", next)
	}
	st, _ := sim.ConsumerState(devhub, targetECA, cons.ID)
	if st.Staged == nil || st.Staged.ID != next.ID || st.Staged.Secret != next.Secret.Reveal() {
		t.Fatalf("sim slot %+v does not hold what Stage returned", st.Staged)
	}
	if next.Expires.Sub(next.Created) != 30*24*time.Hour {
		t.Errorf("validity %v", next.Expires.Sub(next.Created))
	}

	if _, err := c.Promote(ctx, app.ID, cons.ID, next.ID); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	now, err := c.Credentials(ctx, app.ID, cons.ID)
	if err != nil || now.Key != next.Key || !now.Secret.Equal(next.Secret) {
		t.Fatalf("Credentials after rotate: %v (key %q want %q)", err, now.Key, next.Key)
	}
	if k, err := c.PrimaryKey(ctx, app.ID, cons.ID); err != nil || k != next.Key {
		t.Fatalf("PrimaryKey: %q %v", k, err)
	}
	staged, err = c.Staged(ctx, app.ID, cons.ID)
	if err != nil || len(staged) != 1 || staged[0].Status != rotator.StagedRotated || staged[0].Key != targetKey {
		t.Fatalf("Staged after rotate: %+v %v", staged, err)
	}
	if err := v.Verify(ctx, tokenURL, rotator.Credentials{Key: next.Key, Secret: next.Secret}); err != nil {
		t.Errorf("Verify(new): %v", err)
	}
	basic := salesforce.NewVerifier(salesforce.VerifierOptions{Basic: true})
	if err := basic.Verify(ctx, tokenURL, rotator.Credentials{Key: next.Key, Secret: next.Secret}); err != nil {
		t.Errorf("Verify(new) with a Basic header: %v", err)
	}
	if err := basic.Verify(ctx, sim.TokenURL(sfsim.LoginHost), rotator.Credentials{Key: next.Key, Secret: next.Secret}); !errors.Is(err, rotator.ErrMisconfigured) {
		t.Errorf("Verify on the login host = %v, want ErrMisconfigured (client credentials need My Domain)", err)
	}
	if err := v.Verify(ctx, sim.TokenURL(subscriber), rotator.Credentials{Key: next.Key, Secret: next.Secret}); err != nil {
		t.Errorf("Verify(new) in the subscriber org: %v", err)
	}
	if err := v.Verify(ctx, tokenURL, primary); err != nil {
		t.Errorf("Verify(previous) during the overlap: %v", err)
	}

	if err := c.DeleteStaged(ctx, app.ID, cons.ID, staged[0].ID); err != nil {
		t.Fatalf("DeleteStaged: %v", err)
	}
	if err := v.Verify(ctx, tokenURL, primary); !errors.Is(err, rotator.ErrRejected) {
		t.Errorf("Verify(previous) after delete = %v, want ErrRejected", err)
	}
	if err := c.DeleteStaged(ctx, app.ID, cons.ID, staged[0].ID); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("second DeleteStaged = %v, want ErrNotFound", err)
	}
	for _, r := range sim.Requests() {
		if r.Fault != "" {
			t.Errorf("request %s %s hit fault %q (a body-less POST staged?)", r.Method, r.Route, r.Fault)
		}
	}
	if u, ok := c.Usage(); !ok || u.Used == 0 || u.Limit != sfsim.DefaultAPILimit {
		t.Errorf("Usage = %+v, %v", u, ok)
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, val := range e.ContextMap() {
			line += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(fmtAny(val), "\n", " "))
		}
		noLeak(t, "log", line, next.Secret.Reveal())
	}
}

func fmtAny(v any) string {
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return fmt.Sprint(v)
}

func TestContractAuthentication(t *testing.T) {
	sim := startSim(t, nil)
	tests := []struct {
		name string
		mod  func(*salesforce.Options)
		want error
	}{
		{"JWT bearer on the login host", nil, nil},
		{"JWT bearer on the My Domain host", func(o *salesforce.Options) { o.LoginURL = sim.OrgURL(devhub) }, nil},
		{"client credentials in the body on My Domain", func(o *salesforce.Options) {
			o.LoginURL = sim.OrgURL(devhub)
			o.Auth = salesforce.Auth{Method: salesforce.AuthClientCredentials, ClientID: rotatorKey, ClientSecret: rotator.NewSecret(rotatorSecret)}
		}, nil},
		{"client credentials in a Basic header on My Domain", func(o *salesforce.Options) {
			o.LoginURL = sim.OrgURL(devhub)
			o.Auth = salesforce.Auth{Method: salesforce.AuthClientCredentials, ClientID: rotatorKey, ClientSecret: rotator.NewSecret(rotatorSecret), Basic: true}
		}, nil},
		{"client credentials on the login host is rejected", func(o *salesforce.Options) {
			o.Auth = salesforce.Auth{Method: salesforce.AuthClientCredentials, ClientID: rotatorKey, ClientSecret: rotator.NewSecret(rotatorSecret)}
		}, rotator.ErrMisconfigured},
		{"a wrong client secret is rejected", func(o *salesforce.Options) {
			o.LoginURL = sim.OrgURL(devhub)
			o.Auth = salesforce.Auth{Method: salesforce.AuthClientCredentials, ClientID: rotatorKey, ClientSecret: rotator.NewSecret("wrong")}
		}, rotator.ErrRejected},
		{"a wrong JWT audience is rejected", func(o *salesforce.Options) { o.Audience = "https://elsewhere.example.com" }, rotator.ErrRejected},
		{"a JWT for a user who is not pre-authorized is rejected", func(o *salesforce.Options) { o.Auth.Username = runAsUser }, rotator.ErrRejected},
		{"a JWT signed by another key is rejected", func(o *salesforce.Options) {
			k, _ := rsa.GenerateKey(rand.Reader, 2048)
			o.Auth.Key = k
		}, rotator.ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*salesforce.Options)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			c, _ := simClient(t, sim, mods...)
			_, err := c.FindApp(t.Context(), targetECA)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil {
				noLeak(t, "error", err.Error())
			}
		})
	}
}

func TestContractExpiredTokenIsRenewedOnce(t *testing.T) {
	sim := startSim(t, nil)
	c, _ := simClient(t, sim)
	app, cons := target(t, c)
	before := countRequests(sim, sfsim.LoginHost, http.MethodPost, sfsim.RouteToken)
	// The access token lapses (x/oauth2/jwt signs with the wall clock, so
	// the sim clock is not moved: a later exp would read as expired).
	sim.ExpireTokens()
	if _, err := c.PrimaryKey(t.Context(), app.ID, cons.ID); err != nil {
		t.Fatalf("PrimaryKey after expiry: %v", err)
	}
	if got := countRequests(sim, sfsim.LoginHost, http.MethodPost, sfsim.RouteToken) - before; got != 1 {
		t.Errorf("token requests after expiry = %d, want 1", got)
	}
	if got := countRequests(sim, devhub, http.MethodGet, sfsim.RouteConsumer); got != 2 {
		t.Errorf("consumer GETs = %d, want 2 (401 then retry)", got)
	}
}

func TestContractSecretAccessGate(t *testing.T) {
	sim := startSim(t, nil)
	c, _ := simClient(t, sim)
	ctx := t.Context()
	app, cons := target(t, c)

	if on, err := c.SecretAccess(ctx); err != nil || !on {
		t.Fatalf("SecretAccess = %v, %v", on, err)
	}
	if err := c.SetSecretAccess(ctx, false); err != nil {
		t.Fatalf("SetSecretAccess(false): %v", err)
	}
	if sim.SecretAccess(devhub) {
		t.Fatal("sim still has secret access on")
	}
	if on, err := c.SecretAccess(ctx); err != nil || on {
		t.Fatalf("SecretAccess after off = %v, %v", on, err)
	}
	if _, err := c.Credentials(ctx, app.ID, cons.ID); !errors.Is(err, rotator.ErrPermission) {
		t.Errorf("Credentials with the gate closed = %v, want ErrPermission", err)
	}
	if _, err := c.Stage(ctx, app.ID, cons.ID); !errors.Is(err, rotator.ErrPermission) {
		t.Errorf("Stage with the gate closed = %v, want ErrPermission", err)
	}
	if err := c.SetSecretAccess(ctx, true); err != nil {
		t.Fatalf("SetSecretAccess(true): %v", err)
	}
	if _, err := c.Credentials(ctx, app.ID, cons.ID); err != nil {
		t.Errorf("Credentials with the gate open: %v", err)
	}
}

func TestContractMissingPermissions(t *testing.T) {
	sim := startSim(t, nil)
	admin, _ := simClient(t, sim)
	app, cons := target(t, admin)
	c, _ := simClient(t, sim, func(o *salesforce.Options) { o.Auth.Username = weakUser })
	ctx := t.Context()
	calls := []struct {
		name string
		run  func() error
	}{
		{"reading the secret", func() error { _, err := c.Credentials(ctx, app.ID, cons.ID); return err }},
		{"staging", func() error { _, err := c.Stage(ctx, app.ID, cons.ID); return err }},
		{"changing the metadata setting", func() error { return c.SetSecretAccess(ctx, false) }},
	}
	for _, call := range calls {
		t.Run(call.name+" needs a permission", func(t *testing.T) {
			if err := call.run(); !errors.Is(err, rotator.ErrPermission) {
				t.Errorf("err = %v, want ErrPermission", err)
			}
		})
	}
	if !sim.SecretAccess(devhub) {
		t.Error("a user without ModifyMetadata changed the setting")
	}
}

func TestContractOccupiedSlotNotFoundAndFinal(t *testing.T) {
	sim := startSim(t, nil)
	c, _ := simClient(t, sim)
	ctx := t.Context()
	app, cons := target(t, c)
	first, err := c.Stage(ctx, app.ID, cons.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stage(ctx, app.ID, cons.ID); !errors.Is(err, rotator.ErrSlotOccupied) {
		t.Errorf("second Stage = %v, want ErrSlotOccupied", err)
	}
	if _, err := c.Promote(ctx, app.ID, cons.ID, "0SsNOSUCHID000000"); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("Promote(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := c.FindApp(ctx, "No_Such_App"); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("FindApp(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := c.Consumers(ctx, "0xINOSUCHAPP0000"); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("Consumers(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := c.Promote(ctx, app.ID, cons.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	rotated, err := c.Staged(ctx, app.ID, cons.ID)
	if err != nil || len(rotated) != 1 || rotated[0].Status != rotator.StagedRotated {
		t.Fatalf("Staged after rotate: %+v %v", rotated, err)
	}
	// Rotating the Rotated previous pair is refused with a 400: final,
	// matching no sentinel and certainly not ambiguous.
	_, err = c.Promote(ctx, app.ID, cons.ID, rotated[0].ID)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Class != salesforce.ClassFinal || apiErr.Status != http.StatusBadRequest || apiErr.Code != "INVALID_INPUT" {
		t.Errorf("Promote(rotated) = %v, want a final 400 INVALID_INPUT", err)
	}
	if errors.Is(err, rotator.ErrAmbiguous) || errors.Is(err, rotator.ErrUnreachable) || errors.Is(err, rotator.ErrRejected) {
		t.Errorf("a final error matches a sentinel: %v", err)
	}
	if err := c.DeleteStaged(ctx, app.ID, cons.ID, rotated[0].ID); err != nil {
		t.Fatal(err)
	}
	sim.SetBehavior(sfsim.Behavior{EmptyStagedNotFound: true})
	if got, err := c.Staged(ctx, app.ID, cons.ID); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Staged on an empty slot answering 404 = %v, %v; want an empty slice", got, err)
	}
}

func TestContractRateLimit(t *testing.T) {
	sim := startSim(t, nil)
	c, _ := simClient(t, sim)
	app, cons := target(t, c)
	used, _ := sim.APIUsage(devhub)
	sim.SetAPILimit(devhub, used)
	before := countRequests(sim, devhub, http.MethodGet, sfsim.RouteConsumer)
	_, err := c.PrimaryKey(t.Context(), app.ID, cons.ID)
	if !errors.Is(err, rotator.ErrRateLimited) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if got := countRequests(sim, devhub, http.MethodGet, sfsim.RouteConsumer) - before; got != 1 {
		t.Errorf("calls %d, want 1 (no hot retry)", got)
	}
	if u, ok := c.Usage(); !ok || u.Used < u.Limit {
		t.Errorf("Usage = %+v %v, want at or over the limit", u, ok)
	}
}

func TestContractVerifyWaitsForPropagation(t *testing.T) {
	sim := startSim(t, nil)
	c, _ := simClient(t, sim)
	ctx := t.Context()
	app, cons := target(t, c)
	sim.SetPropagationDelay(5 * time.Minute)
	next, err := c.Stage(ctx, app.ID, cons.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Promote(ctx, app.ID, cons.ID, next.ID); err != nil {
		t.Fatal(err)
	}
	pair := rotator.Credentials{Key: next.Key, Secret: next.Secret}
	// The sleeper moves the sim clock instead of waiting.
	v := salesforce.NewVerifier(salesforce.VerifierOptions{Sleep: func(_ context.Context, d time.Duration) error {
		sim.Advance(d)
		return nil
	}})
	if err := v.Verify(ctx, sim.TokenURL(devhub), pair); !errors.Is(err, rotator.ErrRejected) {
		t.Fatalf("Verify before propagation = %v, want ErrRejected", err)
	}
	tooShort := rotator.Backoff{Base: time.Minute, Max: time.Minute, Attempts: 2}.NextAttempt
	if err := v.VerifyWithRetry(ctx, sim.TokenURL(devhub), pair, tooShort); !errors.Is(err, rotator.ErrRejected) {
		t.Fatalf("VerifyWithRetry within 2m = %v, want ErrRejected", err)
	}
	enough := rotator.Backoff{Base: time.Minute, Max: 2 * time.Minute, Attempts: 9}.NextAttempt
	if err := v.VerifyWithRetry(ctx, sim.TokenURL(devhub), pair, enough); err != nil {
		t.Fatalf("VerifyWithRetry = %v, want success after propagation", err)
	}
}
