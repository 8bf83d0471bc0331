package salesforce_test

// Contract tests of the Metadata API surface of packaged ECAs: the client
// against sfsim over loopback HTTP.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// packaged makes the target ECA packaged, gives the rotator user the
// Metadata secrets permission and opens the Metadata secret-access setting.
func packaged(cfg *sfsim.Config) {
	hub := &cfg.Orgs[0]
	hub.ECAs[1].DistributionState = sfsim.DistributionPackaged
	hub.MetadataSecretAccess = true
	hub.Users[0].Permissions = append(hub.Users[0].Permissions, sfsim.PermViewSecretsInMetadata)
}

func TestMetadataDistributionState(t *testing.T) {
	sim := startSim(t, packaged)
	c, _ := simClient(t, sim)
	for _, tc := range []struct{ eca, want string }{
		{targetECA, rotator.DistributionPackaged},
		{"Rotator_App", rotator.DistributionLocal},
	} {
		got, err := c.DistributionState(t.Context(), tc.eca)
		if err != nil || got != tc.want {
			t.Errorf("DistributionState(%s) = %q, %v; want %q", tc.eca, got, err, tc.want)
		}
	}
	if _, err := c.DistributionState(t.Context(), "No_Such_App"); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("DistributionState(absent) error = %v, want ErrNotFound", err)
	}
}

func TestMetadataStagedRefusedForPackaged(t *testing.T) {
	sim := startSim(t, packaged)
	c, _ := simClient(t, sim)
	app, cons := target(t, c)
	_, err := c.Staged(t.Context(), app.ID, cons.ID)
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "INVALID_OPERATION" {
		t.Fatalf("Staged(packaged) error = %v, want 400 INVALID_OPERATION", err)
	}
	// The by-consumer read still works by default.
	if got, err := c.Credentials(t.Context(), app.ID, cons.ID); err != nil || got.Secret.Reveal() != targetSecret {
		t.Fatalf("Credentials(packaged) = %v", err)
	}
	b := sim.Behavior()
	b.PackagedSecretNotInREST = true
	sim.SetBehavior(b)
	if _, err := c.Credentials(t.Context(), app.ID, cons.ID); err == nil {
		t.Fatal("Credentials(packaged) with packagedSecretNotInREST succeeded")
	}
}

func TestMetadataGlobalOAuthRetrieve(t *testing.T) {
	sim := startSim(t, func(cfg *sfsim.Config) { packaged(cfg); cfg.Orgs[0].ECAs[1].GlobalOAuthName = targetECA + "_glbl" })
	c, _ := simClient(t, sim)
	s, err := c.GlobalOAuth(t.Context(), targetECA)
	if err != nil {
		t.Fatalf("GlobalOAuth: %v", err)
	}
	if s.FullName != targetECA+"_glbl" || s.ECA != targetECA || s.Key != targetKey || s.Secret.Reveal() != targetSecret || s.RotateKey || s.RotateSecret {
		t.Fatalf("GlobalOAuth = %+v (secret set: %v)", s, !s.Secret.IsZero())
	}
	noLeak(t, "OAuthSettings %+v", strings.ReplaceAll(strings.ReplaceAll(fmtAll(s), "\n", " "), "\t", " "))
}

func fmtAll(s rotator.OAuthSettings) string {
	return strings.Join([]string{s.FullName, s.ECA, s.Key, s.Secret.String(), s.Doc.String()}, " ")
}

