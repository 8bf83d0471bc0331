package mfa

import (
	"fmt"

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
