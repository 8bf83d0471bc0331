package daemon

import (
	"errors"
	"testing"

	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

func TestServerErrMapsRefusalsToHTTPAnswers(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{mfa.ErrInvalidCode, server.ErrMFA},
		{mfa.ErrReplayed, server.ErrMFA},
		{mfa.ErrLockedOut, server.ErrMFA},
		{mfa.ErrNotEnrolled, server.ErrMFA},
		{mfa.ErrSameOperator, server.ErrSameOperator},
		{mfa.ErrApprovalExpired, server.ErrApprovalClosed},
		{mfa.ErrApprovalUsed, server.ErrApprovalClosed},
		{mfa.ErrApprovalNotFound, rotator.ErrNotFound},
		{mfa.ErrInvalidOperator, server.ErrForbidden},
	}
	for _, tt := range tests {
		got := mfaServerErr(tt.err)
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.err) {
			t.Errorf("mfaServerErr(%v) = %v, want it to match %v and keep the cause", tt.err, got, tt.want)
		}
	}
}
