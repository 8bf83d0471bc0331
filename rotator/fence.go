package rotator

import (
	"context"
	"fmt"
	"time"
)

// fencedIssuer bounds every mutating Salesforce call of a run by the run's
// lease (review L1). The lease is checked before each mutation (mutate),
// but one call can retry inside the adapter for minutes (Retry-After,
// backoff); without a bound, a late retry could land after the lease
// lapsed and another replica took over, e.g. re-opening the secret-access
// setting that replica had restored. Each call now gets a context deadline
// at the lease's end minus a margin, and a call that would start with less
// than the margin left is refused with ErrFenced. The end is measured on
// the engine's own clock from just before the lease was taken or renewed
// plus LockTTL: never later than the lease's real end, and independent of
// the clock that wrote ExpiresAt.
//
// Closing the secret-access setting is not bounded: it is the direction
// that restores the prior value, and it must also work when no lease is
// held (the unjournaled close when Vault is down).
type fencedIssuer struct {
	Issuer
	e *Engine
	r *run
}

// fenceMargin is the part of the lease left unused by a mutation: time for
// the journal write that follows it.
func (e *Engine) fenceMargin() time.Duration {
	return min(10*time.Second, e.o.LockTTL/4)
}

// bound returns ctx limited to the run's remaining lease.
func (f fencedIssuer) bound(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if f.r.leaseFrom.IsZero() {
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, nil
	}
	left := f.e.o.LockTTL - f.e.now().Sub(f.r.leaseFrom) - f.e.fenceMargin()
	if left <= 0 {
		return nil, nil, fmt.Errorf("%s: lease %s ends in less than %s: %w", op, f.r.lease.Name, f.e.fenceMargin(), ErrFenced)
	}
	ctx, cancel := context.WithTimeout(ctx, left)
	return ctx, cancel, nil
}

// Stage implements Issuer within the lease.
func (f fencedIssuer) Stage(ctx context.Context, appID, consumerID string) (StagedCredential, error) {
	ctx, cancel, err := f.bound(ctx, "stage")
	if err != nil {
		return StagedCredential{}, err
	}
	defer cancel()
	return f.Issuer.Stage(ctx, appID, consumerID)
}

// Promote implements Issuer within the lease.
func (f fencedIssuer) Promote(ctx context.Context, appID, consumerID, stagedID string) error {
	ctx, cancel, err := f.bound(ctx, "promote")
	if err != nil {
		return err
	}
	defer cancel()
	return f.Issuer.Promote(ctx, appID, consumerID, stagedID)
}

// DeleteStaged implements Issuer within the lease.
func (f fencedIssuer) DeleteStaged(ctx context.Context, appID, consumerID, stagedID string) error {
	ctx, cancel, err := f.bound(ctx, "delete staged")
	if err != nil {
		return err
	}
	defer cancel()
	return f.Issuer.DeleteStaged(ctx, appID, consumerID, stagedID)
}

// SetSecretAccess implements Issuer: opening is bounded by the lease,
// closing is not (see the type's comment).
func (f fencedIssuer) SetSecretAccess(ctx context.Context, on bool) error {
	if !on {
		return f.Issuer.SetSecretAccess(ctx, on)
	}
	ctx, cancel, err := f.bound(ctx, "open secret access")
	if err != nil {
		return err
	}
	defer cancel()
	return f.Issuer.SetSecretAccess(ctx, on)
}
