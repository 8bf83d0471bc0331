package rotator

import "context"

// Intent events: recorded, fail closed, before a retire or revoke deletes
// the previous pair in Salesforce, so that a credential is never deleted
// without a trace when the audit sink is down (review L4). The outcome
// (previous.retired / previous.revoked) follows the delete.
const (
	EventRetireStarted EventType = "previous.retire_started"
	EventRevokeStarted EventType = "previous.revoke_started"
)

// recordIntent writes the intent event of a retire (or revoke) of the
// previous pair in st; an error stops the retire before any delete.
func (e *Engine) recordIntent(ctx context.Context, r *run, revoke bool, st StoredCredentials) error {
	t := EventRetireStarted
	if revoke {
		t = EventRevokeStarted
	}
	ev := r.event(t, StepRetire, OutcomeOK, nil, map[string]string{"previous_key": st.Previous.Key, "policy": string(r.app.Overlap.Policy)})
	ev.ConsumerKey = st.Current.Key
	return e.emit(ctx, r, ev)
}
