package rotatortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// Issuer operations, as recorded in Calls and used by FailNext.
const (
	OpFindApp      = "FindApp"
	OpConsumers    = "Consumers"
	OpCredentials  = "Credentials"
	OpPrimaryKey   = "PrimaryKey"
	OpStaged       = "Staged"
	OpStage        = "Stage"
	OpPromote      = "Promote"
	OpDeleteStaged = "DeleteStaged"
	OpSecretAccess = "SecretAccess"
	OpSetAccess    = "SetSecretAccess"
)

// Fault is an injected failure of one issuer call. With Apply the call's
// effect happens and Err is still returned (a response lost after the
// server acted); without it nothing happens.
type Fault struct {
	Err   error
	Apply bool
}

// Org is a fake Dev Hub implementing rotator.Issuer with the staged
// credential state model of salesforce-eca-api.md §3.7: one primary pair
// and one staged slot per consumer; POST fills the slot (Active, 30 days);
// PATCH rotate swaps it with the primary, which stays valid in the slot as
// Rotated until deleted or 30 days later; every staged route and the
// secret read need the secret-access setting on.
type Org struct {
	Clock rotator.Clock
	// StagedGetReturnsSecret: GET staged returns the Active entry's secret
	// (when false, only the POST response carries it).
	StagedGetReturnsSecret bool
	// PropagationDelay: a newly promoted pair authenticates only this long
	// after the promotion.
	PropagationDelay time.Duration
	// GateReads: FindApp, Consumers and PrimaryKey are refused
	// (ErrPermission) while the secret-access setting is off.
	GateReads bool
	// WithholdCredentials / WithholdStaged: after the setting is switched
	// on, the next n Credentials answers are refused as masked
	// (ErrPermission), and the next n Stage/Staged answers carry no
	// secret: a setting that applies late.
	WithholdCredentials, WithholdStaged int
	withheldCreds, withheldStaged       int
	// SettingDelay: a setting switched on applies this long later (on
	// Clock); until then Credentials is refused as masked (ErrPermission).
	SettingDelay time.Duration
	appliesAt    time.Time
	// PromoteOmitsRotated: Promote answers without the Rotated entry (the
	// PATCH response's shape is unconfirmed), so the engine must list the
	// slot to learn its id and expiration.
	PromoteOmitsRotated bool
	// BeforeMutation, when set, is called (without the Org's lock) before
	// every mutating call; tests check invariants there.
	BeforeMutation func(op string)

	mu           sync.Mutex
	secretAccess bool
	apps         map[string]*ecaApp // by developer name
	seq          int
	calls        []string
	stageOK      int
	issued       []rotator.Credentials
	faults       map[string][]Fault
}

type ecaApp struct {
	ref       rotator.AppRef
	consumers []*consumerState
}

type consumerState struct {
	c       rotator.Consumer
	primary rotator.Credentials
	from    time.Time // primary authenticates from this time on
	slot    *rotator.StagedCredential
}

var _ rotator.Issuer = (*Org)(nil)

// NewOrg returns an empty Dev Hub with the secret-access setting as given.
func NewOrg(c rotator.Clock, secretAccess bool) *Org {
	return &Org{Clock: c, StagedGetReturnsSecret: true, secretAccess: secretAccess, apps: map[string]*ecaApp{}, faults: map[string][]Fault{}}
}

// AddECA creates an ECA with n consumers and returns the app id and the
// consumers' initial pairs (consumer i has id "888C<i>").
func (o *Org) AddECA(devName string, n int) (string, []rotator.Consumer, []rotator.Credentials) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	a := &ecaApp{ref: rotator.AppRef{ID: fmt.Sprintf("0xI%04d", o.seq), DeveloperName: devName, Label: devName}}
	var cs []rotator.Consumer
	var pairs []rotator.Credentials
	for i := range n {
		pair := o.newPairLocked()
		st := &consumerState{c: rotator.Consumer{ID: fmt.Sprintf("888C%d%04d", i, o.seq), Key: pair.Key, Name: fmt.Sprintf("%s consumer %d", devName, i)}, primary: pair}
		a.consumers = append(a.consumers, st)
		cs = append(cs, st.c)
		pairs = append(pairs, pair)
	}
	o.apps[devName] = a
	return a.ref.ID, cs, pairs
}

func (o *Org) newPairLocked() rotator.Credentials {
	o.seq++
	var b [8]byte
	_, _ = rand.Read(b[:])
	return rotator.Credentials{
		Key:    fmt.Sprintf("3MVG9fake%04d", o.seq),
		Secret: rotator.NewSecret(fmt.Sprintf("SECRET-%04d-%s", o.seq, hex.EncodeToString(b[:]))),
	}
}