func TestMetadataRetrieveGates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mod        func(*sfsim.Config, *sfsim.Behavior)
		wantErr    bool
		wantSecret bool
	}{
		{"both gates open: the secret is in the retrieve", nil, false, true},
		{"org setting off: the strict type gate refuses", func(c *sfsim.Config, _ *sfsim.Behavior) { c.Orgs[0].MetadataSecretAccess = false }, true, false},
		{"user permission missing: refused", func(c *sfsim.Config, _ *sfsim.Behavior) {
			c.Orgs[0].Users[0].Permissions = c.Orgs[0].Users[0].Permissions[:4]
		}, true, false},
		{"lenient gate, setting off: retrieved without the secret", func(c *sfsim.Config, b *sfsim.Behavior) {
			c.Orgs[0].MetadataSecretAccess = false
			b.MetadataGateLenient = true
		}, false, false},
		{"consumerSecretInRetrieve false: retrieved without the secret", func(_ *sfsim.Config, b *sfsim.Behavior) {
			b.ConsumerSecretInRetrieve = new(bool)
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, func(cfg *sfsim.Config) {
				packaged(cfg)
				if tc.mod != nil {
					tc.mod(cfg, &cfg.Behavior)
				}
			})
			c, _ := simClient(t, sim)
			s, err := c.GlobalOAuth(t.Context(), targetECA)
			if (err != nil) != tc.wantErr {
				t.Fatalf("GlobalOAuth error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && s.Secret.IsZero() == tc.wantSecret {
				t.Fatalf("secret present = %v, want %v", !s.Secret.IsZero(), tc.wantSecret)
			}
			if err != nil {
				noLeak(t, "error", err.Error())
			}
		})
	}
}

// deployAndWait deploys and polls checkDeployStatus until done.
func deployAndWait(t *testing.T, c *salesforce.Client, s rotator.OAuthSettings, key, secret bool) rotator.DeployStatus {
	t.Helper()
	id, err := c.Deploy(t.Context(), s, key, secret)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	for range 100 {
		st, err := c.DeployStatus(t.Context(), id)
		if err != nil {
			t.Fatalf("DeployStatus: %v", err)
		}
		if st.Done {
			return st
		}
	}
	t.Fatal("deploy not done after 100 polls")
	return rotator.DeployStatus{}
}

func TestMetadataDeployRotatesEverywhere(t *testing.T) {
	for _, overlap := range []time.Duration{0, time.Hour} {
		t.Run("overlap "+overlap.String(), func(t *testing.T) {
			sim := startSim(t, func(cfg *sfsim.Config) { packaged(cfg); cfg.Behavior.MetadataRotationOverlap = sfsim.Duration(overlap) })
			c, _ := simClient(t, sim)
			ctx := t.Context()
			before, err := c.GlobalOAuth(ctx, targetECA)
			if err != nil {
				t.Fatal(err)
			}
			st := deployAndWait(t, c, before, false, true)
			if !st.Success || st.Status != "Succeeded" {
				t.Fatalf("deploy = %+v", st)
			}
			after, err := c.GlobalOAuth(ctx, targetECA)
			if err != nil {
				t.Fatal(err)
			}
			if after.Key != targetKey || after.Secret.Equal(before.Secret) || after.Secret.IsZero() {
				t.Fatalf("after deploy: key %s, secret changed %v", after.Key, !after.Secret.Equal(before.Secret))
			}
			if !after.RotateSecret || after.RotateKey {
				t.Fatalf("flags after deploy = key %v secret %v; want the secret flag to persist", after.RotateKey, after.RotateSecret)
			}
			v := salesforce.NewVerifier(salesforce.VerifierOptions{})
			newPair := rotator.Credentials{Key: after.Key, Secret: after.Secret}
			oldPair := rotator.Credentials{Key: before.Key, Secret: before.Secret}
			for _, org := range []string{devhub, subscriber} {
				if err := v.Verify(ctx, sim.TokenURL(org), newPair); err != nil {
					t.Errorf("new pair at %s: %v", org, err)
				}
				err := v.Verify(ctx, sim.TokenURL(org), oldPair)
				if overlap == 0 && !errors.Is(err, rotator.ErrRejected) {
					t.Errorf("old pair at %s without overlap: %v, want rejected", org, err)
				}
				if overlap > 0 && err != nil {
					t.Errorf("old pair at %s inside the overlap: %v", org, err)
				}
			}
			// The flag persists: deploying the retrieved file unchanged
			// (flag still true) rotates again; clearing it does not.
			again := deployAndWait(t, c, after, after.RotateKey, after.RotateSecret)
			third, _ := c.GlobalOAuth(ctx, targetECA)
			if !again.Success || third.Secret.Equal(after.Secret) {
				t.Fatalf("a deploy still carrying true did not rotate again")
			}
			clear := deployAndWait(t, c, third, false, false)
			fourth, _ := c.GlobalOAuth(ctx, targetECA)
			if !clear.Success || !fourth.Secret.Equal(third.Secret) || fourth.RotateSecret {
				t.Fatalf("clearing deploy rotated or left the flag: %+v", fourth.RotateSecret)
			}
			if n := len(sim.MetadataDeploys()); n != 3 {
				t.Fatalf("deploys = %d, want 3", n)
			}
		})
	}
}

