package vault

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// Field names at an app's KV path: the contract with applications
// (docs/apps.md, configs/agent/).
const (
	FieldConsumerKey            = "consumer_key"
	FieldConsumerSecret         = "consumer_secret"
	FieldTokenURL               = "token_url"
	FieldPreviousConsumerKey    = "previous_consumer_key"
	FieldPreviousConsumerSecret = "previous_consumer_secret"
	FieldPreviousValidUntil     = "previous_valid_until"
	FieldRotatedAt              = "rotated_at"
	FieldRotationID             = "rotation_id"
	FieldPreviousStagedID       = "previous_staged_id"
)

// Keys of custom_metadata on app paths. They never hold a secret.
const (
	MetaManagedBy  = "managed-by"
	MetaRotationID = "rotation-id"
	MetaRotatedAt  = "rotated-at"
	MetaUpdatedAt  = "updated-at"
	MetaAdoptedAt  = "adopted-at"
	// ManagedByValue marks a path as ecarotator's.
	ManagedByValue = "ecarotator"
)

// ReadCredentials reads the latest version of an app's path. It returns
// rotator.ErrNotFound when the path has no live version.
func (c *Client) ReadCredentials(ctx context.Context, path string) (rotator.StoredCredentials, rotator.StoreMeta, error) {
	rel := c.rel(path)
	v, err := c.readKV(ctx, "read credentials", rel)
	if err != nil {
		return rotator.StoredCredentials{}, rotator.StoreMeta{}, err
	}
	sc, err := decodeCredentials(v.data)
	if err != nil {
		return rotator.StoredCredentials{}, rotator.StoreMeta{}, fmt.Errorf("vault: read credentials %s: %w", c.dataPath(rel), err)
	}
	return sc, storeMeta(v), nil
}

func storeMeta(v kvVersion) rotator.StoreMeta {
	return rotator.StoreMeta{
		Version:   v.version,
		Managed:   v.custom[MetaManagedBy] == ManagedByValue,
		Custom:    v.custom,
		UpdatedAt: v.created,
	}
}

func decodeCredentials(d map[string]any) (rotator.StoredCredentials, error) {
	sc := rotator.StoredCredentials{
		Current:    rotator.Credentials{Key: str(d, FieldConsumerKey), Secret: rotator.NewSecret(str(d, FieldConsumerSecret))},
		TokenURL:   str(d, FieldTokenURL),
		Previous:   rotator.Credentials{Key: str(d, FieldPreviousConsumerKey), Secret: rotator.NewSecret(str(d, FieldPreviousConsumerSecret))},
		RotationID: str(d, FieldRotationID),
		// Public id of the Rotated staged entry (retirement deletes it).
		PreviousStagedID: str(d, FieldPreviousStagedID),
	}
	var err1, err2 error
	sc.PreviousValidUntil, err1 = parseTimeField(d, FieldPreviousValidUntil)
	sc.RotatedAt, err2 = parseTimeField(d, FieldRotatedAt)
	return sc, errors.Join(err1, err2)
}

func encodeCredentials(sc rotator.StoredCredentials) map[string]any {
	// Every field is always written (empty when unset) so that readers see
	// one stable schema; an empty previous_* means "no overlap".
	return map[string]any{
		FieldConsumerKey:            sc.Current.Key,
		FieldConsumerSecret:         sc.Current.Secret.Reveal(),
		FieldTokenURL:               sc.TokenURL,
		FieldPreviousConsumerKey:    sc.Previous.Key,
		FieldPreviousConsumerSecret: sc.Previous.Secret.Reveal(),
		FieldPreviousValidUntil:     formatTime(sc.PreviousValidUntil),
		FieldRotatedAt:              formatTime(sc.RotatedAt),
		FieldRotationID:             sc.RotationID,
		FieldPreviousStagedID:       sc.PreviousStagedID,
	}
}