// FailNext queues faults for the next calls of op.
func (o *Org) FailNext(op string, f ...Fault) {
	o.mu.Lock()
	o.faults[op] = append(o.faults[op], f...)
	o.mu.Unlock()
}

// enter records a call and pops its fault.
func (o *Org) enter(op string) (Fault, bool) {
	o.calls = append(o.calls, op)
	q := o.faults[op]
	if len(q) == 0 {
		return Fault{}, false
	}
	o.faults[op] = q[1:]
	return q[0], true
}

func (o *Org) before(op string) {
	if o.BeforeMutation != nil {
		o.BeforeMutation(op)
	}
}

func (o *Org) consumerLocked(appID, consumerID string) (*consumerState, error) {
	for _, a := range o.apps {
		if a.ref.ID != appID {
			continue
		}
		for _, c := range a.consumers {
			if c.c.ID == consumerID {
				o.lapseLocked(c)
				return c, nil
			}
		}
	}
	return nil, fmt.Errorf("fake org: consumer %s/%s: %w", appID, consumerID, rotator.ErrNotFound)
}

// lapseLocked drops a staged entry past its expiration (30 days).
func (o *Org) lapseLocked(c *consumerState) {
	if c.slot != nil && !c.slot.Expires.IsZero() && !o.Clock.Now().Before(c.slot.Expires) {
		c.slot = nil
	}
}

func (o *Org) readGateLocked() error {
	if o.GateReads {
		return o.gateLocked()
	}
	return nil
}

func (o *Org) gateLocked() error {
	if !o.secretAccess {
		return fmt.Errorf("fake org: secret access via REST API is not enabled: %w", rotator.ErrPermission)
	}
	return nil
}

// FindApp implements rotator.Issuer.
func (o *Org) FindApp(_ context.Context, devName string) (rotator.AppRef, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f, ok := o.enter(OpFindApp); ok {
		return rotator.AppRef{}, f.Err
	}
	if err := o.readGateLocked(); err != nil {
		return rotator.AppRef{}, err
	}
	a, ok := o.apps[devName]
	if !ok {
		return rotator.AppRef{}, fmt.Errorf("fake org: eca %s: %w", devName, rotator.ErrNotFound)
	}
	return a.ref, nil
}