func TestMetadataDeployKeepsFields(t *testing.T) {
	sim := startSim(t, packaged)
	c, _ := simClient(t, sim)
	before := sim.GlobalOAuthFields(devhub, targetECA)
	s, err := c.GlobalOAuth(t.Context(), targetECA)
	if err != nil {
		t.Fatal(err)
	}
	st := deployAndWait(t, c, s, true, true)
	if !st.Success {
		t.Fatalf("deploy: %+v", st)
	}
	after := sim.GlobalOAuthFields(devhub, targetECA)
	if len(after) != len(before) || len(before) == 0 {
		t.Fatalf("fields before %v after %v", before, after)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("field %s changed from %q to %q", k, v, after[k])
		}
	}
	got, _ := c.GlobalOAuth(t.Context(), targetECA)
	if got.Key == targetKey {
		t.Error("rotate_key deploy kept the key")
	}
}

func TestMetadataDeployFaults(t *testing.T) {
	t.Run("a component error fails the deploy without effect", func(t *testing.T) {
		sim := startSim(t, func(cfg *sfsim.Config) { packaged(cfg); cfg.Behavior.DeployComponentError = "Invalid callback URL" })
		c, _ := simClient(t, sim)
		s, err := c.GlobalOAuth(t.Context(), targetECA)
		if err != nil {
			t.Fatal(err)
		}
		st := deployAndWait(t, c, s, false, true)
		if st.Success || st.Status != "Failed" || len(st.Errors) == 0 || !strings.Contains(st.Errors[0], "Invalid callback URL") {
			t.Fatalf("deploy = %+v, want Failed with the component error", st)
		}
		after, _ := c.GlobalOAuth(t.Context(), targetECA)
		if !after.Secret.Equal(s.Secret) {
			t.Fatal("a failed deploy rotated the secret")
		}
	})
	t.Run("a deploy that never finishes stays InProgress without effect", func(t *testing.T) {
		// The sim clock moves a day; the session must outlive it. A new
		// JWT login would be signed on the wall clock (x/oauth2/jwt), a
		// day behind the sim, and strict sfsim rightly refuses its exp as
		// past: that skew is the test's, not a client or sim fault.
		sim := startSim(t, func(cfg *sfsim.Config) {
			packaged(cfg)
			cfg.Behavior.DeployNeverFinishes = true
			cfg.TokenTTL = sfsim.Duration(48 * time.Hour)
		})
		c, _ := simClient(t, sim)
		s, _ := c.GlobalOAuth(t.Context(), targetECA)
		id, err := c.Deploy(t.Context(), s, false, true)
		if err != nil {
			t.Fatal(err)
		}
		sim.Advance(24 * time.Hour)
		st, err := c.DeployStatus(t.Context(), id)
		if err != nil || st.Done || st.Status != "InProgress" {
			t.Fatalf("status = %+v, %v", st, err)
		}
	})
	t.Run("a reset after acceptance is ambiguous and the deploy still runs", func(t *testing.T) {
		sim := startSim(t, func(cfg *sfsim.Config) { packaged(cfg); cfg.Behavior.DeployResetAfterAccept = 1 })
		c, _ := simClient(t, sim)
		s, _ := c.GlobalOAuth(t.Context(), targetECA)
		_, err := c.Deploy(t.Context(), s, false, true)
		if !errors.Is(err, rotator.ErrAmbiguous) {
			t.Fatalf("Deploy error = %v, want ErrAmbiguous", err)
		}
		after, _ := c.GlobalOAuth(t.Context(), targetECA)
		if after.Secret.Equal(s.Secret) {
			t.Fatal("the accepted deploy did not rotate")
		}
		if n := len(sim.MetadataDeploys()); n != 1 {
			t.Fatalf("deploys = %d, want exactly 1 (never resent)", n)
		}
	})
	t.Run("a configured deploy delay keeps the deploy in progress", func(t *testing.T) {
		sim := startSim(t, func(cfg *sfsim.Config) { packaged(cfg); cfg.Behavior.DeployDelay = sfsim.Duration(time.Hour) })
		c, _ := simClient(t, sim)
		s, _ := c.GlobalOAuth(t.Context(), targetECA)
		id, err := c.Deploy(t.Context(), s, false, true)
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := c.DeployStatus(t.Context(), id); st.Done {
			t.Fatal("done before the delay")
		}
		sim.Advance(time.Hour)
		if st, _ := c.DeployStatus(t.Context(), id); !st.Done || !st.Success {
			t.Fatalf("not done after the delay: %+v", st)
		}
	})
}

