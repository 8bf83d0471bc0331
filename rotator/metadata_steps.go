package rotator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// The metadata strategy runs the same protocol as the staged one — lock →
// preflight → expose → stage → persist → rotate → verify → commit → finish
// — with the same journal, lease, audit and secret access rules; only the
// Salesforce side differs:
//
//	preflight  Vault's current version; in always_on mode both settings on
//	expose     open the REST setting (when the REST read may be used) and the
//	           Metadata setting "Allow access to OAuth consumer secrets via
//	           Metadata API" (toggle: prior values journaled, shared per Dev
//	           Hub, restored at the end and after crashes); then retrieve
//	           ExtlClntAppGlobalOauthSettings and check drift (key, and the
//	           secret when readable) against Vault
//	stage      journal "deploy in flight", deploy the retrieved component with
//	           shouldRotateConsumerSecret (and …Key with rotate_key) true,
//	           journal the deploy id, poll checkDeployStatus (bounded backoff)
//	rotate     the deploy is done: Salesforce now holds a new pair that nobody
//	           has read — the downtime window starts here
//	persist    read the new pair (REST part=keyandsecret and/or retrieve, per
//	           secret_read) and save it in the journal (I2)
//	commit     Vault write (CAS) — the window ends; previous_valid_until is
//	           the rotation time plus metadata_overlap (default 0)
//	verify     token requests with the new pair at every verify URL (after the
//	           commit when the old pair is already dead, so the window holds
//	           no call that is not needed; before it with an overlap)
//	finish     second deploy with both flags false when they persisted
//	           (journaled), settings restored, success audited
//
// Resume decides a deploy in flight by its id (checkDeployStatus) and, when
// the id was lost (crash or reset between the request and the journal
// write), by comparing the pair Salesforce holds with the journal's
// fingerprint of the old secret: changed means the deploy ran. Only a
// deploy that shows no effect within deploy_timeout is sent again, so a
// rotation never deploys twice while the first deploy could still apply.

// Journal Extra keys of the metadata strategy.
const (
	ExtraMDPhase         = "md_phase"               // "", deploying, deployed
	ExtraMDDeployID      = "md_deploy_id"           // async id of the rotating deploy
	ExtraMDDeployStarted = "md_deploy_started"      // when the rotating deploy was sent (RFC 3339)
	ExtraMDDeployedAt    = "md_deployed_at"         // when the deploy was seen done (RFC 3339): window start
	ExtraMDDeploys       = "md_deploys"             // rotating deploys sent by this rotation
	ExtraMDOldFP         = "md_old_fp"              // keyed fingerprint of the secret being replaced
	ExtraMDComponent     = "md_component"           // ExtlClntAppGlobalOauthSettings full name
	ExtraMDCommitted     = "md_committed"           // "1" once Vault holds the new pair
	ExtraMDVerified      = "md_verified"            // "1" once every verify URL accepted it
	ExtraMDClearID       = "md_clear_id"            // async id of the flag-clearing deploy
	ExtraMDCleared       = "md_cleared"             // "1" once both flags are false
	ExtraMDPrior         = "md_prior_secret_access" // prior value of the Metadata secret-access setting
)

// Metadata deploy phases.
const (
	mdDeploying = "deploying"
	mdDeployed  = "deployed"
)

// Events of the metadata strategy.
const (
	// EventMetadataDeploy: a rotating or flag-clearing deploy was accepted,
	// finished, failed, or found not applied (Details["result"]).
	EventMetadataDeploy EventType = "metadata.deploy"
	// EventDowntimeMeasured: the window from deploy done to Vault commit.
	EventDowntimeMeasured EventType = "metadata.downtime"
)

// Errors of the metadata strategy.
var (
	// ErrDeployFailed: Salesforce finished the deploy with errors (nothing
	// changed: rollbackOnError).
	ErrDeployFailed = errors.New("metadata deploy failed")
	// ErrDeployTimeout: the deploy did not finish within deploy_timeout.
	ErrDeployTimeout = errors.New("metadata deploy not finished in time")
	// ErrSecretUnreadable: neither the REST read nor a retrieve returned the
	// new consumer secret.
	ErrSecretUnreadable = errors.New("new consumer secret not readable (REST part=keyandsecret and Metadata retrieve)")
)

