package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
)

func (c *cli) approveCommand() *cobra.Command {
	var code, reason, serverURL string
	cmd := &cobra.Command{
		Use:   "approve <approval-id>",
		Short: "Approve a pending two-person request (revoke previous) and carry it out",
		Long: `The second operator of the two-person rule: approves the pending request
created by "ecarotator retire <app> --revoke --code ..." with their own TOTP
code and then revokes the previous pair. The approver is the caller's Vault
token; the requester cannot approve their own request, and approvals expire
after mfa.approval_ttl.

With --server (or ECAROTATOR_SERVER, or server.url) the daemon checks the
approval and carries out the revoke with its own rights; the approver's
token needs only the revoke control path. That is the way to run it:
without a daemon this process needs the daemon's rights (Dev Hub key, app
path, every operator's seed), so the two-person rule then binds only
honest callers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code == "" {
				return usageError{errors.New("approve needs --code (the approver's current TOTP code)")}
			}
			ctx := cmd.Context()
			if err := checkReason(reason); err != nil {
				return err
			}
			if base := c.daemonURL(serverURL); base != "" {
				return c.approveViaDaemon(ctx, base, args[0], code, reason)
			}
			cfg, log, err := c.setup(false)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			rt, err := c.runtime(ctx, cfg, log, false)
			if err != nil {
				return err
			}
			defer rt.Close()
			svc, err := c.mfaService(rt, log)
			if err != nil {
				return err
			}
			op, err := c.callerOperator(ctx, rt)
			if err != nil {
				return err
			}
			pending, _, err := svc.Get(ctx, args[0])
			if err != nil {
				return err
			}
			if err := canControl(ctx, rt.Vault, pending.App, pending.Action); err != nil {
				return err
			}
			a, err := svc.Approve(ctx, args[0], op, code)
			if err != nil {
				return err
			}
			return c.execute(ctx, rt, a)
		},
	}
	cmd.Flags().StringVar(&code, "code", "", "the approver's current TOTP code")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail; with --server)")
	cmd.Flags().StringVar(&serverURL, "server", "", "base URL of the running daemon (env ECAROTATOR_SERVER, config server.url)")
	return cmd
}

// approveViaDaemon grants approval id through the daemon's API (M6).
func (c *cli) approveViaDaemon(ctx context.Context, base, id, code, reason string) error {
	tok, err := c.callerToken()
	if err != nil {
		return err
	}
	var out server.ApprovalAccepted
	if err := apiCall(ctx, base, http.MethodPost, "/api/v1/approvals/"+url.PathEscape(id)+"/approve", tok,
		server.ApprovalRequest{MFACode: code, Reason: reason}, &out); err != nil {
		return fmt.Errorf("approve %s: %w", id, err)
	}
	fmt.Fprintf(c.stdout, "approval %s %s by %s; operation %s (the daemon revokes %s in the background)\n",
		out.Approval.ID, out.Status, out.Approval.Approver, out.OperationID, out.Approval.App)
	return nil
}

// requestRevokeViaDaemon opens the revoke approval through the daemon (M6).
func (c *cli) requestRevokeViaDaemon(ctx context.Context, base, app, code, reason string) error {
	if code == "" {
		return usageError{fmt.Errorf("retire %s --revoke needs --code (the operator's current TOTP code)", app)}
	}
	tok, err := c.callerToken()
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "revoke previous pair"
	}
	var out server.ApprovalAccepted
	if err := apiCall(ctx, base, http.MethodPost, "/api/v1/apps/"+url.PathEscape(app)+"/revoke-previous", tok,
		server.ActionRequest{Reason: reason, MFACode: code}, &out); err != nil {
		return fmt.Errorf("retire %s --revoke: %w", app, err)
	}
	a := out.Approval
	printApproval(c.stdout, mfa.Approval{ID: a.ID, Action: a.Action, App: a.App, Requester: a.Requester, Status: a.Status, Expires: a.Expires})
	return nil
}

// execute carries out an approved request.
func (c *cli) execute(ctx context.Context, rt *wire.Runtime, a mfa.Approval) error {
	app, err := rt.App(a.App)
	if err != nil {
		return err
	}
	switch a.Action {
	case actionRevoke:
		res, err := rt.Engine.RevokePrevious(ctx, app, a.Actor())
		printResult(c.stdout, res)
		return err
	default:
		return fmt.Errorf("approval %s: unknown action %q", a.ID, a.Action)
	}
}

// canControl checks the caller's token for "update" on the control path of
// action on app (configs/policies/operator.hcl).
func canControl(ctx context.Context, vc *vault.Client, app, action string) error {
	tok := vc.Token()
	ok, err := vc.CanControl(ctx, tok, app, action)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s %s: the caller's vault token lacks update on %s: %w", action, app, vc.ControlPath(app, action), rotator.ErrPermission)
	}
	return nil
}

// requestRevoke is `retire <app> --revoke --code`: the first operator's half
// of the two-person rule. It prints the approval id for the second operator.
func (c *cli) requestRevoke(ctx context.Context, rt *wire.Runtime, log *zap.Logger, app, code, reason string) error {
	if code == "" {
		return usageError{fmt.Errorf("retire %s --revoke needs --code (the operator's current TOTP code)", app)}
	}
	if err := canControl(ctx, rt.Vault, app, vault.ActionRevoke); err != nil {
		return err
	}
	op, err := c.callerOperator(ctx, rt)
	if err != nil {
		return err
	}
	svc, err := c.mfaService(rt, log)
	if err != nil {
		return err
	}
	a, err := svc.RequestApproval(ctx, actionRevoke, app, op, code, reason)
	if err != nil {
		return err
	}
	printApproval(c.stdout, a)
	return nil
}

func printApproval(w io.Writer, a mfa.Approval) {
	fmt.Fprintf(w, "approval id  %s\naction       %s\napp          %s\nrequester    %s\nstatus       %s\nexpires      %s\n",
		a.ID, a.Action, a.App, a.Requester, a.Status, a.Expires.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "\nA second operator runs: ecarotator approve %s --code <their code>\n", a.ID)
}