func TestMetadataSecretAccessSetting(t *testing.T) {
	sim := startSim(t, nil)
	c, _ := simClient(t, sim)
	ctx := t.Context()
	for _, want := range []bool{true, false} {
		if err := c.SetMetadataSecretAccess(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := c.MetadataSecretAccess(ctx)
		if err != nil || got != want || sim.MetadataSecretAccess(devhub) != want {
			t.Fatalf("MetadataSecretAccess = %v, %v; want %v", got, err, want)
		}
		// The REST setting is untouched by the Metadata one.
		if rest, _ := c.SecretAccess(ctx); !rest {
			t.Fatal("REST setting changed")
		}
	}
}

func TestMetadataRetrievePollingIsBounded(t *testing.T) {
	sim := startSim(t, func(cfg *sfsim.Config) { packaged(cfg); cfg.Behavior.RetrieveDelay = sfsim.Duration(time.Hour) })
	polls := 0
	c, _ := simClient(t, sim, func(o *salesforce.Options) {
		o.MetadataPoll = func(attempt int) (bool, time.Duration) { polls = attempt; return attempt < 3, 0 }
		o.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	})
	_, err := c.GlobalOAuth(t.Context(), targetECA)
	if !errors.Is(err, rotator.ErrUnreachable) || polls != 3 {
		t.Fatalf("GlobalOAuth = %v after %d polls; want a transient timeout after 3", err, polls)
	}
}

// TestMetadataDeployedEqualsRetrievedExceptFlags proves that what the client
// deploys is byte for byte what it retrieved, except the two rotate flags.
func TestMetadataDeployedEqualsRetrievedExceptFlags(t *testing.T) {
	sim := startSim(t, packaged)
	c, _ := simClient(t, sim)
	s, err := c.GlobalOAuth(t.Context(), targetECA)
	if err != nil {
		t.Fatal(err)
	}
	deployAndWait(t, c, s, false, true)
	recs := sim.MetadataDeploys()
	if len(recs) != 1 {
		t.Fatalf("deploys = %d", len(recs))
	}
	deployed := string(recs[0].Files["extlClntAppGlobalOauthSets/"+s.FullName+".ecaGlblOauth"])
	retrieved := s.Doc.Reveal()
	if deployed == "" || retrieved == "" {
		t.Fatal("no component file")
	}
	if deployed == retrieved {
		t.Fatal("the deployed file did not change the flag")
	}
	want := strings.Replace(retrieved, "<shouldRotateConsumerSecret>false</shouldRotateConsumerSecret>", "<shouldRotateConsumerSecret>true</shouldRotateConsumerSecret>", 1)
	if deployed != want {
		t.Fatalf("deployed file differs from the retrieved one beyond the flag:\n got %q\nwant %q", redactFile(deployed), redactFile(want))
	}
	if pkg := string(recs[0].Files["package.xml"]); !strings.Contains(pkg, "<members>"+s.FullName+"</members>") || !strings.Contains(pkg, "<name>ExtlClntAppGlobalOauthSettings</name>") {
		t.Fatalf("package.xml = %s", pkg)
	}
}

func redactFile(s string) string { return strings.ReplaceAll(s, targetSecret, "<redacted>") }
