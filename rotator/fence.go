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
// at the lease's expiry minus a margin, measured on the engine's clock as
// time remaining (so clock skew between writer and reader does not count),
// and a call that would start with less than the margin left is refused
// with ErrFenced.
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

// bound returns ctx limited to the run's remaining lease. The remaining
// time is taken on the engine's clock alone (run.leaseUntil): the Lease's
// ExpiresAt was computed on the locker's clock, and subtracting the
// engine's clock from it mixes two clocks.
func (f fencedIssuer) bound(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	exp := f.r.leaseUntil // the engine's clock, like f.e.now()
	if exp.IsZero() {
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, nil
	}
	left := exp.Sub(f.e.now()) - f.e.fenceMargin()
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
func (f fencedIssuer) Promote(ctx context.Context, appID, consumerID, stagedID string) (StagedCredential, error) {
	ctx, cancel, err := f.bound(ctx, "promote")
	if err != nil {
		return StagedCredential{}, err
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

// fencedMetadataIssuer is fencedIssuer for an Issuer that also serves the
// Metadata API: the wrapper must keep that interface visible (strategy
// auto and metadata look for it), and its mutations — the rotating and
// flag-clearing deploys, opening the Metadata secret-access setting — are
// bounded by the lease the same way.
type fencedMetadataIssuer struct {
	fencedIssuer
	mi MetadataIssuer
}

// fence wraps iss for run r, keeping MetadataIssuer when iss has it.
func (e *Engine) fence(iss Issuer, r *run) Issuer {
	f := fencedIssuer{Issuer: iss, e: e, r: r}
	if mi, ok := iss.(MetadataIssuer); ok {
		return fencedMetadataIssuer{fencedIssuer: f, mi: mi}
	}
	return f
}

// DistributionState implements MetadataIssuer.
func (f fencedMetadataIssuer) DistributionState(ctx context.Context, eca string) (string, error) {
	return f.mi.DistributionState(ctx, eca)
}

// GlobalOAuth implements MetadataIssuer.
func (f fencedMetadataIssuer) GlobalOAuth(ctx context.Context, eca string) (OAuthSettings, error) {
	return f.mi.GlobalOAuth(ctx, eca)
}

// DeployStatus implements MetadataIssuer.
func (f fencedMetadataIssuer) DeployStatus(ctx context.Context, id string) (DeployStatus, error) {
	return f.mi.DeployStatus(ctx, id)
}

// MetadataSecretAccess implements MetadataIssuer.
func (f fencedMetadataIssuer) MetadataSecretAccess(ctx context.Context) (bool, error) {
	return f.mi.MetadataSecretAccess(ctx)
}

// Deploy implements MetadataIssuer within the lease.
func (f fencedMetadataIssuer) Deploy(ctx context.Context, s OAuthSettings, rotateKey, rotateSecret bool) (string, error) {
	ctx, cancel, err := f.bound(ctx, "metadata deploy")
	if err != nil {
		return "", err
	}
	defer cancel()
	return f.mi.Deploy(ctx, s, rotateKey, rotateSecret)
}

// SetMetadataSecretAccess implements MetadataIssuer: opening is bounded by
// the lease, closing is not (as SetSecretAccess).
func (f fencedMetadataIssuer) SetMetadataSecretAccess(ctx context.Context, on bool) error {
	if !on {
		return f.mi.SetMetadataSecretAccess(ctx, on)
	}
	ctx, cancel, err := f.bound(ctx, "open metadata secret access")
	if err != nil {
		return err
	}
	defer cancel()
	return f.mi.SetMetadataSecretAccess(ctx, on)
}
