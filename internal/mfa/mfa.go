// Package mfa is the operator side of ecarotator's MFA-gated secret access
// (design.md "MFA-gated secret access"): TOTP enrolment (RFC 6238, SHA-1, six
// digits, 30 s steps) with seeds kept in Vault KV v2, single-use code
// verification with a per-operator failure counter and lockout, and the
// two-person rule for revoking a previous credential pair.
//
// All state lives in Vault and every change is a check-and-set write, so
// several replicas (and CLI processes) agree on which time-step was used
// last, how many attempts failed and whether an approval was granted:
//
//	<SeedPrefix>/seeds/<entity-id>   seed + verification state
//	<SeedPrefix>/approvals/<id>      one two-person approval
//
// An operator is a Vault identity entity (security review M1): display
// names are per auth mount, so one person with two login methods would
// otherwise count as two operators. Seeds are keyed by entity id, the
// two-person rule compares entity ids, and a token without an entity is
// refused (ErrNoEntity). Events carry the full identity, display name and
// entity id ("userpass-alice (entity 5f1c…)").
//
// Neither a seed nor a code ever reaches a log line, an audit event or an
// error: events carry the operator, the action, the app and the outcome.
package mfa

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// Errors callers branch on with errors.Is.
var (
	// ErrInvalidCode: the code matches no time-step inside the skew.
	ErrInvalidCode = errors.New("mfa: invalid code")
	// ErrReplayed: the code belongs to a time-step already used.
	ErrReplayed = errors.New("mfa: code already used")
	// ErrLockedOut: too many failed attempts; wait for the lockout to end.
	ErrLockedOut = errors.New("mfa: operator locked out after too many failed attempts")
	// ErrNotEnrolled: the operator has no TOTP seed.
	ErrNotEnrolled = errors.New("mfa: operator not enrolled")
	// ErrAlreadyEnrolled: Enroll on an operator who has a seed; disable first.
	ErrAlreadyEnrolled = errors.New("mfa: operator already enrolled (disable first)")
	// ErrSameOperator: the requester tried to approve their own request.
	ErrSameOperator = errors.New("mfa: an approval needs a second, different operator")
	// ErrApprovalExpired: the approval's time to live has passed.
	ErrApprovalExpired = errors.New("mfa: approval expired")
	// ErrApprovalNotFound: no approval with that id.
	ErrApprovalNotFound = errors.New("mfa: approval not found")
	// ErrApprovalUsed: the approval was already granted (or expired and
	// closed); an approval works once.
	ErrApprovalUsed = errors.New("mfa: approval already used")
	// ErrInvalidOperator: an operator name unusable as a Vault path segment.
	ErrInvalidOperator = errors.New("mfa: invalid operator name")
	// ErrNoEntity: the caller's Vault token has no identity entity, so
	// nothing says which person holds it; break-glass refuses it.
	ErrNoEntity = errors.New("mfa: the vault token has no identity entity (log in through an auth method, or create the token with an entity alias)")
)

// errConflict is a lost check-and-set race; the operation re-reads and
// tries again.
var errConflict = errors.New("mfa: check-and-set conflict")

// TOTP parameters (RFC 6238 defaults that every authenticator app supports).
const (
	period    = 30 * time.Second
	digits    = otp.DigitsSix
	seedBytes = 20 // 160 bits, RFC 4226's recommendation
	casTries  = 8
)

// Approval statuses.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusExpired  = "expired"
)

// Options configure a Service. Vault, Audit and Logger are required.
type Options struct {
	// Vault is a store whose token may read and write under SeedPrefix
	// (the vault adapter's *vault.Client).
	Vault Store
	// SeedPrefix is the KV folder for seeds and approvals (default ecarotator/mfa).
	SeedPrefix string
	// Issuer is shown by authenticator apps (default ecarotator).
	Issuer string
	// Skew is the number of 30 s steps accepted either side of now.
	Skew uint
	// MaxFailures is the number of failed attempts after which the
	// operator is locked out for Lockout (default 5).
	MaxFailures int
	// Lockout is how long a locked-out operator waits (default 15m).
	Lockout time.Duration
	// ApprovalTTL is how long a two-person approval stays open (default 1h).
	ApprovalTTL time.Duration
	// Now is the clock (default time.Now); tests pass a fake.
	Now    func() time.Time
	Audit  rotator.AuditLog
	Logger *zap.Logger
}