// mdRun is the per-call state of the metadata strategy.
type mdRun struct {
	mi       MetadataIssuer
	settings OAuthSettings
	restOK   bool // REST discovery (usage, consumers) worked this call
	held     bool // a holder of the Dev Hub's Metadata-setting opening
	// latest is the component as retrieved after the rotating deploy (when
	// the new pair was read by a retrieve): the flag-clearing deploy reuses
	// it instead of retrieving again.
	latest OAuthSettings
}

// metadataSteps runs the protocol with the metadata strategy.
func (e *Engine) metadataSteps(ctx context.Context, r *run) (Result, error) {
	mi, ok := r.iss.(MetadataIssuer)
	if !ok {
		return e.fail(ctx, r, StepPreflight, fmt.Errorf("strategy metadata: the issuer of dev hub %s has no Metadata API", r.app.DevHub))
	}
	r.md.mi = mi
	r.res.Strategy = StrategyMetadata
	if err := e.mdPreflight(ctx, r); err != nil {
		return e.fail(ctx, r, StepPreflight, err)
	}
	if r.jv == 0 || r.j.Step == StepLock {
		if err := e.begin(ctx, r); err != nil {
			return e.fail(ctx, r, StepPreflight, err)
		}
		r.setExtra(ExtraStrategy, string(StrategyMetadata))
		r.setExtra(ExtraStrategyWhy, r.strategy.Why)
		if err := e.save(ctx, r); err != nil {
			return e.fail(ctx, r, StepPreflight, err)
		}
	}
	if err := e.stepDone(ctx, r, StepPreflight); err != nil {
		return e.fail(ctx, r, StepPreflight, err)
	}
	for _, st := range []struct {
		s  Step
		fn func(context.Context, *run) error
	}{
		{StepExpose, e.mdExpose},
		{StepStage, e.mdRotate},
		{StepCommit, e.mdCommitAndVerify},
		{StepFinish, e.mdClearFlags},
		{StepFinish, e.mdFinish},
	} {
		if err := e.renew(ctx, r); err != nil {
			return e.fail(ctx, r, st.s, err)
		}
		if err := st.fn(ctx, r); err != nil {
			return e.fail(ctx, r, st.s, err)
		}
	}
	r.res.Outcome = OutcomeOK
	return r.res, nil
}

// mdPreflight only reads Vault (and, in always_on mode, the settings):
// every Salesforce read that may be gated waits until expose.
func (e *Engine) mdPreflight(ctx context.Context, r *run) error {
	stored, meta, err := e.readStore(ctx, r.app.VaultPath)
	if err != nil {
		return err
	}
	r.stored, r.meta = stored, meta
	managed := meta.Managed && !stored.Current.IsZero()
	if !managed && !r.adopt && r.jv == 0 {
		return fmt.Errorf("vault path %s: %w", r.app.VaultPath, ErrNotManaged)
	}
	r.primary = stored.Current.Key
	if r.app.SecretAccessMode != SecretAccessAlwaysOn {
		return nil
	}
	on, err := r.md.mi.MetadataSecretAccess(ctx)
	if err != nil {
		return fmt.Errorf("read metadata secret access setting: %w", err)
	}
	if !on {
		return fmt.Errorf("dev hub %s: Allow access to OAuth consumer secrets via Metadata API is off: %w", r.app.DevHub, ErrSecretAccessClosed)
	}
	if r.app.secretRead() == SecretReadREST {
		if on, err = r.iss.SecretAccess(ctx); err != nil {
			return fmt.Errorf("read secret access setting: %w", err)
		} else if !on {
			return fmt.Errorf("dev hub %s: %w", r.app.DevHub, ErrSecretAccessClosed)
		}
	}
	return nil
}

