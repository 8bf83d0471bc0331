package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
)

func (c *cli) revealCommand() *cobra.Command {
	var code, reason, serverURL string
	cmd := &cobra.Command{
		Use:   "reveal <app>",
		Short: "Print an app's current consumer key and secret (break-glass, MFA)",
		Long: `Prints the app's current consumer key and secret from Vault to stdout, for
break-glass use. Needs the caller's TOTP code (--code) and "update" on the
app's reveal control path; the operator is the caller's Vault token. The
audit trail records secret.revealed with the operator, the reason and a
keyed fingerprint, never the secret.

With --server (or ECAROTATOR_SERVER, or server.url) the daemon does all of
this with its own rights: the operator's token needs only the reveal
control path, and the credential comes back wrapped in a single-use Vault
token that this command unwraps (VAULT_ADDR). That is the way to run it: a
reveal inside the caller's own process needs a token that can read the
secret anyway, so its MFA check binds only honest callers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkReason(reason); err != nil {
				return err
			}
			if code == "" {
				return usageError{fmt.Errorf("reveal %s needs --code (the operator's current TOTP code)", args[0])}
			}
			if base := c.daemonURL(serverURL); base != "" {
				return c.revealViaDaemon(ctx, base, args[0], code, reason)
			}
			return c.withMFA(ctx, func(ctx context.Context, m *mfaEnv) error {
				a, ok := m.cfg.AppByName(args[0])
				if !ok {
					return usageError{fmt.Errorf("unknown app %q (configured: %s)", args[0], appNames(m.cfg))}
				}
				app := wire.App(m.cfg, a)
				if err := canControl(ctx, m.vc, app.Name, vault.ActionReveal); err != nil {
					return err
				}
				op, err := callerOperator(ctx, m.vc)
				if err != nil {
					return err
				}
				if err := m.svc.Verify(ctx, op, code, actionReveal, app.Name); err != nil {
					return err
				}
				stored, meta, err := m.vc.ReadCredentials(ctx, app.VaultPath)
				if err != nil {
					return err
				}
				// The event is written before the secret is printed: an
				// unaudited reveal must not happen.
				ev := rotator.Event{
					Type: rotator.EventSecretRevealed, Time: time.Now().UTC(), App: app.Name, Org: app.DevHub, ECA: app.ECA,
					ConsumerKey: stored.Current.Key, RotationID: stored.RotationID, Outcome: rotator.OutcomeOK,
					Actor:     rotator.Actor{Kind: rotator.ActorOperator, Identity: op, Reason: reason},
					VaultPath: app.VaultPath, VaultVersion: meta.Version, Fingerprint: m.audit.Fingerprint(stored.Current.Secret),
				}
				if err := m.audit.Record(ctx, ev); err != nil {
					return fmt.Errorf("reveal %s: %w: %w", app.Name, rotator.ErrAudit, err)
				}
				fmt.Fprintf(c.stdout, "consumer_key=%s\nconsumer_secret=%s\n", stored.Current.Key, stored.Current.Secret.Reveal())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&code, "code", "", "the caller's current TOTP code")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail)")
	cmd.Flags().StringVar(&serverURL, "server", "", "base URL of the running daemon (env ECAROTATOR_SERVER, config server.url)")
	return cmd
}

// revealViaDaemon asks the daemon to reveal app (M6) and unwraps the
// answer's single-use wrapping token.
func (c *cli) revealViaDaemon(ctx context.Context, base, app, code, reason string) error {
	tok, err := c.callerToken()
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "reveal"
	}
	var out server.Revealed
	if err := apiCall(ctx, base, http.MethodPost, "/api/v1/apps/"+url.PathEscape(app)+"/reveal", tok,
		server.ActionRequest{Reason: reason, MFACode: code}, &out); err != nil {
		return fmt.Errorf("reveal %s: %w", app, err)
	}
	key, secret, err := unwrap(ctx, out.WrapToken)
	if err != nil {
		return fmt.Errorf("reveal %s: %w", app, err)
	}
	fmt.Fprintf(c.stdout, "consumer_key=%s\nconsumer_secret=%s\n", key, secret)
	return nil
}
