package vault

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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
	MetaManagedBy = "managed-by"
	MetaAdoptedAt = "adopted-at"
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
// Order matters: the lease is checked first (rotator.ErrFenced; the
// Client holding it answers from memory); then the managed-by marker
// (rotator.ErrNotManaged unless opts.Adopt); a path that does not exist
// yet gets its metadata (marker, max_versions) before its first version so
// that it is never visible unmarked; then the data is written with cas
// (rotator.ErrConflict when the version moved). A caller that read the
// path at version CAS and saw the marker says so (opts.Managed): the write
// is then one request, as the check-and-set proves the path unchanged.
// The rotation id and time are in the data (rotation_id, rotated_at);
// custom_metadata carries only the marker (and adopted-at), so a rotation
// does not pay a metadata write.
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
	if !(opts.Managed && opts.CAS > 0) {
		if err := c.prepareWrite(ctx, op, rel, opts); err != nil {
			return 0, err
		}
	}
	return c.writeKV(ctx, op, rel, encodeCredentials(sc), opts.CAS)
}

// prepareWrite reads the path's metadata before a write whose caller did
// not vouch for it: it refuses an unmanaged path (unless adopting) and a
// moved version, and marks a new or adopted path.
func (c *Client) prepareWrite(ctx context.Context, op, rel string, opts rotator.WriteOptions) error {
	meta, err := c.readMeta(ctx, op, rel)
	exists := err == nil
	if err != nil && !errors.Is(err, rotator.ErrNotFound) {
		return err
	}
	managed := meta.custom[MetaManagedBy] == ManagedByValue
	switch {
	case exists && !managed && !opts.Adopt:
		return newOpError(op, c.dataPath(rel), rotator.ErrNotManaged)
	case meta.current != opts.CAS:
		return &opError{op: op, path: c.dataPath(rel), kinds: []error{rotator.ErrConflict},
			cause: fmt.Errorf("expected version %d, current is %d", opts.CAS, meta.current)}
	}
	switch {
	case !exists:
		return c.writeMeta(ctx, op, rel, map[string]any{
			// A string: Vault's policy parameter constraints match strings
			// only, so configs/policies/ecarotator.hcl can pin this value
			// and the daemon cannot shrink an app's history (L6).
			"max_versions":    strconv.Itoa(c.o.MaxVersions),
			"custom_metadata": map[string]string{MetaManagedBy: ManagedByValue},
		})
	case !managed: // adopting
		return c.patchMeta(ctx, op, rel, map[string]any{
			"custom_metadata": map[string]string{MetaManagedBy: ManagedByValue, MetaAdoptedAt: formatTime(c.now())},
		})
	}
	return nil
}

// History lists the versions Vault keeps for an app's path, oldest first.
func (c *Client) History(ctx context.Context, path string) ([]rotator.VersionInfo, error) {
	m, err := c.readMeta(ctx, "history", c.rel(path))
	if err != nil {
		return nil, err
	}
	return m.versions, nil
}