// mdExpose opens the settings the rotation needs, then reads Salesforce:
// the REST ids (when the REST read may be used) and the global OAuth
// settings, with the drift check.
func (e *Engine) mdExpose(ctx context.Context, r *run) error {
	if r.j.Extra[ExtraMDCleared] == "1" {
		return nil
	}
	if r.app.secretRead() != SecretReadMetadata {
		if err := e.openSecretAccess(ctx, r); err != nil {
			return err
		}
	}
	if err := e.mdOpen(ctx, r); err != nil {
		return err
	}
	r.advance(StepExpose, true)
	if err := e.save(ctx, r); err != nil {
		return err
	}
	if err := e.stepDone(ctx, r, StepExpose); err != nil {
		return err
	}
	return e.mdInspect(ctx, r)
}

// mdInspect resolves the REST ids and retrieves the component; before any
// deploy it checks that Salesforce holds Vault's pair (drift).
func (e *Engine) mdInspect(ctx context.Context, r *run) error {
	if r.app.secretRead() != SecretReadMetadata {
		err := e.mdResolveREST(ctx, r)
		if err != nil && r.app.secretRead() == SecretReadREST {
			return err
		}
		if err != nil {
			r.log.Warn("credentials REST read unavailable; the new pair will be read by a Metadata retrieve", zap.Error(err))
		}
	}
	s, err := r.md.mi.GlobalOAuth(ctx, r.app.ECA)
	if err != nil {
		return fmt.Errorf("retrieve global oauth settings of %s: %w", r.app.ECA, err)
	}
	r.md.settings = s
	e.saveCache(ctx, r)
	if r.j.Extra[ExtraMDPhase] != "" || r.j.Extra[ExtraMDCommitted] == "1" || !r.j.Pending.IsZero() {
		return nil // our own deploy may have changed the pair
	}
	managed := r.meta.Managed && !r.stored.Current.IsZero()
	if !managed {
		if err := e.mdAdopt(ctx, r); err != nil {
			return err
		}
	}
	// Read probe: the way the new secret will be read must return the
	// current one now. Otherwise a deploy would create a secret that exists
	// only in Salesforce (I1, I2), so nothing is deployed.
	var sfSecret Secret
	if r.app.secretRead() != SecretReadREST {
		sfSecret = s.Secret
	}
	var restErr error
	if sfSecret.IsZero() && r.md.restOK {
		c, err := r.iss.Credentials(ctx, r.appRef.ID, r.consumer.ID)
		switch {
		case err != nil:
			restErr = err
		case c.Key == s.Key:
			sfSecret = c.Secret
		}
	}
	if sfSecret.IsZero() {
		return fmt.Errorf("%w with secret_read %s: refusing to deploy a rotation whose secret could not be read back (rest: %v; retrieve carries consumerSecret: %v)",
			ErrSecretUnreadable, r.app.secretRead(), restErr, !s.Secret.IsZero())
	}
	if s.Key != r.stored.Current.Key || !sfSecret.Equal(r.stored.Current.Secret) {
		what := "secret"
		if s.Key != r.stored.Current.Key {
			what = "key"
		}
		details := map[string]string{"salesforce_key": s.Key, "vault_key": r.stored.Current.Key, "differs": what}
		r.log.Error("drift detected", zap.String("salesforce_key", s.Key), zap.String("vault_key", r.stored.Current.Key), zap.String("differs", what))
		if err := e.record(ctx, r, EventDriftDetected, StepPreflight, OutcomeDenied, nil, details); err != nil {
			return err
		}
		return fmt.Errorf("salesforce %s, vault %s (%s differs): %w", s.Key, r.stored.Current.Key, what, ErrDrift)
	}
	r.setExtra(ExtraOldKey, s.Key)
	r.setExtra(ExtraMDOldFP, e.o.Audit.Fingerprint(r.stored.Current.Secret))
	r.setExtra(ExtraMDComponent, s.FullName)
	return e.save(ctx, r)
}

// mdResolveREST finds the app id and consumer for the REST read.
func (e *Engine) mdResolveREST(ctx context.Context, r *run) error {
	ref, consumers, err := e.lookup(ctx, r) // the cached ids first (gate.go)
	if err != nil {
		return err
	}
	c, err := pickConsumer(r.app, consumers, r.stored.Current.Key, r.j.ConsumerID)
	if err != nil {
		return err
	}
	r.appRef, r.consumer, r.md.restOK = ref, c, true
	if r.j.AppID == "" && r.jv != 0 {
		r.j.AppID, r.j.ConsumerID = ref.ID, c.ID
	}
	return nil
}

