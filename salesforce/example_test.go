package salesforce_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
)

// Example wires a Dev Hub client authenticating with the JWT bearer flow
// (the PEM comes from Vault) and rotates one consumer, re-reading state
// after any ambiguous failure as the engine does.
func Example() {
	ctx := context.Background()
	pemFromVault := rotator.NewSecret("-----BEGIN RSA PRIVATE KEY-----\n…")
	c, err := salesforce.New(salesforce.Options{
		LoginURL:   "https://acme.my.salesforce.com",
		Audience:   salesforce.ProductionLoginURL,
		APIVersion: "65.0",
		Auth: salesforce.Auth{
			Method:     salesforce.AuthJWT,
			ClientID:   "3MVG…rotator-app-consumer-key",
			Username:   "rotator@acme.example",
			PrivateKey: pemFromVault,
		},
		Logger: zap.NewNop(),
		Org:    "acme-devhub",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	app, err := c.FindApp(ctx, "Billing_Sync")
	if err != nil {
		return
	}
	consumers, err := c.Consumers(ctx, app.ID)
	if err != nil || len(consumers) == 0 {
		return
	}
	staged, err := c.Stage(ctx, app.ID, consumers[0].ID)
	if errors.Is(err, rotator.ErrAmbiguous) {
		// Never POST again blindly: look at the slot first.
		_, _ = c.Staged(ctx, app.ID, consumers[0].ID)
		return
	}
	if err != nil {
		return
	}
	// … persist staged.Key/staged.Secret to Vault here, then promote.
	if _, err := c.Promote(ctx, app.ID, consumers[0].ID, staged.ID); err != nil {
		return
	}
	tokenURL, _ := c.OrgTokenURL(ctx)
	v := salesforce.NewVerifier(salesforce.VerifierOptions{})
	_ = v.VerifyWithRetry(ctx, tokenURL, rotator.Credentials{Key: staged.Key, Secret: staged.Secret},
		rotator.Backoff{Base: 5 * time.Second, Max: time.Minute, Attempts: 11}.NextAttempt)
}