// WriteCredentials writes sc as a new version of an app's path with
// check-and-set on opts.CAS and returns the new version.
//
// Order matters: the lease is checked first (rotator.ErrFenced); then the
// managed-by marker (rotator.ErrNotManaged unless opts.Adopt); a path that
// does not exist yet gets its metadata (marker, max_versions) before its
// first version so that it is never visible unmarked; then the data is
// written with cas (rotator.ErrConflict when the version moved); last the
// rotation id and times go into custom_metadata. A failure of that last
// step is only logged: the credentials are committed, and failing the write
// would make the engine retry a commit that already happened.
func (c *Client) WriteCredentials(ctx context.Context, path string, sc rotator.StoredCredentials, opts rotator.WriteOptions) (int, error) {
	const op = "write credentials"
	rel := c.rel(path)
	if sc.Current.Key == "" || sc.Current.Secret.IsZero() {
		return 0, fmt.Errorf("vault: %s %s: current consumer key and secret are required", op, c.dataPath(rel))
	}
	if opts.CAS < 0 {
		return 0, fmt.Errorf("vault: %s %s: negative cas %d", op, c.dataPath(rel), opts.CAS)
	}
	if opts.Lease != nil {
		if err := c.Check(ctx, *opts.Lease); err != nil {
			return 0, wrapErr(op, c.dataPath(rel), err)
		}
	}
	meta, err := c.readMeta(ctx, op, rel)
	exists := err == nil
	if err != nil && !errors.Is(err, rotator.ErrNotFound) {
		return 0, err
	}
	managed := meta.custom[MetaManagedBy] == ManagedByValue
	switch {
	case exists && !managed && !opts.Adopt:
		return 0, newOpError(op, c.dataPath(rel), rotator.ErrNotManaged)
	case meta.current != opts.CAS:
		return 0, &opError{op: op, path: c.dataPath(rel), kinds: []error{rotator.ErrConflict},
			cause: fmt.Errorf("expected version %d, current is %d", opts.CAS, meta.current)}
	}
	now := c.now()
	switch {
	case !exists:
		err = c.writeMeta(ctx, op, rel, map[string]any{
			// A string: Vault's policy parameter constraints match strings
			// only, so configs/policies/ecarotator.hcl can pin this value
			// and the daemon cannot shrink an app's history (L6).
			"max_versions":    strconv.Itoa(c.o.MaxVersions),
			"custom_metadata": map[string]string{MetaManagedBy: ManagedByValue},
		})
	case !managed: // adopting
		err = c.patchMeta(ctx, op, rel, map[string]any{
			"custom_metadata": map[string]string{MetaManagedBy: ManagedByValue, MetaAdoptedAt: formatTime(now)},
		})
	}
	if err != nil {
		return 0, err
	}
	version, err := c.writeKV(ctx, op, rel, encodeCredentials(sc), opts.CAS)
	if err != nil {
		return 0, err
	}
	custom := map[string]any{
		MetaManagedBy:  ManagedByValue,
		MetaRotationID: opts.RotationID,
		MetaRotatedAt:  formatTime(sc.RotatedAt),
		MetaUpdatedAt:  formatTime(now),
	}
	for k, v := range custom {
		if v == "" {
			// Vault rejects empty custom_metadata values; in a merge patch
			// null removes the key, so a stale value does not linger.
			custom[k] = nil
		}
	}
	if err := c.patchMeta(ctx, op, rel, map[string]any{"custom_metadata": custom}); err != nil {
		c.log.Warn("vault: credentials written but custom_metadata not updated",
			zap.String(logKeyPath, c.dataPath(rel)), zap.Int("version", version), zap.String(logKeyErr, detail(err)))
	}
	return version, nil
}

// History lists the versions Vault keeps for an app's path, oldest first.
func (c *Client) History(ctx context.Context, path string) ([]rotator.VersionInfo, error) {
	m, err := c.readMeta(ctx, "history", c.rel(path))
	if err != nil {
		return nil, err
	}
	return m.versions, nil
}