// mdAdopt takes over a path without the managed-by marker: Salesforce's
// current pair becomes its managed version before anything is deployed.
func (e *Engine) mdAdopt(ctx context.Context, r *run) error {
	creds, err := e.mdReadPair(ctx, r)
	if err != nil {
		return fmt.Errorf("adopt: read current credentials: %w", err)
	}
	sc := StoredCredentials{Current: creds, TokenURL: r.app.TokenURL, RotationID: r.j.RotationID}
	var v int
	err = e.mutate(ctx, r, "adopt", func() error {
		var werr error
		v, werr = e.o.Store.WriteCredentials(ctx, r.app.VaultPath, sc, WriteOptions{CAS: r.meta.Version, RotationID: r.j.RotationID, Adopt: true, Lease: &r.lease})
		return werr
	})
	if err != nil {
		return fmt.Errorf("adopt: write %s: %w", r.app.VaultPath, err)
	}
	r.stored, r.meta.Version, r.meta.Managed = sc, v, true
	r.j.BaseVersion = v
	r.setExtra(ExtraOp, "")
	if err := e.save(ctx, r); err != nil {
		return err
	}
	ev := r.event(EventAppAdopted, StepPreflight, OutcomeOK, nil, map[string]string{"strategy": string(StrategyMetadata)})
	ev.ConsumerKey, ev.Fingerprint = creds.Key, e.o.Audit.Fingerprint(creds.Secret)
	return e.emit(ctx, r, ev)
}

// mdReadPair reads the consumer's current pair per secret_read: REST
// part=keyandsecret, a Metadata retrieve, or (auto) REST then retrieve.
func (e *Engine) mdReadPair(ctx context.Context, r *run) (Credentials, error) {
	c, _, err := e.mdReadPairWith(ctx, r)
	return c, err
}

// mdReadPairWith is mdReadPair that also returns the retrieved component
// when the pair came from a retrieve (zero otherwise).
func (e *Engine) mdReadPairWith(ctx context.Context, r *run) (Credentials, OAuthSettings, error) {
	var restErr error
	if r.app.secretRead() != SecretReadMetadata {
		if !r.md.restOK {
			restErr = e.mdResolveREST(ctx, r)
		}
		if restErr == nil {
			c, err := r.iss.Credentials(ctx, r.appRef.ID, r.consumer.ID)
			if err == nil && !c.Secret.IsZero() {
				return c, OAuthSettings{}, nil
			}
			restErr = err
			if err == nil {
				restErr = errors.New("REST read returned no secret")
			}
		}
		if r.app.secretRead() == SecretReadREST {
			return Credentials{}, OAuthSettings{}, fmt.Errorf("read credentials: %w", restErr)
		}
	}
	s, err := r.md.mi.GlobalOAuth(ctx, r.app.ECA)
	if err != nil {
		return Credentials{}, OAuthSettings{}, errors.Join(restErr, fmt.Errorf("retrieve global oauth settings: %w", err))
	}
	if s.Secret.IsZero() {
		return Credentials{}, OAuthSettings{}, fmt.Errorf("%w (rest: %v; retrieve of %s carries no consumerSecret)", ErrSecretUnreadable, restErr, s.FullName)
	}
	return Credentials{Key: s.Key, Secret: s.Secret}, s, nil
}

// changed reports whether c differs from the pair the rotation replaces.
func (e *Engine) mdChanged(r *run, c Credentials) bool {
	if c.Secret.IsZero() {
		return false
	}
	return e.o.Audit.Fingerprint(c.Secret) != r.j.Extra[ExtraMDOldFP] || (r.app.RotateKey && c.Key != r.j.Extra[ExtraOldKey])
}

func (r *run) extraTime(k string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, r.j.Extra[k])
	return t, err == nil
}

func (r *run) extraInt(k string) int {
	n, _ := strconv.Atoi(r.j.Extra[k])
	return n
}

