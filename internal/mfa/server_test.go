package mfa

import (
	"errors"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

func TestServerErrMapsRefusalsToHTTPAnswers(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{ErrInvalidCode, server.ErrMFA},
		{ErrReplayed, server.ErrMFA},
		{ErrLockedOut, server.ErrMFA},
		{ErrNotEnrolled, server.ErrMFA},
		{ErrSameOperator, server.ErrSameOperator},
		{ErrApprovalExpired, server.ErrApprovalClosed},
		{ErrApprovalUsed, server.ErrApprovalClosed},
		{ErrApprovalNotFound, rotator.ErrNotFound},
		{ErrInvalidOperator, server.ErrForbidden},
	}
	for _, tt := range tests {
		got := serverErr(tt.err)
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.err) {
			t.Errorf("serverErr(%v) = %v, want it to match %v and keep the cause", tt.err, got, tt.want)
		}
	}
}

func TestApprovalActorNamesBothOperators(t *testing.T) {
	a := Approval{ID: "ap1", Requester: "token-alice", Approver: "token-bob", Reason: "leaked", Expires: time.Unix(0, 0)}
	got := a.Actor()
	if got.Kind != rotator.ActorOperator || got.Identity != "token-bob" || got.Reason != "approval ap1: requested by token-alice, approved by token-bob: leaked" {
		t.Errorf("actor = %+v", got)
	}
}