// Consumers implements rotator.Issuer.
func (o *Org) Consumers(_ context.Context, appID string) ([]rotator.Consumer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f, ok := o.enter(OpConsumers); ok {
		return nil, f.Err
	}
	if err := o.readGateLocked(); err != nil {
		return nil, err
	}
	for _, a := range o.apps {
		if a.ref.ID == appID {
			out := make([]rotator.Consumer, 0, len(a.consumers))
			for _, c := range a.consumers {
				cc := c.c
				cc.Key = c.primary.Key
				out = append(out, cc)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("fake org: app %s: %w", appID, rotator.ErrNotFound)
}

// Credentials implements rotator.Issuer (part=keyandsecret).
func (o *Org) Credentials(_ context.Context, appID, consumerID string) (rotator.Credentials, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f, ok := o.enter(OpCredentials); ok {
		return rotator.Credentials{}, f.Err
	}
	if err := o.gateLocked(); err != nil {
		return rotator.Credentials{}, err
	}
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil {
		return rotator.Credentials{}, err
	}
	if o.withheldCreds > 0 || o.Clock.Now().Before(o.appliesAt) {
		if o.withheldCreds > 0 {
			o.withheldCreds--
		}
		return rotator.Credentials{Key: c.primary.Key}, fmt.Errorf("fake org: SECRET_NOT_RETURNED: %w", rotator.ErrPermission)
	}
	return c.primary, nil
}

// PrimaryKey implements rotator.Issuer (part=key, not gated).
func (o *Org) PrimaryKey(_ context.Context, appID, consumerID string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f, ok := o.enter(OpPrimaryKey); ok {
		return "", f.Err
	}
	if err := o.readGateLocked(); err != nil {
		return "", err
	}
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil {
		return "", err
	}
	return c.primary.Key, nil
}

// Staged implements rotator.Issuer.
func (o *Org) Staged(_ context.Context, appID, consumerID string) ([]rotator.StagedCredential, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f, ok := o.enter(OpStaged); ok {
		return nil, f.Err
	}
	if err := o.gateLocked(); err != nil {
		return nil, err
	}
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil {
		return nil, err
	}
	if c.slot == nil {
		return []rotator.StagedCredential{}, nil
	}
	sc := *c.slot
	if o.withheldStaged > 0 {
		o.withheldStaged--
		sc.Secret = rotator.Secret{}
	} else if !o.StagedGetReturnsSecret {
		sc.Secret = rotator.Secret{}
	} else if sc.Status == rotator.StagedActive {
		o.issued = append(o.issued, rotator.Credentials{Key: sc.Key, Secret: sc.Secret})
	}
	return []rotator.StagedCredential{sc}, nil
}

// Stage implements rotator.Issuer (POST staged).
func (o *Org) Stage(_ context.Context, appID, consumerID string) (rotator.StagedCredential, error) {
	o.before(OpStage)
	o.mu.Lock()
	defer o.mu.Unlock()
	f, faulty := o.enter(OpStage)
	if faulty && !f.Apply {
		return rotator.StagedCredential{}, f.Err
	}
	if err := o.gateLocked(); err != nil {
		return rotator.StagedCredential{}, err
	}
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil {
		return rotator.StagedCredential{}, err
	}
	if c.slot != nil {
		return rotator.StagedCredential{}, fmt.Errorf("fake org: %w", rotator.ErrSlotOccupied)
	}
	pair := o.newPairLocked()
	now := o.Clock.Now()
	sc := rotator.StagedCredential{ID: fmt.Sprintf("0Xs%06d", o.seq), Status: rotator.StagedActive, Key: pair.Key, Secret: pair.Secret,
		Created: now, Expires: now.Add(rotator.SalesforceOverlap)}
	c.slot = &sc
	if faulty {
		return rotator.StagedCredential{}, f.Err
	}
	o.stageOK++
	if o.withheldStaged > 0 {
		// The setting has not applied: created, answered without secret.
		o.withheldStaged--
		out := sc
		out.Secret = rotator.Secret{}
		return out, nil
	}
	o.issued = append(o.issued, pair)
	return sc, nil
}

// Promote implements rotator.Issuer (PATCH {"command":"rotate"}).
func (o *Org) Promote(_ context.Context, appID, consumerID, stagedID string) (rotator.StagedCredential, error) {
	o.before(OpPromote)
	o.mu.Lock()
	defer o.mu.Unlock()
	f, faulty := o.enter(OpPromote)
	if faulty && !f.Apply {
		return rotator.StagedCredential{}, f.Err
	}
	if err := o.gateLocked(); err != nil {
		return rotator.StagedCredential{}, err
	}
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil {
		return rotator.StagedCredential{}, err
	}
	if c.slot == nil || c.slot.ID != stagedID || c.slot.Status != rotator.StagedActive {
		return rotator.StagedCredential{}, fmt.Errorf("fake org: staged %s: %w", stagedID, rotator.ErrNotFound)
	}
	now := o.Clock.Now()
	o.seq++
	prev := c.primary
	c.primary = rotator.Credentials{Key: c.slot.Key, Secret: c.slot.Secret}
	c.from = now.Add(o.PropagationDelay)
	// The Rotated entry gets a new id (salesforce-eca-api.md §3.7: assume a
	// new/unknown id) and a fresh 30-day expiration.
	c.slot = &rotator.StagedCredential{ID: fmt.Sprintf("0Xs%06d", o.seq), Status: rotator.StagedRotated, Key: prev.Key, Secret: prev.Secret,
		Created: now, Expires: now.Add(rotator.SalesforceOverlap)}
	if faulty {
		return rotator.StagedCredential{}, f.Err
	}
	if o.PromoteOmitsRotated {
		return rotator.StagedCredential{}, nil
	}
	out := *c.slot
	out.Secret = rotator.Secret{}
	return out, nil
}

// DeleteStaged implements rotator.Issuer.
func (o *Org) DeleteStaged(_ context.Context, appID, consumerID, stagedID string) error {
	o.before(OpDeleteStaged)
	o.mu.Lock()
	defer o.mu.Unlock()
	f, faulty := o.enter(OpDeleteStaged)
	if faulty && !f.Apply {
		return f.Err
	}
	if err := o.gateLocked(); err != nil {
		return err
	}
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil {
		return err
	}
	if c.slot == nil || c.slot.ID != stagedID {
		return fmt.Errorf("fake org: staged %s: %w", stagedID, rotator.ErrNotFound)
	}
	c.slot = nil
	if faulty {
		return f.Err
	}
	return nil
}

// SecretAccess implements rotator.Issuer.
func (o *Org) SecretAccess(context.Context) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f, ok := o.enter(OpSecretAccess); ok {
		return false, f.Err
	}
	return o.secretAccess, nil
}

// SetSecretAccess implements rotator.Issuer.
func (o *Org) SetSecretAccess(_ context.Context, on bool) error {
	o.before(OpSetAccess)
	o.mu.Lock()
	defer o.mu.Unlock()
	f, faulty := o.enter(OpSetAccess)
	if faulty && !f.Apply {
		return f.Err
	}
	if on && !o.secretAccess {
		o.withheldCreds, o.withheldStaged = o.WithholdCredentials, o.WithholdStaged
		o.appliesAt = o.Clock.Now().Add(o.SettingDelay)
	}
	o.secretAccess = on
	if faulty {
		return f.Err
	}
	return nil
}

// Usage implements rotator.Issuer.
func (o *Org) Usage() (rotator.APIUsage, bool) { return rotator.APIUsage{}, false }

// --- test inspection and setup ---

// Access returns the secret-access setting.
func (o *Org) Access() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.secretAccess
}

// SetAccess changes the setting without recording a call.
func (o *Org) SetAccess(on bool) {
	o.mu.Lock()
	o.secretAccess = on
	o.mu.Unlock()
}

// Primary returns a consumer's primary pair.
func (o *Org) Primary(appID, consumerID string) rotator.Credentials {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil {
		return rotator.Credentials{}
	}
	return c.primary
}

// Slot returns a consumer's staged slot entry, if any.
func (o *Org) Slot(appID, consumerID string) (rotator.StagedCredential, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil || c.slot == nil {
		return rotator.StagedCredential{}, false
	}
	return *c.slot, true
}

// StageOutside stages a credential as someone else would (no call
// recorded, no fault applied).
func (o *Org) StageOutside(appID, consumerID string) rotator.StagedCredential {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, err := o.consumerLocked(appID, consumerID)
	if err != nil {
		panic(err)
	}
	pair := o.newPairLocked()
	now := o.Clock.Now()
	c.slot = &rotator.StagedCredential{ID: fmt.Sprintf("0Xs%06d", o.seq), Status: rotator.StagedActive, Key: pair.Key, Secret: pair.Secret, Created: now, Expires: now.Add(rotator.SalesforceOverlap)}
	return *c.slot
}

// RotateOutside promotes a fresh pair as someone else would, leaving the
// old one Rotated (drift from Vault's point of view).
func (o *Org) RotateOutside(appID, consumerID string) rotator.Credentials {
	sc := o.StageOutside(appID, consumerID)
	o.mu.Lock()
	defer o.mu.Unlock()
	c, _ := o.consumerLocked(appID, consumerID)
	prev := c.primary
	c.primary = rotator.Credentials{Key: sc.Key, Secret: sc.Secret}
	c.slot = &rotator.StagedCredential{ID: sc.ID + "R", Status: rotator.StagedRotated, Key: prev.Key, Secret: prev.Secret, Created: o.Clock.Now(), Expires: o.Clock.Now().Add(rotator.SalesforceOverlap)}
	return c.primary
}

// Accepts reports whether a client-credentials request with c would
// succeed: c is a primary pair past its propagation delay, or a Rotated
// pair still in its slot.
func (o *Org) Accepts(c rotator.Credentials) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.Clock.Now()
	for _, a := range o.apps {
		for _, cs := range a.consumers {
			o.lapseLocked(cs)
			if cs.primary.Key == c.Key && cs.primary.Secret.Equal(c.Secret) && !now.Before(cs.from) {
				return true
			}
			if cs.slot != nil && cs.slot.Status == rotator.StagedRotated && cs.slot.Key == c.Key && cs.slot.Secret.Equal(c.Secret) {
				return true
			}
		}
	}
	return false
}

