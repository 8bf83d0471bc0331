//go:build integration

package vault

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

// TestNoSecretReachesLogsOrErrors runs every adapter operation, successful
// and failing, with known secret values and a debug-level logger, then
// looks for those values in every log entry and every error (I4).
func TestNoSecretReachesLogsOrErrors(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	roleID, secretID := appRole(t, root, "leak", "1s", "1s")
	core, logs := observer.New(zapcore.DebugLevel)
	c, err := New(t.Context(), Options{
		Address: srv.Addr,
		Auth:    AuthOptions{Method: AuthAppRole, RoleID: roleID, SecretID: rotator.NewSecret(secretID)},
		Logger:  zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()

	secrets := []string{secretID, "LEAK-current-secret", "LEAK-previous-secret", "LEAK-pending-secret", "LEAK-devhub-key"}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	sc := creds("k1", "LEAK-current-secret")
	sc.Previous = rotator.Credentials{Key: "k0", Secret: rotator.NewSecret("LEAK-previous-secret")}
	sc.PreviousValidUntil = time.Now().Add(time.Hour)
	v, err := c.WriteCredentials(ctx, "salesforce/leak", sc, rotator.WriteOptions{RotationID: "r"})
	note(err)
	_, err = c.WriteCredentials(ctx, "salesforce/leak", sc, rotator.WriteOptions{CAS: v + 5}) // conflict
	note(err)
	_, _, err = c.ReadCredentials(ctx, "salesforce/leak")
	note(err)
	l, err := c.Acquire(ctx, "leak", "me", time.Minute)
	note(err)
	e := rotator.JournalEntry{App: "leak", Pending: rotator.Credentials{Key: "k2", Secret: rotator.NewSecret("LEAK-pending-secret")}}
	_, err = c.Save(ctx, "leak", e, 0, &l)
	note(err)
	_, err = c.Save(ctx, "leak", e, 0, &l) // conflict
	note(err)
	_, _, err = c.Load(ctx, "leak")
	note(err)
	if _, err := root.KVv2("secret").Put(ctx, "ecarotator/devhub/main", map[string]any{"private_key": "LEAK-devhub-key"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.LoadJWTKey(ctx, "ecarotator/devhub/main", "")
	note(err)
	_, err = c.LoadJWTKey(ctx, "ecarotator/devhub/main", "missing")
	note(err)
	// Outlive the 1s token so that renewal and re-login run and log.
	first := c.api.Token()
	eventually(t, 30*time.Second, "token replaced", func() error {
		if c.api.Token() == first {
			return fmt.Errorf("still the first token")
		}
		return nil
	})
	_, err = c.Save(ctx, "leak", e, 1, nil)
	note(err)
	_, err = c.Capabilities(ctx, rotator.NewSecret(secretID), "secret/data/x") // a secret id is not a token
	note(err)
	cancel()
	note(<-runDone)
	secrets = append(secrets, first, c.api.Token())

	if logs.Len() == 0 {
		t.Fatal("no log entries: the test proves nothing")
	}
	enc := zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig())
	for _, entry := range logs.All() {
		buf, err := enc.EncodeEntry(entry.Entry, entry.Context)
		if err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("a secret appears in a log line: %s", strings.ReplaceAll(line, s, "<SECRET>"))
			}
		}
	}
	if len(errs) < 4 {
		t.Fatalf("got %d errors, want the failing operations to have failed", len(errs))
	}
	for _, err := range errs {
		text := fmt.Sprintf("%v %+v %#v", err, err, err)
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("a secret appears in an error: %s", strings.ReplaceAll(err.Error(), s, "<SECRET>"))
			}
		}
	}
}