// mdRotate is stage + rotate + persist: deploy with the rotate flag, wait
// for it, read the new pair and journal it.
func (e *Engine) mdRotate(ctx context.Context, r *run) error {
	if !r.j.Pending.IsZero() {
		return nil
	}
	for round := 0; round < 4; round++ {
		switch r.j.Extra[ExtraMDPhase] {
		case "":
			if n := r.extraInt(ExtraMDDeploys); n >= 2 {
				return fmt.Errorf("deploy: %d rotating deploys showed no effect: %w", n, ErrAmbiguous)
			}
			if err := e.mdDeploy(ctx, r); err != nil {
				return err
			}
		case mdDeploying:
			if id := r.j.Extra[ExtraMDDeployID]; id != "" {
				st, err := e.mdPoll(ctx, r, id)
				if err != nil {
					return err
				}
				if !st.Success {
					r.setExtra(ExtraMDPhase, "")
					r.setExtra(ExtraMDDeployID, "")
					if err := e.save(ctx, r); err != nil {
						return err
					}
					cause := fmt.Errorf("deploy %s %s: %v: %w", id, st.Status, st.Errors, ErrDeployFailed)
					if err := e.record(ctx, r, EventMetadataDeploy, StepStage, OutcomeFailed, cause, map[string]string{"deploy_id": id, "result": "failed"}); err != nil {
						return err
					}
					return cause
				}
				if err := e.record(ctx, r, EventMetadataDeploy, StepStage, OutcomeOK, nil, map[string]string{"deploy_id": id, "result": "succeeded"}); err != nil {
					return err
				}
				if err := e.mdDeployed(ctx, r); err != nil {
					return err
				}
				continue
			}
			ran, err := e.mdSettleLost(ctx, r)
			if err != nil {
				return err
			}
			if ran {
				if err := e.record(ctx, r, EventMetadataDeploy, StepStage, OutcomeOK, nil, map[string]string{"result": "applied (id lost)"}); err != nil {
					return err
				}
				if err := e.mdDeployed(ctx, r); err != nil {
					return err
				}
				continue
			}
			r.log.Warn("deploy without a known id showed no effect within the deploy timeout; it never ran")
			r.setExtra(ExtraMDPhase, "")
			if err := e.save(ctx, r); err != nil {
				return err
			}
			if err := e.record(ctx, r, EventMetadataDeploy, StepStage, OutcomeSkipped, nil, map[string]string{"result": "not applied"}); err != nil {
				return err
			}
		case mdDeployed:
			pair, latest, err := e.mdReadPairWith(ctx, r)
			if err != nil {
				return fmt.Errorf("read the new pair: %w", err)
			}
			r.md.latest = latest
			if !e.mdChanged(r, pair) {
				return fmt.Errorf("%w: the deploy succeeded but Salesforce still returns the old pair", ErrVerifyFailed)
			}
			r.j.Pending = pair
			r.setExtra(ExtraOp, "")
			r.advance(StepPersist, true)
			if err := e.save(ctx, r); err != nil {
				return err
			}
			r.res.ConsumerKey = pair.Key
			r.log = r.log.With(zap.String("new_key", pair.Key))
			if err := e.stepDone(ctx, r, StepStage); err != nil {
				return err
			}
			return e.stepDone(ctx, r, StepPersist)
		default:
			return fmt.Errorf("journal: unknown metadata phase %q", r.j.Extra[ExtraMDPhase])
		}
	}
	return fmt.Errorf("deploy: no settled outcome: %w", ErrAmbiguous)
}

