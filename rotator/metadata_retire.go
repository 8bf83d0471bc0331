package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrRevokeByRotation: the previous pair of a metadata-rotated app is still
// inside metadata_overlap, and Salesforce has nothing to delete for it: the
// only revoke is to rotate again.
var ErrRevokeByRotation = errors.New("metadata strategy: there is no previous credential to delete in Salesforce; revoke by rotating again (ecarotator rotate)")

// retiresByMetadata reports whether app is rotated by the metadata
// strategy, where retirement has nothing to delete in Salesforce: the old
// secret was replaced by the deploy (and stops working at the rotation
// time, or when metadata_overlap ends), so retiring only drops previous_*
// from Vault. A revoke while the overlap still runs cannot be done by a
// delete and fails with ErrRevokeByRotation.
func (e *Engine) retiresByMetadata(ctx context.Context, r *run, revoke bool, now time.Time) (bool, error) {
	c, err := e.chooseStrategy(ctx, r.app, r.iss, r, false)
	if err != nil {
		return false, fmt.Errorf("retire: %w", err)
	}
	if c.Strategy != StrategyMetadata {
		return false, nil
	}
	if revoke && now.Before(r.stored.PreviousValidUntil) {
		return true, ErrRevokeByRotation
	}
	return true, nil
}
