package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ReasonRefused marks a Plan whose app the engine refuses outright (its own
// ECA). It is not part of PlanChain: it comes from the guards.
const ReasonRefused Reason = "Refused"

// PlanResult is what `ecarotator plan` shows for one app: the policy
// decision and the preflight facts, gathered without changing anything.
type PlanResult struct {
	App      string
	Now      time.Time
	Decision Decision
	// WouldRotate is Decision.Rotate with no preflight problem.
	WouldRotate bool

	DevHubOK    bool
	DevHubError string
	// ReadsGated: Salesforce refused the reads while the secret-access
	// setting is off; in toggle mode the rotation opens it first (a plan
	// never does), so the Salesforce facts below stay empty.
	ReadsGated bool
	AppID      string
	ConsumerID string
	PrimaryKey string

	SecretAccessMode SecretAccessMode
	SecretAccess     *bool // nil when it could not be read
	SecretAccessOK   bool  // toggle mode, or always_on and on
	StagedReadable   bool  // the staged slot can be read only while secret access is on
	Staged           []StagedSummary
	ForeignStaged    bool

	VaultVersion       int
	VaultKey           string
	Managed            bool
	NeedsAdopt         bool
	RotatedAt          time.Time
	PreviousKey        string
	PreviousValidUntil time.Time
	Drift              bool

	Journal  *JournalSummary
	Problems []string

	// Strategy is how the app would rotate and why (metadata_plan.go).
	Strategy StrategyChoice
	// MetadataSecretAccess is "Allow access to OAuth consumer secrets via
	// Metadata API" (metadata strategy; nil when not read).
	MetadataSecretAccess *bool
}

// StagedSummary is a staged slot entry without its secret.
type StagedSummary struct {
	ID      string
	Status  StagedStatus
	Key     string
	Expires time.Time
}

// JournalSummary is an in-flight rotation without its pending secret.
type JournalSummary struct {
	RotationID    string
	Step          Step
	Done          bool
	Attempts      int
	LastError     string
	NextAttemptAt time.Time
	Orphaned      bool
	OrphanReason  string
}

// Plan decides whether app would rotate at now and runs a read-only
// preflight: it takes no lease, writes no journal, opens nothing. Problems
// it finds are reported in the result; the error is only for an invalid app.
func (e *Engine) Plan(ctx context.Context, app App, now time.Time) (PlanResult, error) {
	p := PlanResult{App: app.Name, Now: now, SecretAccessMode: app.SecretAccessMode}
	if err := app.Validate(); err != nil {
		return p, err
	}
	iss, ok := e.o.Issuers[app.DevHub]
	if !ok {
		return p, fmt.Errorf("rotator: app %s: no issuer for dev hub %q", app.Name, app.DevHub)
	}
	problem := func(format string, a ...any) { p.Problems = append(p.Problems, fmt.Sprintf(format, a...)) }

	var j JournalEntry
	switch jj, _, err := e.o.Journal.Load(ctx, app.Name); {
	case err == nil:
		j = jj
		p.Journal = &JournalSummary{RotationID: j.RotationID, Step: j.Step, Done: j.Done, Attempts: j.Attempts,
			LastError: j.LastError, NextAttemptAt: j.NextAttemptAt, Orphaned: j.Orphaned, OrphanReason: j.Extra[ExtraOrphanReason]}
	case !errors.Is(err, ErrNotFound):
		problem("journal: %v", err)
	}

	stored, meta, err := e.readStore(ctx, app.VaultPath)
	if err != nil {
		problem("vault: %v", err)
	}
	p.VaultVersion, p.VaultKey, p.Managed = meta.Version, stored.Current.Key, meta.Managed && !stored.Current.IsZero()
	p.RotatedAt, p.PreviousKey, p.PreviousValidUntil = stored.RotatedAt, stored.Previous.Key, stored.PreviousValidUntil
	adopt := app.Adopt
	p.NeedsAdopt = !p.Managed
	if p.NeedsAdopt && !adopt {
		problem("vault path %s is not managed by ecarotator (adopt not set)", app.VaultPath)
	}

	if app.isOwnECA() {
		problem("eca %s is ecarotator's own ECA: never rotated", app.ECA)
	}
	if !e.planStrategy(ctx, iss, app, j, &p, problem) {
		e.planSalesforce(ctx, iss, app, stored, j, &p, problem)
	}

	in := NewInput(app, now)
	if p.Journal != nil {
		in.SetJournal(j)
	}
	in.SetStored(stored, meta)
	if app.Schedule != "" {
		if _, err := NextSlot(app.Schedule, now); err != nil {
			problem("%v", err)
		}
	}
	p.Decision = PlanChain.Decide(in)
	if app.isOwnECA() {
		p.Decision = Decision{Reason: ReasonRefused, Message: "ecarotator's own ECA is never rotated"}
	}
	p.WouldRotate = p.Decision.Rotate && len(p.Problems) == 0
	return p, nil
}

// planSalesforce fills the Salesforce half of a plan with reads only.
func (e *Engine) planSalesforce(ctx context.Context, iss Issuer, app App, stored StoredCredentials, j JournalEntry, p *PlanResult, problem func(string, ...any)) {
	gated := func(err error) bool {
		if app.SecretAccessMode != SecretAccessToggle || !errors.Is(err, ErrPermission) {
			return false
		}
		p.DevHubOK, p.ReadsGated = true, true
		p.SecretAccessMode, p.SecretAccessOK = app.SecretAccessMode, true
		return true
	}
	ref, err := AppRef{ID: app.ECAID, DeveloperName: app.ECA}, error(nil)
	if app.ECAID == "" {
		ref, err = iss.FindApp(ctx, app.ECA)
	}
	if gated(err) {
		return
	}
	if err != nil {
		p.DevHubError = err.Error()
		problem("dev hub %s: find eca %s: %v", app.DevHub, app.ECA, err)
		return
	}
	p.DevHubOK, p.AppID = true, ref.ID
	consumers, err := iss.Consumers(ctx, ref.ID)
	if gated(err) {
		return
	}
	if err != nil {
		problem("list consumers: %v", err)
		return
	}
	c, err := pickConsumer(app, consumers, stored.Current.Key, j.ConsumerID)
	if err != nil {
		problem("%v", err)
		return
	}
	p.ConsumerID = c.ID
	if p.PrimaryKey, err = iss.PrimaryKey(ctx, ref.ID, c.ID); gated(err) {
		return
	} else if err != nil {
		problem("read primary key: %v", err)
		return
	}
	if p.Managed && p.PrimaryKey != stored.Current.Key && (j.Pending.Key == "" || p.PrimaryKey != j.Pending.Key) {
		p.Drift = true
		problem("drift: salesforce primary key %s, vault current key %s", p.PrimaryKey, stored.Current.Key)
	}
	on, err := iss.SecretAccess(ctx)
	if err != nil {
		problem("read secret access setting: %v", err)
		return
	}
	p.SecretAccess = &on
	p.SecretAccessOK = on || app.SecretAccessMode == SecretAccessToggle
	if !p.SecretAccessOK {
		problem("secret access via REST API is off and secret_access is always_on")
	}
	if !on {
		return // the staged routes are gated; reading them would need a mutation
	}
	list, err := iss.Staged(ctx, ref.ID, c.ID)
	if err != nil {
		problem("read staged slot: %v", err)
		return
	}
	p.StagedReadable = true
	for _, sc := range list {
		p.Staged = append(p.Staged, StagedSummary{ID: sc.ID, Status: sc.Status, Key: sc.Key, Expires: sc.Expires})
		if sc.Status == StagedActive && sc.ID != j.StagedID && (j.Pending.Key == "" || sc.Key != j.Pending.Key) {
			p.ForeignStaged = true
			problem("staged slot holds an Active credential (%s, key %s) that ecarotator did not create", sc.ID, sc.Key)
		}
	}
}