func (o *Options) validate() error {
	if o.SeedPrefix == "" {
		o.SeedPrefix = "ecarotator/mfa"
	}
	if o.Issuer == "" {
		o.Issuer = "ecarotator"
	}
	if o.MaxFailures == 0 {
		o.MaxFailures = 5
	}
	if o.Lockout == 0 {
		o.Lockout = 15 * time.Minute
	}
	if o.ApprovalTTL == 0 {
		o.ApprovalTTL = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var errs []error
	if o.Vault == nil {
		errs = append(errs, errors.New("vault: required"))
	}
	if o.Audit == nil {
		errs = append(errs, errors.New("audit: required"))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("logger: required"))
	}
	if o.Skew > 3 {
		errs = append(errs, errors.New("skew: at most 3 steps"))
	}
	if o.MaxFailures < 0 || o.Lockout < 0 || o.ApprovalTTL < 0 {
		errs = append(errs, errors.New("max failures, lockout and approval ttl must be positive"))
	}
	o.SeedPrefix = strings.Trim(o.SeedPrefix, "/")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mfa: invalid options: %w", err)
	}
	return nil
}

// Store is what the service needs from Vault: KV v2 documents with
// check-and-set. The vault adapter's *vault.Client provides it; errors
// match rotator.ErrNotFound, rotator.ErrConflict and rotator.ErrPermission.
type Store interface {
	ReadDoc(ctx context.Context, path string) (map[string]any, int, error)
	WriteDoc(ctx context.Context, path string, data map[string]any, cas int) (int, error)
	DocExists(ctx context.Context, path string) error
	DeleteDoc(ctx context.Context, path string) error
}

// Service enrols operators, verifies their codes and runs two-person
// approvals. It is safe for concurrent use; it holds no state of its own.
type Service struct {
	o   Options
	kv  Store
	log *zap.Logger
}

// New checks o and returns a Service.
func New(o Options) (*Service, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Service{o: o, kv: o.Vault, log: o.Logger.Named("mfa")}, nil
}

