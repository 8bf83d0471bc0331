package rotator

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.uber.org/zap"
)

// The Metadata secret-access setting ("Allow access to OAuth consumer
// secrets via Metadata API", ExternalClientAppSettings.enableConsumerSecretApiAccess)
// is governed exactly like the REST one (secretaccess.go): in toggle mode the
// rotations of one Dev Hub share one opening through the same ledger (under
// its own key), the first in records the prior value, the last out restores
// it; the prior value is also in each journal (ExtraMDPrior), so a crash is
// restored by the next attempt; every change is a secret_access.opened /
// secret_access.restored event with details setting=metadata.

// mdLedgerKey is the ledger name of a Dev Hub's Metadata-setting opening.
func mdLedgerKey(devhub string) string { return "metadata/" + devhub }

var mdDetails = map[string]string{"setting": "metadata"}

func withMD(extra map[string]string) map[string]string {
	out := map[string]string{"setting": "metadata"}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// mdOpen joins the opening, journals the prior value, and switches the
// setting on if it is off.
func (e *Engine) mdOpen(ctx context.Context, r *run) error {
	if r.app.SecretAccessMode != SecretAccessToggle {
		return nil
	}
	mi := r.md.mi
	prior, err := e.mdJoin(ctx, r, mi)
	if err != nil {
		return err
	}
	if p := strconv.FormatBool(prior); r.j.Extra[ExtraMDPrior] != p {
		r.setExtra(ExtraMDPrior, p)
		if err := e.save(ctx, r); err != nil {
			return err
		}
	}
	on, err := mi.MetadataSecretAccess(ctx)
	if err != nil {
		return fmt.Errorf("read metadata secret access setting: %w", err)
	}
	if on && r.j.Extra[ExtraOp] == "open_md_secret_access" {
		r.setExtra(ExtraOp, "")
		if err := e.save(ctx, r); err != nil {
			return err
		}
		return e.record(ctx, r, EventSecretAccessOpened, StepExpose, OutcomeOK, nil, withMD(map[string]string{"recovered": "true"}))
	}
	if on {
		return nil
	}
	if err := e.mutate(ctx, r, "open_md_secret_access", func() error { return mi.SetMetadataSecretAccess(ctx, true) }); err != nil {
		return fmt.Errorf("open metadata secret access: %w", err)
	}
	r.setExtra(ExtraOp, "")
	if err := e.save(ctx, r); err != nil {
		return err
	}
	r.log.Info("metadata secret access opened")
	return e.record(ctx, r, EventSecretAccessOpened, StepExpose, OutcomeOK, nil, mdDetails)
}

func (r *run) mdPrior() *bool {
	v, err := strconv.ParseBool(r.j.Extra[ExtraMDPrior])
	if err != nil {
		return nil
	}
	return &v
}

// mdJoin makes r a holder of the Dev Hub's Metadata-setting opening and
// returns the setting's value before the opening (see joinSecretAccess).
func (e *Engine) mdJoin(ctx context.Context, r *run, mi MetadataIssuer) (bool, error) {
	key := mdLedgerKey(r.app.DevHub)
	for try := 0; try < ledgerTries; try++ {
		s, v, err := e.ledger.LoadSecretAccess(ctx, key)
		if err != nil {
			return false, fmt.Errorf("load metadata secret access holders of %s: %w", r.app.DevHub, err)
		}
		if s.Holders == nil {
			s.Holders = map[string]SecretAccessHolder{}
		}
		e.prune(ctx, &s, r.app.Name)
		if s.Closer != nil {
			return false, fmt.Errorf("metadata secret access of dev hub %s is being restored by %s: %w", r.app.DevHub, s.Closer.App, ErrLocked)
		}
		if s.Prior == nil && len(s.Holders) == 0 {
			s.Prior = r.mdPrior()
		}
		if s.Prior == nil {
			on, err := mi.MetadataSecretAccess(ctx)
			if err != nil {
				return false, fmt.Errorf("read metadata secret access setting: %w", err)
			}
			s.Prior = &on
		}
		s.Holders[r.app.Name] = r.holder(e.now())
		if _, err := e.ledger.SaveSecretAccess(ctx, key, s, v); err != nil {
			if errors.Is(err, ErrConflict) {
				continue
			}
			return false, fmt.Errorf("join metadata secret access holders of %s: %w", r.app.DevHub, err)
		}
		r.md.held = true
		return *s.Prior, nil
	}
	return false, fmt.Errorf("join metadata secret access holders of %s: %w", r.app.DevHub, ErrConflict)
}

// restoreMetadataSecretAccess leaves the opening (the last holder out restores
// the prior value) and forgets the prior value in the journal. Running it
// twice changes nothing.
func (e *Engine) restoreMetadataSecretAccess(ctx context.Context, r *run) error {
	mi, ok := r.iss.(MetadataIssuer)
	if !ok || r.app.SecretAccessMode != SecretAccessToggle || r.mdPrior() == nil || r.jv == 0 {
		return nil
	}
	if err := e.mdLeave(ctx, r, mi); err != nil {
		return err
	}
	r.setExtra(ExtraMDPrior, "")
	r.setExtra(ExtraOp, "")
	return e.save(ctx, r)
}

// mdLeave removes r from the opening; see leaveSecretAccess.
func (e *Engine) mdLeave(ctx context.Context, r *run, mi MetadataIssuer) error {
	key := mdLedgerKey(r.app.DevHub)
	for try := 0; try < ledgerTries; try++ {
		s, v, err := e.ledger.LoadSecretAccess(ctx, key)
		if err != nil {
			return fmt.Errorf("load metadata secret access holders of %s: %w", r.app.DevHub, err)
		}
		if s.Holders == nil {
			s.Holders = map[string]SecretAccessHolder{}
		}
		e.prune(ctx, &s, r.app.Name)
		if s.Closer != nil || len(s.Holders) > 0 {
			if _, err := e.ledger.SaveSecretAccess(ctx, key, s, v); errors.Is(err, ErrConflict) {
				continue
			} else if err != nil {
				return fmt.Errorf("leave metadata secret access holders of %s: %w", r.app.DevHub, err)
			}
			r.md.held = false
			return nil
		}
		prior := s.Prior
		if prior == nil {
			prior = r.mdPrior()
		}
		if prior == nil || *prior {
			if _, err := e.ledger.SaveSecretAccess(ctx, key, SecretAccessState{}, v); errors.Is(err, ErrConflict) {
				continue
			} else if err != nil {
				return fmt.Errorf("leave metadata secret access holders of %s: %w", r.app.DevHub, err)
			}
			r.md.held = false
			return nil
		}
		closer := r.holder(e.now())
		s.Closer = &closer
		cv, err := e.ledger.SaveSecretAccess(ctx, key, s, v)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("announce restore of metadata secret access of %s: %w", r.app.DevHub, err)
		}
		if err := e.mdClose(ctx, r, mi); err != nil {
			return err
		}
		if _, err := e.ledger.SaveSecretAccess(ctx, key, SecretAccessState{}, cv); err != nil && !errors.Is(err, ErrConflict) {
			r.log.Warn("clear metadata secret access holders after restore", zap.Error(err))
		}
		r.md.held = false
		return nil
	}
	return fmt.Errorf("leave metadata secret access holders of %s: %w", r.app.DevHub, ErrConflict)
}

// mdClose switches the setting off when it is on and audits the restore.
func (e *Engine) mdClose(ctx context.Context, r *run, mi MetadataIssuer) error {
	on, err := mi.MetadataSecretAccess(ctx)
	if err != nil {
		return fmt.Errorf("read metadata secret access setting: %w", err)
	}
	if !on && r.j.Extra[ExtraOp] == "close_md_secret_access" {
		return e.record(ctx, r, EventSecretAccessRestored, StepFinish, OutcomeOK, nil, withMD(map[string]string{"value": "false", "recovered": "true"}))
	}
	if !on {
		return nil
	}
	if err := e.mutate(ctx, r, "close_md_secret_access", func() error { return mi.SetMetadataSecretAccess(ctx, false) }); err != nil {
		return fmt.Errorf("restore metadata secret access: %w", err)
	}
	r.log.Info("metadata secret access restored")
	return e.record(ctx, r, EventSecretAccessRestored, StepFinish, OutcomeOK, nil, withMD(map[string]string{"value": "false"}))
}
