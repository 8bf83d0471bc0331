package mfa

import (
	"context"
	"errors"
	"fmt"

	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

// Actor is who carries out an approved request in the audit trail: the
// approver acts; the requester, the approval id and the request's reason
// are in Reason.
func (a Approval) Actor() rotator.Actor {
	reason := fmt.Sprintf("approval %s: requested by %s, approved by %s", a.ID, a.Requester, a.Approver)
	if a.Reason != "" {
		reason += ": " + a.Reason
	}
	return rotator.Actor{Kind: rotator.ActorOperator, Identity: a.Approver, Reason: reason}
}

// Approvals adapts a Service to server.Approvals, for the daemon's API.
// Execute carries out an approved request (the daemon starts the revoke in
// the background under its own lifecycle) and returns an operation id; it
// is called only after the approval was granted and audited.
type Approvals struct {
	Service *Service
	Execute func(ctx context.Context, a Approval) (string, error)
}

var _ server.Approvals = (*Approvals)(nil)

// Request implements server.Approvals.
func (s *Approvals) Request(ctx context.Context, app, action string, requester rotator.Actor, code rotator.Secret) (server.ApprovalInfo, error) {
	a, err := s.Service.RequestApproval(ctx, action, app, requester.Identity, code.Reveal(), requester.Reason)
	if err != nil {
		return server.ApprovalInfo{}, serverErr(err)
	}
	return info(a), nil
}

// Lookup implements server.Approvals.
func (s *Approvals) Lookup(ctx context.Context, id string) (server.ApprovalInfo, error) {
	a, _, err := s.Service.Get(ctx, id)
	if err != nil {
		return server.ApprovalInfo{}, serverErr(err)
	}
	return info(a), nil
}

// Approve implements server.Approvals.
func (s *Approvals) Approve(ctx context.Context, id string, approver rotator.Actor, code rotator.Secret) (server.ApprovalInfo, string, error) {
	a, err := s.Service.Approve(ctx, id, approver.Identity, code.Reveal())
	if err != nil {
		return info(a), "", serverErr(err)
	}
	if s.Execute == nil {
		return info(a), "", errors.New("mfa: approvals: no executor configured")
	}
	op, err := s.Execute(ctx, a)
	return info(a), op, err
}

func info(a Approval) server.ApprovalInfo {
	return server.ApprovalInfo{ID: a.ID, Action: a.Action, App: a.App, Requester: a.Requester, Approver: a.Approver, Status: a.Status, Expires: a.Expires}
}

// serverErr maps the package's errors onto the server's, keeping both in
// the chain for errors.Is.
func serverErr(err error) error {
	switch {
	case errors.Is(err, ErrNoEntity):
		return fmt.Errorf("%w: %w", server.ErrNoEntity, err)
	case errors.Is(err, ErrInvalidCode), errors.Is(err, ErrReplayed), errors.Is(err, ErrLockedOut), errors.Is(err, ErrNotEnrolled):
		return fmt.Errorf("%w: %w", server.ErrMFA, err)
	case errors.Is(err, ErrSameOperator):
		return fmt.Errorf("%w: %w", server.ErrSameOperator, err)
	case errors.Is(err, ErrApprovalExpired), errors.Is(err, ErrApprovalUsed):
		return fmt.Errorf("%w: %w", server.ErrApprovalClosed, err)
	case errors.Is(err, ErrApprovalNotFound):
		return fmt.Errorf("%w: %w", rotator.ErrNotFound, err)
	case errors.Is(err, ErrInvalidOperator):
		return fmt.Errorf("%w: %w", server.ErrForbidden, err)
	}
	return err
}