// mdDeploy sends the rotating deploy. The journal says "deploy in flight"
// before the request and holds the id after it.
func (e *Engine) mdDeploy(ctx context.Context, r *run) error {
	s := r.md.settings
	if s.FullName == "" {
		return errors.New("deploy: no retrieved component")
	}
	r.advance(StepStage, false)
	r.setExtra(ExtraMDPhase, mdDeploying)
	r.setExtra(ExtraMDDeployID, "")
	r.setExtra(ExtraMDDeployStarted, e.now().UTC().Format(time.RFC3339Nano))
	r.setExtra(ExtraMDDeploys, strconv.Itoa(r.extraInt(ExtraMDDeploys)+1))
	var id string
	err := e.mutate(ctx, r, "deploy", func() error {
		var derr error
		id, derr = r.md.mi.Deploy(ctx, s, r.app.RotateKey, true)
		return derr
	})
	switch {
	case err == nil:
		r.setExtra(ExtraMDDeployID, id)
		r.setExtra(ExtraOp, "")
		if err := e.save(ctx, r); err != nil {
			return err
		}
		r.log.Info("rotating deploy accepted", zap.String("deploy_id", id), zap.String("component", s.FullName), zap.Bool("rotate_key", r.app.RotateKey))
		return e.record(ctx, r, EventMetadataDeploy, StepStage, OutcomeOK, nil, map[string]string{"deploy_id": id, "result": "accepted", "component": s.FullName, "rotate_key": strconv.FormatBool(r.app.RotateKey)})
	case isAbort(err) || errors.Is(err, ErrFenced):
		return err
	case errors.Is(err, ErrAmbiguous):
		// Accepted or not: the pair Salesforce holds will tell.
		r.log.Warn("deploy outcome unknown; settling by re-reading the pair", zap.Error(err))
		return e.save(ctx, r)
	default:
		// Salesforce answered no: nothing was queued.
		r.setExtra(ExtraMDPhase, "")
		r.setExtra(ExtraMDDeploys, strconv.Itoa(r.extraInt(ExtraMDDeploys)-1))
		r.setExtra(ExtraOp, "")
		if serr := e.save(ctx, r); serr != nil {
			return serr
		}
		return fmt.Errorf("deploy %s: %w", s.FullName, err)
	}
}

// mdDeployed records that Salesforce rotated: the window starts.
func (e *Engine) mdDeployed(ctx context.Context, r *run) error {
	r.setExtra(ExtraMDPhase, mdDeployed)
	if _, ok := r.extraTime(ExtraMDDeployedAt); !ok {
		r.setExtra(ExtraMDDeployedAt, e.now().UTC().Format(time.RFC3339Nano))
	}
	if r.j.Extra[ExtraRotatedAt] == "" {
		r.setExtra(ExtraRotatedAt, r.j.Extra[ExtraMDDeployedAt])
	}
	r.setExtra(ExtraOp, "")
	r.advance(StepRotate, true)
	if err := e.save(ctx, r); err != nil {
		return err
	}
	r.log.Info("deploy done: the consumer is rotated in Salesforce; downtime window open")
	return e.stepDone(ctx, r, StepRotate)
}

// mdPoll polls checkDeployStatus until done, with the engine's backoff,
// bounded by deploy_timeout from when the deploy was sent.
func (e *Engine) mdPoll(ctx context.Context, r *run, id string) (DeployStatus, error) {
	start, ok := r.extraTime(ExtraMDDeployStarted)
	if !ok {
		start = e.now()
	}
	limit := r.app.deployTimeout()
	for attempt := 1; ; attempt++ {
		st, err := r.md.mi.DeployStatus(ctx, id)
		if herr := e.hook("poll:deploy"); herr != nil {
			return DeployStatus{}, herr
		}
		switch {
		case err == nil && st.Done:
			return st, nil
		case err != nil && !errors.Is(err, ErrUnreachable):
			return DeployStatus{}, fmt.Errorf("check deploy %s: %w", id, err)
		}
		left := limit - e.now().Sub(start)
		if left <= 0 {
			return DeployStatus{}, fmt.Errorf("deploy %s still %s after %s: %w", id, st.Status, limit, ErrDeployTimeout)
		}
		if err := e.sleep(ctx, r, min(MetadataPollWait(attempt), left)); err != nil {
			return DeployStatus{}, err
		}
	}
}