// Approval is one two-person request (revoke the previous pair) and its
// outcome. It holds no secret.
type Approval struct {
	ID        string `json:"id"`
	Action    string `json:"action"`
	App       string `json:"app"`
	Requester string `json:"requester"` // full identity: display name and entity
	Approver  string `json:"approver,omitempty"`
	// RequesterEntity and ApproverEntity are the Vault entity ids the
	// two-person rule compares.
	RequesterEntity string    `json:"requester_entity"`
	ApproverEntity  string    `json:"approver_entity,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	Created         time.Time `json:"created"`
	Expires         time.Time `json:"expires"`
	Status          string    `json:"status"`
}

// seedState is the verification state kept beside a seed.
type seedState struct {
	EnrolledAt  time.Time `json:"enrolled_at"`
	LastStep    int64     `json:"last_step"` // last accepted time-step (single use)
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// Operator is who acts: the Vault entity id (the key for seeds and the
// two-person rule) and the full identity shown in the audit trail.
type Operator struct {
	Entity   string // Vault identity entity id
	Identity string // "display (entity id)" as vault.Client.TokenIdentity reports it
	Display  string // the token's display name ("" when unknown)
}

// ParseOperator reads an identity as vault.Client.TokenIdentity reports it
// ("userpass-alice (entity 5f1c…)", "entity 5f1c…") or a bare entity id
// (an administrator naming whom to enroll). An identity without an entity
// is refused with ErrNoEntity: its display name says nothing about the
// person (M1).
func ParseOperator(identity string) (Operator, error) {
	identity = strings.TrimSpace(identity)
	op := Operator{Identity: identity}
	switch {
	case strings.HasSuffix(identity, ")") && strings.Contains(identity, " (entity "):
		i := strings.LastIndex(identity, " (entity ")
		op.Display = strings.TrimSpace(identity[:i])
		op.Entity = strings.TrimSuffix(identity[i+len(" (entity "):], ")")
	case strings.HasPrefix(identity, "entity "):
		op.Entity = strings.TrimPrefix(identity, "entity ")
	case isEntityID(identity):
		op.Entity = identity
		op.Identity = "entity " + identity
	default:
		return Operator{}, fmt.Errorf("%w: %q", ErrNoEntity, identity)
	}
	if !isEntityID(op.Entity) {
		return Operator{}, fmt.Errorf("%w: entity id %q", ErrInvalidOperator, op.Entity)
	}
	return op, nil
}

// isEntityID reports whether id looks like a Vault entity id (a UUID):
// hex digits and dashes only, so it is safe as a Vault path segment.
func isEntityID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// label is the name shown in an authenticator app: the display name when
// known, else the entity id.
func (o Operator) label() string {
	if o.Display != "" {
		return o.Display
	}
	return o.Entity
}

func (s *Service) seedPath(op string) string     { return s.o.SeedPrefix + "/seeds/" + op }
func (s *Service) approvalPath(id string) string { return s.o.SeedPrefix + "/approvals/" + id }

// Enroll creates a TOTP seed for operator (crypto/rand) and returns the
// otpauth:// URI to show once (as text and QR code). The URI contains the
// seed: the caller prints it to the operator's terminal and nowhere else.
// An operator who is enrolled must be disabled first (ErrAlreadyEnrolled).
func (s *Service) Enroll(ctx context.Context, identity string) (string, error) {
	op, err := ParseOperator(identity)
	if err != nil {
		return "", err
	}
	operator := op.Entity
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.o.Issuer, AccountName: op.label(), Period: uint(period / time.Second),
		SecretSize: seedBytes, Digits: digits, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader,
	})
	if err != nil {
		return "", fmt.Errorf("mfa: enroll %s: generate seed: %w", operator, err)
	}
	st := seedState{EnrolledAt: s.o.Now().UTC()}
	if _, err := s.putSeed(ctx, operator, key.Secret(), st, 0); err != nil {
		if errors.Is(err, errConflict) {
			return "", fmt.Errorf("mfa: enroll %s: %w", operator, ErrAlreadyEnrolled)
		}
		return "", fmt.Errorf("mfa: enroll %s: %w", operator, err)
	}
	s.log.Info("operator enrolled", zap.String("operator", op.Identity))
	if err := s.audit(ctx, rotator.EventMFAEnrolled, op, "", rotator.OutcomeOK, nil); err != nil {
		return "", err
	}
	return key.URL(), nil
}

// Disable removes operator's seed and state (all KV versions), so codes
// from that seed stop working at once. ErrNotEnrolled when there is none.
func (s *Service) Disable(ctx context.Context, identity string) error {
	op, err := ParseOperator(identity)
	if err != nil {
		return err
	}
	operator := op.Entity
	// Metadata only: whoever may disable an operator need not be able to
	// read seeds (configs/policies/mfa-admin.hcl).
	if err := s.kv.DocExists(ctx, s.seedPath(operator)); err != nil {
		if err = vaultErr(err); errors.Is(err, rotator.ErrNotFound) {
			return fmt.Errorf("mfa: disable %s: %w", operator, ErrNotEnrolled)
		}
		return fmt.Errorf("mfa: disable %s: %w", operator, err)
	}
	if err := s.kv.DeleteDoc(ctx, s.seedPath(operator)); err != nil {
		return fmt.Errorf("mfa: disable %s: %w", operator, vaultErr(err))
	}
	s.log.Info("operator disabled", zap.String("operator", op.Identity))
	return s.audit(ctx, rotator.EventMFADisabled, op, "", rotator.OutcomeOK, nil)
}

// Verify checks operator's code for action on app. operator may be a
// full token identity with an entity (ParseOperator); the seed is the
// entity's. A code is accepted once:
// the time-step it matched is stored (check-and-set) and no code of that
// step or an earlier one is accepted again (ErrReplayed). Every failure
// counts towards MaxFailures, after which the operator is locked out for
// Lockout (ErrLockedOut, without even looking at the code). Every attempt
// is audited (mfa.verified / mfa.failed); an accepted code whose event
// cannot be recorded is refused (fail closed).
func (s *Service) Verify(ctx context.Context, identity, code, action, app string) error {
	op, err := ParseOperator(identity)
	if err != nil {
		return err
	}
	for try := 0; try < casTries; try++ {
		err := s.verifyOnce(ctx, op, code, action, app)
		if !errors.Is(err, errConflict) {
			return err
		}
	}
	return fmt.Errorf("mfa: verify %s: %w", op.Identity, errConflict)
}

func (s *Service) verifyOnce(ctx context.Context, op Operator, code, action, app string) error {
	operator := op.Entity
	seed, st, ver, err := s.getSeed(ctx, operator)
	if errors.Is(err, ErrNotEnrolled) {
		s.failed(ctx, op, action, app, "not_enrolled", 0)
		return fmt.Errorf("mfa: verify %s: %w", operator, ErrNotEnrolled)
	}
	if err != nil {
		return fmt.Errorf("mfa: verify %s: %w", operator, err)
	}
	now := s.o.Now()
	if now.Before(st.LockedUntil) {
		s.failed(ctx, op, action, app, "locked_out", st.Failures)
		return fmt.Errorf("mfa: verify %s: %w until %s", operator, ErrLockedOut, st.LockedUntil.UTC().Format(time.RFC3339))
	}
	step, matched := s.match(seed, code, now)
	if matched && step > st.LastStep {
		st.LastStep, st.Failures, st.LockedUntil = step, 0, time.Time{}
		if _, err := s.putSeed(ctx, operator, seed, st, ver); err != nil {
			return err // errConflict: another replica moved first; re-read
		}
		s.log.Info("mfa code accepted", zap.String("operator", op.Identity), zap.String("action", action), zap.String(rotator.LogKeyApp, app))
		return s.audit(ctx, rotator.EventMFAVerified, op, app, rotator.OutcomeOK, map[string]string{"action": action})
	}
	reason, sentinel := "invalid_code", ErrInvalidCode
	if matched {
		reason, sentinel = "replayed", ErrReplayed
	}
	st.Failures++
	failures := st.Failures
	if st.Failures >= s.o.MaxFailures {
		st.Failures, st.LockedUntil = 0, now.Add(s.o.Lockout)
		reason += ",locked_out"
	}
	if _, err := s.putSeed(ctx, operator, seed, st, ver); err != nil {
		return err
	}
	s.failed(ctx, op, action, app, reason, failures)
	return fmt.Errorf("mfa: verify %s: %w", operator, sentinel)
}

// match returns the time-step within ±Skew whose code equals code.
func (s *Service) match(seed, code string, now time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != digits.Length() {
		return 0, false
	}
	opts := totp.ValidateOpts{Period: uint(period / time.Second), Digits: digits, Algorithm: otp.AlgorithmSHA1}
	cur := now.Unix() / int64(period/time.Second)
	found, step := false, int64(0)
	// Check every candidate step (no early return) so timing says nothing
	// about which step matched.
	for d := -int64(s.o.Skew); d <= int64(s.o.Skew); d++ {
		t := time.Unix((cur+d)*int64(period/time.Second), 0)
		want, err := totp.GenerateCodeCustom(seed, t, opts)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			found, step = true, cur+d
		}
	}
	return step, found
}

func (s *Service) failed(ctx context.Context, operator Operator, action, app, reason string, failures int) {
	s.log.Warn("mfa code refused", zap.String("operator", operator.Identity), zap.String("action", action),
		zap.String(rotator.LogKeyApp, app), zap.String(rotator.LogKeyReason, reason), zap.Int("failures", failures))
	details := map[string]string{"action": action, "reason": reason, "failures": fmt.Sprint(failures)}
	if err := s.audit(ctx, rotator.EventMFAFailed, operator, app, rotator.OutcomeDenied, details); err != nil {
		s.log.Error("audit mfa failure", zap.Error(err))
	}
}

// RequestApproval opens a two-person request: requester proves their own
// code (consumed like any other), and the approval is stored pending for
// ApprovalTTL. A different operator grants it with Approve.
func (s *Service) RequestApproval(ctx context.Context, action, app, requester, code, reason string) (Approval, error) {
	if action == "" || app == "" {
		return Approval{}, errors.New("mfa: request approval: action and app are required")
	}
	op, err := ParseOperator(requester)
	if err != nil {
		return Approval{}, err
	}
	if err := s.Verify(ctx, requester, code, action, app); err != nil {
		return Approval{}, err
	}
	now := s.o.Now().UTC()
	a := Approval{ID: newID(), Action: action, App: app, Requester: op.Identity, RequesterEntity: op.Entity, Reason: reason,
		Created: now, Expires: now.Add(s.o.ApprovalTTL), Status: StatusPending}
	if _, err := s.putApproval(ctx, a, 0); err != nil {
		return Approval{}, fmt.Errorf("mfa: request approval: %w", err)
	}
	s.log.Info("approval requested", zap.String("approval_id", a.ID), zap.String("action", action), zap.String(rotator.LogKeyApp, app), zap.String("operator", op.Identity))
	if err := s.audit(ctx, rotator.EventApprovalRequested, op, app, rotator.OutcomeOK, approvalDetails(a)); err != nil {
		return Approval{}, err
	}
	return a, nil
}

// Approve grants approval id as approver, who must differ from the
// requester (compared by Vault entity id, M1) and prove their own code. An
// approval is granted once
// (ErrApprovalUsed) and only before it expires (ErrApprovalExpired).
// Refusals are audited as approval.granted with outcome "denied".
func (s *Service) Approve(ctx context.Context, id, approverIdentity, code string) (Approval, error) {
	approver, err := ParseOperator(approverIdentity)
	if err != nil {
		return Approval{}, err
	}
	a, ver, err := s.Get(ctx, id)
	if err != nil {
		return Approval{}, err
	}
	deny := func(why string, sentinel error) (Approval, error) {
		d := approvalDetails(a)
		d["reason"] = why
		if err := s.audit(ctx, rotator.EventApprovalGranted, approver, a.App, rotator.OutcomeDenied, d); err != nil {
			s.log.Error("audit approval refusal", zap.Error(err))
		}
		s.log.Warn("approval refused", zap.String("approval_id", a.ID), zap.String("operator", approver.Identity), zap.String(rotator.LogKeyReason, why))
		return a, fmt.Errorf("mfa: approve %s: %w", id, sentinel)
	}
	switch {
	case a.Status != StatusPending:
		return deny("already_"+a.Status, ErrApprovalUsed)
	case !s.o.Now().Before(a.Expires):
		a.Status = StatusExpired
		if _, err := s.putApproval(ctx, a, ver); err != nil && !errors.Is(err, errConflict) {
			s.log.Warn("mark approval expired", zap.String("approval_id", a.ID), zap.Error(err))
		}
		return deny("expired", ErrApprovalExpired)
	case a.RequesterEntity == "" || approver.Entity == a.RequesterEntity:
		// An approval without a requester entity predates M1; nobody can
		// prove they are a second person, so it is refused.
		return deny("same_operator", ErrSameOperator)
	}
	if err := s.Verify(ctx, approver.Identity, code, a.Action, a.App); err != nil {
		return a, err
	}
	a.Status, a.Approver, a.ApproverEntity = StatusApproved, approver.Identity, approver.Entity
	if _, err := s.putApproval(ctx, a, ver); err != nil {
		if errors.Is(err, errConflict) {
			return a, fmt.Errorf("mfa: approve %s: %w", id, ErrApprovalUsed)
		}
		return a, fmt.Errorf("mfa: approve %s: %w", id, err)
	}
	s.log.Info("approval granted", zap.String("approval_id", a.ID), zap.String("operator", approver.Identity), zap.String("requester", a.Requester))
	if err := s.audit(ctx, rotator.EventApprovalGranted, approver, a.App, rotator.OutcomeOK, approvalDetails(a)); err != nil {
		return a, err
	}
	return a, nil
}

// Get reads approval id and its KV version (ErrApprovalNotFound).
func (s *Service) Get(ctx context.Context, id string) (Approval, int, error) {
	if id == "" || strings.ContainsAny(id, "/\\ .") {
		return Approval{}, 0, fmt.Errorf("mfa: approval %q: %w", id, ErrApprovalNotFound)
	}
	data, ver, err := s.kv.ReadDoc(ctx, s.approvalPath(id))
	if err != nil {
		err = vaultErr(err)
		if errors.Is(err, rotator.ErrNotFound) {
			return Approval{}, 0, fmt.Errorf("mfa: approval %s: %w", id, ErrApprovalNotFound)
		}
		return Approval{}, 0, fmt.Errorf("mfa: read approval %s: %w", id, err)
	}
	var a Approval
	raw, _ := data["approval"].(string)
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return Approval{}, 0, fmt.Errorf("mfa: decode approval %s: %w", id, err)
	}
	return a, ver, nil
}

func approvalDetails(a Approval) map[string]string {
	d := map[string]string{"approval_id": a.ID, "action": a.Action, "requester": a.Requester,
		"requester_entity": a.RequesterEntity, "expires": a.Expires.UTC().Format(time.RFC3339), "status": a.Status}
	if a.Approver != "" {
		d["approver"], d["approver_entity"] = a.Approver, a.ApproverEntity
	}
	if a.Reason != "" {
		d["request_reason"] = a.Reason
	}
	return d
}

// audit records an MFA event. The actor is the full identity (display
// name and entity id); details repeat both so that a reader of one event
// needs no other to tell the person (M1).
func (s *Service) audit(ctx context.Context, t rotator.EventType, op Operator, app string, outcome rotator.Outcome, details map[string]string) error {
	if details == nil {
		details = map[string]string{}
	}
	details["entity_id"] = op.Entity
	if op.Display != "" {
		details["display_name"] = op.Display
	}
	ev := rotator.Event{Type: t, Time: s.o.Now().UTC(), App: app, Outcome: outcome, Details: details,
		Actor: rotator.Actor{Kind: rotator.ActorOperator, Identity: op.Identity}}
	if err := s.o.Audit.Record(ctx, ev); err != nil {
		return fmt.Errorf("%w: %s: %w", rotator.ErrAudit, t, err)
	}
	return nil
}

// getSeed reads operator's seed, state and KV version.
func (s *Service) getSeed(ctx context.Context, operator string) (string, seedState, int, error) {
	data, ver, err := s.kv.ReadDoc(ctx, s.seedPath(operator))
	if err != nil {
		err = vaultErr(err)
		if errors.Is(err, rotator.ErrNotFound) {
			return "", seedState{}, 0, ErrNotEnrolled
		}
		return "", seedState{}, 0, fmt.Errorf("read seed state: %w", err)
	}
	seed, _ := data["seed"].(string)
	if seed == "" {
		return "", seedState{}, 0, ErrNotEnrolled
	}
	var st seedState
	raw, _ := data["state"].(string)
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return "", seedState{}, 0, fmt.Errorf("decode seed state: %w", err)
	}
	return seed, st, ver, nil
}

func (s *Service) putSeed(ctx context.Context, operator, seed string, st seedState, cas int) (int, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	return s.put(ctx, s.seedPath(operator), map[string]any{"seed": seed, "state": string(b)}, cas)
}

func (s *Service) putApproval(ctx context.Context, a Approval, cas int) (int, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return 0, err
	}
	return s.put(ctx, s.approvalPath(a.ID), map[string]any{"approval": string(b)}, cas)
}

// put writes data with check-and-set on cas (0: must not exist).
func (s *Service) put(ctx context.Context, path string, data map[string]any, cas int) (int, error) {
	v, err := s.kv.WriteDoc(ctx, path, data, cas)
	if err != nil {
		return 0, vaultErr(err)
	}
	return v, nil
}

// vaultErr classifies a store error in one place: a check-and-set mismatch
// becomes errConflict (the operation re-reads); rotator.ErrNotFound and
// rotator.ErrPermission come classified from the store. Vault's error text
// names paths only, never data, so it is safe to wrap.
func vaultErr(err error) error {
	if errors.Is(err, rotator.ErrConflict) {
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
