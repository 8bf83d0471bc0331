package mfa

import (
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestApprovalActorNamesBothOperators(t *testing.T) {
	a := Approval{ID: "ap1", Requester: "token-alice", Approver: "token-bob", Reason: "leaked", Expires: time.Unix(0, 0)}
	got := a.Actor()
	if got.Kind != rotator.ActorOperator || got.Identity != "token-bob" || got.Reason != "approval ap1: requested by token-alice, approved by token-bob: leaked" {
		t.Errorf("actor = %+v", got)
	}
}