// mdSettleLost decides a deploy whose id is unknown: it ran when the pair
// Salesforce holds differs from the journal's old pair. Without a change it
// re-reads (backoff) until deploy_timeout after the deploy was sent.
func (e *Engine) mdSettleLost(ctx context.Context, r *run) (bool, error) {
	start, ok := r.extraTime(ExtraMDDeployStarted)
	if !ok {
		start = e.now()
	}
	limit := r.app.deployTimeout()
	for attempt := 1; ; attempt++ {
		pair, err := e.mdReadPair(ctx, r)
		if err == nil && e.mdChanged(r, pair) {
			return true, nil
		}
		if err != nil && !errors.Is(err, ErrUnreachable) {
			return false, fmt.Errorf("settle deploy without id: %w", err)
		}
		left := limit - e.now().Sub(start)
		if left <= 0 {
			return false, nil
		}
		if err := e.sleep(ctx, r, min(MetadataPollWait(attempt), left)); err != nil {
			return false, err
		}
	}
}

// mdCommitAndVerify commits and verifies, in the order that keeps the
// downtime window short: when the old pair is already dead (no overlap)
// the commit comes first, since Vault's old pair is useless anyway (I1 is
// better served at once); with an overlap the new pair is proven first.
func (e *Engine) mdCommitAndVerify(ctx context.Context, r *run) error {
	if r.app.MetadataOverlap > 0 {
		if err := e.mdVerify(ctx, r); err != nil {
			return err
		}
		return e.mdCommit(ctx, r)
	}
	if err := e.mdCommit(ctx, r); err != nil {
		return err
	}
	return e.mdVerify(ctx, r)
}

func (e *Engine) mdCommit(ctx context.Context, r *run) error {
	if r.j.Extra[ExtraMDCommitted] == "1" {
		return nil
	}
	stored, meta, err := e.readStore(ctx, r.app.VaultPath)
	if err != nil {
		return err
	}
	oldKey, oldFP := r.j.Extra[ExtraOldKey], r.j.Extra[ExtraMDOldFP]
	isOld := meta.Managed && stored.Current.Key == oldKey && e.o.Audit.Fingerprint(stored.Current.Secret) == oldFP
	if !(stored.Current.Key == r.j.Pending.Key && stored.RotationID == r.j.RotationID && stored.Current.Secret.Equal(r.j.Pending.Secret)) {
		if meta.Version != r.j.BaseVersion && !isOld {
			return fmt.Errorf("vault path %s moved from version %d to %d: %w", r.app.VaultPath, r.j.BaseVersion, meta.Version, ErrConflict)
		}
		rotatedAt := e.rotatedAt(r)
		sc := StoredCredentials{Current: r.j.Pending, TokenURL: r.app.TokenURL, RotatedAt: rotatedAt, RotationID: r.j.RotationID}
		if isOld && r.app.Overlap.Policy != OverlapImmediate {
			// Salesforce "replaces" the secret: the old pair is assumed
			// dead at the rotation time unless metadata_overlap says
			// otherwise.
			sc.Previous = stored.Current
			sc.PreviousValidUntil = rotatedAt.Add(r.app.MetadataOverlap)
		}
		r.advance(StepCommit, false)
		v, err := e.writePending(ctx, r, sc, meta.Version)
		if err != nil {
			return err
		}
		meta.Version = v
	}
	r.meta = meta
	r.res.VaultVersion = meta.Version
	r.setExtra(ExtraOp, "")
	r.setExtra(ExtraMDCommitted, "1")
	r.advance(StepCommit, true)
	if err := e.save(ctx, r); err != nil {
		return err
	}
	if err := e.stepDone(ctx, r, StepCommit); err != nil {
		return err
	}
	return e.mdDowntime(ctx, r)
}

// mdDowntime measures, logs and audits the window from deploy done to the
// Vault commit; Result.Downtime carries it to the metrics.
func (e *Engine) mdDowntime(ctx context.Context, r *run) error {
	from, ok := r.extraTime(ExtraMDDeployedAt)
	if !ok {
		return nil
	}
	d := max(e.now().Sub(from), 0)
	r.res.Downtime = d
	r.log.Info("downtime window closed: the new pair is in Vault", zap.Duration("downtime", d), zap.Duration("metadata_overlap", r.app.MetadataOverlap))
	return e.record(ctx, r, EventDowntimeMeasured, StepCommit, OutcomeOK, nil, map[string]string{
		"downtime_ms": strconv.FormatInt(d.Milliseconds(), 10), "deploy_id": r.j.Extra[ExtraMDDeployID],
		"metadata_overlap": r.app.MetadataOverlap.String(),
	})
}

