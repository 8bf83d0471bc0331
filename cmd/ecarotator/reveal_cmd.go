package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
)

func (c *cli) revealCommand() *cobra.Command {
	var code, reason string
	cmd := &cobra.Command{
		Use:   "reveal <app>",
		Short: "Print an app's current consumer key and secret (break-glass, MFA)",
		Long: `Prints the app's current consumer key and secret from Vault to stdout, for
break-glass use. Needs the caller's TOTP code (--code) and "update" on the
app's reveal control path; the operator is the caller's Vault token. The
audit trail records secret.revealed with the operator, the reason and a
keyed fingerprint, never the secret.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if code == "" {
				return usageError{fmt.Errorf("reveal %s needs --code (the operator's current TOTP code)", args[0])}
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
	return cmd
}