// Calls returns the recorded call names in order.
func (o *Org) Calls() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.calls...)
}

// Count returns how many times op was called.
func (o *Org) Count(op string) int {
	n := 0
	for _, c := range o.Calls() {
		if c == op {
			n++
		}
	}
	return n
}

// Mutations counts calls that change state.
func (o *Org) Mutations() int {
	return o.Count(OpStage) + o.Count(OpPromote) + o.Count(OpDeleteStaged) + o.Count(OpSetAccess)
}

// StageOK counts POSTs that succeeded and returned their pair.
func (o *Org) StageOK() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stageOK
}

// LiveIssued returns the pairs the Org handed out (POST responses, GET
// staged with secret) that still authenticate or may yet (primary or in the
// slot).
func (o *Org) LiveIssued() []rotator.Credentials {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []rotator.Credentials
	for _, p := range o.issued {
		for _, a := range o.apps {
			for _, cs := range a.consumers {
				if cs.primary.Key == p.Key || (cs.slot != nil && cs.slot.Key == p.Key) {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// Issued returns every pair the Org handed out.
func (o *Org) Issued() []rotator.Credentials {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]rotator.Credentials(nil), o.issued...)
}

// RenumberApp gives the ECA devName a new app id (as if it had been
// recreated), so that a cached id no longer matches.
func (o *Org) RenumberApp(devName, id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if a, ok := o.apps[devName]; ok {
		a.ref.ID = id
	}
}