func (e *Engine) mdVerify(ctx context.Context, r *run) error {
	if r.j.Extra[ExtraMDVerified] == "1" {
		return nil
	}
	for _, u := range r.app.VerifyURLs {
		if err := e.verifyURL(ctx, r, u); err != nil {
			return err
		}
	}
	r.setExtra(ExtraMDVerified, "1")
	r.advance(StepVerify, true)
	if err := e.save(ctx, r); err != nil {
		return err
	}
	return e.stepDone(ctx, r, StepVerify)
}

// mdClearFlags leaves the component with both rotate flags false: the
// flags persist, and a later deploy still carrying true would rotate again.
// The clearing deploy is journaled like any mutation; deploying false
// flags twice is harmless, so an unknown outcome is settled by a retrieve.
func (e *Engine) mdClearFlags(ctx context.Context, r *run) error {
	if r.j.Extra[ExtraMDCleared] == "1" {
		return nil
	}
	if id := r.j.Extra[ExtraMDClearID]; id != "" {
		st, err := e.mdPoll(ctx, r, id)
		if err != nil {
			return err
		}
		r.setExtra(ExtraMDClearID, "")
		if err := e.save(ctx, r); err != nil {
			return err
		}
		if !st.Success {
			return fmt.Errorf("clear rotate flags: deploy %s %s: %v: %w", id, st.Status, st.Errors, ErrDeployFailed)
		}
	}
	s := r.md.latest
	if s.FullName == "" {
		var err error
		if s, err = r.md.mi.GlobalOAuth(ctx, r.app.ECA); err != nil {
			return fmt.Errorf("retrieve global oauth settings of %s: %w", r.app.ECA, err)
		}
	}
	if s.RotateKey || s.RotateSecret {
		r.setExtra(ExtraMDDeployStarted, e.now().UTC().Format(time.RFC3339Nano))
		var id string
		err := e.mutate(ctx, r, "clear_flags", func() error {
			var derr error
			id, derr = r.md.mi.Deploy(ctx, s, false, false)
			return derr
		})
		if err != nil {
			if isAbort(err) || errors.Is(err, ErrFenced) {
				return err
			}
			return fmt.Errorf("clear rotate flags: %w", err)
		}
		r.setExtra(ExtraMDClearID, id)
		r.setExtra(ExtraOp, "")
		if err := e.save(ctx, r); err != nil {
			return err
		}
		st, err := e.mdPoll(ctx, r, id)
		if err != nil {
			return err
		}
		if !st.Success {
			return fmt.Errorf("clear rotate flags: deploy %s %s: %v: %w", id, st.Status, st.Errors, ErrDeployFailed)
		}
		if err := e.record(ctx, r, EventMetadataDeploy, StepFinish, OutcomeOK, nil, map[string]string{"deploy_id": id, "result": "flags cleared"}); err != nil {
			return err
		}
	}
	r.setExtra(ExtraMDClearID, "")
	r.setExtra(ExtraMDCleared, "1")
	return e.save(ctx, r)
}

// mdFinish restores the Metadata setting, then finishes like the staged
// strategy (REST setting, success event, journal cleared, lease released).
func (e *Engine) mdFinish(ctx context.Context, r *run) error {
	r.advance(StepFinish, false)
	if err := e.restoreMetadataSecretAccess(ctx, r); err != nil {
		return err
	}
	return e.finish(ctx, r)
}

// MetadataPollWait is the wait after the attempt-th checkDeployStatus (or
// settling re-read): 250ms doubling to 10s. Deploys of one component take
// seconds, so the engine's attempt backoff (minutes) would only stretch the
// downtime window.
func MetadataPollWait(attempt int) time.Duration {
	_, d := Backoff{Base: 250 * time.Millisecond, Max: 10 * time.Second, Attempts: Forever}.NextAttempt(attempt)
	return d
}
