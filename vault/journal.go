package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ecarotator/ecarotator/rotator"
)

// Fields of a journal path.
const (
	fieldJournalState   = "state"
	fieldJournalPending = "pending_consumer_secret"
)

// legacyPriorField is the journal's prior secret-access value as versions
// before 2026-12 named it.
const legacyPriorField = "prior_" + "exposure"

// redactedJSON is what rotator.Secret marshals to.
const redactedJSON = "<redacted>"

func (c *Client) journalRel(app string) string {
	return c.o.StatePrefix + "/" + strings.Trim(app, "/")
}

// Load returns app's journal entry and its version, rotator.ErrNotFound
// when there is none. The pending secret is restored from its own field.
func (c *Client) Load(ctx context.Context, app string) (rotator.JournalEntry, int, error) {
	if isAppJournal(app) {
		return c.loadApp(ctx, app)
	}
	rel := c.journalRel(app)
	v, err := c.readKV(ctx, "load journal", rel)
	if err != nil {
		return rotator.JournalEntry{}, 0, err
	}
	e, err := decodeJournal(str(v.data, fieldJournalState))
	if err != nil {
		return rotator.JournalEntry{}, 0, fmt.Errorf("vault: load journal %s: %w", c.dataPath(rel), err)
	}
	e.Pending.Secret = rotator.NewSecret(str(v.data, fieldJournalPending))
	return e, v.version, nil
}

// Save writes e as a new version of app's journal if the stored version is
// still cas (0: no journal yet). The entry goes into the JSON field "state"
// with its secrets redacted, and Pending.Secret into
// "pending_consumer_secret" (I2: the staged secret is in Vault before the
// next mutation). rotator.ErrConflict when the version moved,
// rotator.ErrFenced when lease is set and no longer held.
func (c *Client) Save(ctx context.Context, app string, e rotator.JournalEntry, cas int, lease *rotator.Lease) (int, error) {
	const op = "save journal"
	if isAppJournal(app) {
		return c.saveApp(ctx, app, e, cas, lease)
	}
	rel := c.journalRel(app)
	if lease != nil {
		if err := c.Check(ctx, *lease); err != nil {
			return 0, wrapErr(op, c.dataPath(rel), err)
		}
	}
	state, pending, err := encodeJournal(e)
	if err != nil {
		return 0, fmt.Errorf("vault: %s %s: %w", op, c.dataPath(rel), err)
	}
	return c.writeKV(ctx, op, rel, map[string]any{fieldJournalState: state, fieldJournalPending: pending}, cas)
}

// Clear removes app's journal with all its versions (destroying the pending
// secret they held). Clearing a journal that does not exist succeeds.
func (c *Client) Clear(ctx context.Context, app string, lease *rotator.Lease) error {
	const op = "clear journal"
	if isAppJournal(app) {
		return c.clearApp(ctx, app, lease)
	}
	rel := c.journalRel(app)
	if lease != nil {
		if err := c.Check(ctx, *lease); err != nil {
			return wrapErr(op, c.dataPath(rel), err)
		}
	}
	err := c.deleteMeta(ctx, op, rel)
	if errors.Is(err, rotator.ErrNotFound) {
		return nil
	}
	return err
}

// decodeJournal parses the "state" field. rotator.Secret has no
// UnmarshalJSON, so every value that is the redaction marker is dropped
// before decoding: those fields stay zero and the real secrets are restored
// from their own fields.
func decodeJournal(state string) (rotator.JournalEntry, error) {
	var e rotator.JournalEntry
	if state == "" {
		return e, errors.New("journal has no state field")
	}
	var tree any
	if err := json.Unmarshal([]byte(state), &tree); err != nil {
		return e, fmt.Errorf("state: %w", err)
	}
	if m, ok := tree.(map[string]any); ok {
		// Journals written before the setting had one name kept its prior
		// value as "prior_exposure".
		if v, old := m[legacyPriorField]; old {
			if _, cur := m["prior_secret_access"]; !cur {
				m["prior_secret_access"] = v
			}
			delete(m, legacyPriorField)
		}
	}
	b, err := json.Marshal(dropRedacted(tree))
	if err != nil {
		return e, fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("state: %w", err)
	}
	return e, nil
}

func dropRedacted(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && s == redactedJSON {
				delete(x, k)
				continue
			}
			x[k] = dropRedacted(val)
		}
	case []any:
		for i := range x {
			x[i] = dropRedacted(x[i])
		}
	}
	return v
}
