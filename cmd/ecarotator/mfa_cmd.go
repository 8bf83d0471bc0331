package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/vault"
)

// MFA actions, as recorded in mfa.* events and approvals. They match the
// control-path actions of configs/policies/operator.hcl.
const (
	actionRotate = "rotate"
	actionRevoke = "revoke"
	actionReveal = "reveal"
)

// mfaService builds the MFA service on a Vault client (the caller's token)
// and the audit trail. MFA events are always fail-closed: an accepted code
// whose event cannot be written is refused.
func mfaService(cfg *config.Config, vc *vault.Client, al *audit.Log, log *zap.Logger) (*mfa.Service, error) {
	if al == nil {
		return nil, errors.New("mfa: the audit trail is not open")
	}
	m := cfg.MFA
	return mfa.New(mfa.Options{
		Vault: vc, SeedPrefix: m.SeedPrefix, Issuer: m.Issuer,
		Skew: uint(max(m.Skew, 0)), MaxFailures: m.MaxFailures, Lockout: m.Lockout.D(), ApprovalTTL: m.ApprovalTTL.D(),
		Audit: al, Logger: log,
	})
}

// mfaService builds the MFA service on the runtime's adapters.
func (c *cli) mfaService(rt *wire.Runtime, log *zap.Logger) (*mfa.Service, error) {
	return mfaService(rt.Cfg, rt.Vault, rt.Audit, log)
}

// callerOperator is the operator name of the Vault token this process uses
// (VAULT_TOKEN for an operator): never a flag, so nobody can claim another
// operator's identity without their token.
func (c *cli) callerOperator(ctx context.Context, rt *wire.Runtime) (string, error) {
	return callerOperator(ctx, rt.Vault)
}

func callerOperator(ctx context.Context, vc *vault.Client) (string, error) {
	tok := vc.Token()
	id, err := vc.TokenIdentity(ctx, tok)
	if err != nil {
		return "", fmt.Errorf("identify the caller's vault token: %w", err)
	}
	// An operator is a Vault entity (M1): a token without one is refused
	// here, before any code is looked at.
	op, err := mfa.ParseOperator(id)
	if err != nil {
		return "", fmt.Errorf("identify the caller's vault token: %w", err)
	}
	return op.Identity, nil
}

// gate checks the caller's TOTP code for action on app and returns the
// operator it belongs to.
func (c *cli) gate(ctx context.Context, rt *wire.Runtime, log *zap.Logger, code, action, app string) (string, error) {
	if code == "" {
		return "", usageError{fmt.Errorf("%s %s needs --code (the operator's current TOTP code)", action, app)}
	}
	op, err := c.callerOperator(ctx, rt)
	if err != nil {
		return "", err
	}
	svc, err := c.mfaService(rt, log)
	if err != nil {
		return "", err
	}
	if err := svc.Verify(ctx, op, code, action, app); err != nil {
		return op, err
	}
	return op, nil
}

func (c *cli) mfaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mfa",
		Short: "Enroll or disable an operator's TOTP",
		Long: `Operators prove break-glass actions (rotate now when mfa.enabled, revoke the
previous pair, reveal) with a TOTP code (RFC 6238, six digits, 30 s).

An operator is the Vault identity entity of the operator's token (its
display name, e.g. "userpass-alice", is shown beside it): ecarotator always
takes it from the token, never from a flag, and refuses tokens without an
entity. One person with several login methods is one operator. An
administrator names someone else by entity id ("mfa enroll <entity-id>").
Who may enroll whom is Vault policy on the seed path
<kv_mount>/data/<mfa.seed_prefix>/seeds/<entity-id> (configs/policies/mfa-admin.hcl).`,
	}
	cmd.AddCommand(c.mfaEnrollCommand(), c.mfaDisableCommand())
	return cmd
}

func (c *cli) mfaEnrollCommand() *cobra.Command {
	var noQR bool
	cmd := &cobra.Command{
		Use:   "enroll [operator]",
		Short: "Create an operator's TOTP seed in Vault and print the otpauth URI and a QR code",
		Long: `Creates a TOTP seed (crypto/rand, 160 bits) for the operator in Vault and
prints the otpauth:// URI and a QR code to scan with an authenticator app.
Both contain the seed: they go to stdout only, once. Without an operator
argument the caller enrolls themselves. An enrolled operator must be
disabled first.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withMFA(cmd.Context(), func(ctx context.Context, m *mfaEnv) error {
				op, err := operatorArg(ctx, m.vc, args)
				if err != nil {
					return err
				}
				uri, err := m.svc.Enroll(ctx, op)
				if err != nil {
					return err
				}
				return printEnrolment(c.stdout, op, uri, !noQR)
			})
		},
	}
	cmd.Flags().BoolVar(&noQR, "no-qr", false, "print only the otpauth URI")
	return cmd
}

func (c *cli) mfaDisableCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "disable [operator]",
		Short: "Delete an operator's TOTP seed (their codes stop working at once)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withMFA(cmd.Context(), func(ctx context.Context, m *mfaEnv) error {
				op, err := operatorArg(ctx, m.vc, args)
				if err != nil {
					return err
				}
				if err := m.svc.Disable(ctx, op); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "MFA disabled for %s\n", op)
				return nil
			})
		},
	}
}

// operatorArg is the named operator, or the caller.
func operatorArg(ctx context.Context, vc *vault.Client, args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	return callerOperator(ctx, vc)
}

// mfaEnv is what the MFA commands that change no credential need.
type mfaEnv struct {
	cfg   *config.Config
	log   *zap.Logger
	vc    *vault.Client
	audit *audit.Log
	svc   *mfa.Service
}

// withMFA loads the config, logs in to Vault, opens the audit trail and
// builds the MFA service, runs fn and closes everything. It wires no Dev
// Hub: enrolling an operator or revealing a pair needs no Salesforce key
// material, so the caller's token needs no Dev Hub key either.
func (c *cli) withMFA(ctx context.Context, fn func(context.Context, *mfaEnv) error) error {
	cfg, log, err := c.setup(false)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	vo, err := wire.VaultOptions(cfg, log)
	if err != nil {
		return configError{err}
	}
	vc, err := vault.New(ctx, vo)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	defer func() { _ = vc.Close() }()
	al, err := wire.AuditLog(ctx, cfg, vc, log)
	if err != nil {
		return err
	}
	defer func() { _ = al.Close() }()
	svc, err := mfaService(cfg, vc, al, log)
	if err != nil {
		return err
	}
	return fn(ctx, &mfaEnv{cfg: cfg, log: log, vc: vc, audit: al, svc: svc})
}

// printEnrolment shows the URI and, when qr, a QR code drawn with
// half-block characters (two modules per character cell).
func printEnrolment(w io.Writer, op, uri string, qr bool) error {
	fmt.Fprintf(w, "Enrolled %s. Add this to an authenticator app (shown once; it contains the seed):\n\n%s\n\n", op, uri)
	if !qr {
		return nil
	}
	q, err := qrcode.New(uri, qrcode.Medium)
	if err != nil {
		return fmt.Errorf("render qr code: %w", err)
	}
	_, err = io.WriteString(w, q.ToSmallString(false))
	return err
}
