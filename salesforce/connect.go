package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// Route templates, used in logs, errors and the fault table. Ids are never
// part of a route so that log cardinality stays bounded.
const (
	RouteUsage       = "/apps/oauth/usage"
	RouteConsumers   = "/apps/oauth/credentials/{app}"
	RouteCredentials = "/apps/oauth/credentials/{app}/{consumer}"
	RouteStaged      = "/apps/oauth/credentials/{app}/{consumer}/staged"
	RouteStagedID    = "/apps/oauth/credentials/{app}/{consumer}/staged/{id}"
	RouteSOAP        = "/services/Soap/m/{version}"
)

const (
	usagePageSize = 100
	// maxUsagePages bounds the usage walk in case a server never returns an
	// empty page.
	maxUsagePages = 1000
)

// usageApp is one item of "App OAuth Usage Collection".
type usageApp struct {
	Identifier    string `json:"identifier"`
	DeveloperName string `json:"developerName"`
	Label         string `json:"label"`
}

// consumerItem is one "App Oauth Credentials" object.
type consumerItem struct {
	ID                   string `json:"id"`
	Key                  string `json:"key"`
	Name                 string `json:"name"`
	Secret               string `json:"secret"`
	URL                  string `json:"url"`
	StagedCredentialsURL string `json:"stagedCredentialsUrl"`
}

// stagedItem is one "App Oauth Staged Credentials" object.
type stagedItem struct {
	ID             string `json:"id"`
	Key            string `json:"key"`
	Secret         string `json:"secret"`
	State          string `json:"state"`
	CreatedBy      string `json:"createdBy"`
	CreatedDate    string `json:"createdDate"`
	ExpirationDate string `json:"expirationDate"`
	URL            string `json:"url"`
}

// decodeList decodes a collection in any of the shapes Salesforce (or its
// observers) have shown: a wrapper object {"<key>":[…], …}, a bare array,
// or a bare item object. An empty body or null is an empty list. isItem
// tells whether a bare object is an item rather than an empty wrapper.
func decodeList[T any](body []byte, key string, isItem func(T) bool) ([]T, error) {
	body = trimJSON(body)
	if len(body) == 0 || bytes.Equal(body, []byte("null")) {
		return nil, nil
	}
	switch body[0] {
	case '[':
		var items []T
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, errDecode
		}
		return items, nil
	case '{':
		if !bytes.Contains(body, []byte(`"`+key+`"`)) {
			// Cannot be a wrapper: decode the bare item in one pass (the
			// hot path of the by-consumer GET).
			var one T
			if err := json.Unmarshal(body, &one); err != nil {
				return nil, errDecode
			}
			if isItem(one) {
				return []T{one}, nil
			}
			return nil, nil
		}
		var wrapper map[string]json.RawMessage
		if err := json.Unmarshal(body, &wrapper); err != nil {
			return nil, errDecode
		}
		if raw, ok := wrapper[key]; ok {
			raw = trimJSON(raw)
			if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
				return nil, nil
			}
			if raw[0] == '{' {
				// A wrapper holding a single object instead of an array.
				var one T
				if err := json.Unmarshal(raw, &one); err != nil {
					return nil, errDecode
				}
				return []T{one}, nil
			}
			var items []T
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, errDecode
			}
			return items, nil
		}
		var one T
		if err := json.Unmarshal(body, &one); err != nil {
			return nil, errDecode
		}
		if isItem(one) {
			return []T{one}, nil
		}
		return nil, nil
	}
	return nil, errDecode
}

var errDecode = errors.New("unexpected response shape")

func decodeUsage(body []byte) ([]usageApp, error) {
	return decodeList(body, "apps", func(a usageApp) bool { return a.Identifier != "" || a.DeveloperName != "" })
}

func decodeConsumers(body []byte) ([]consumerItem, error) {
	return decodeList(body, "consumers", func(c consumerItem) bool { return c.ID != "" || c.Key != "" })
}

func decodeStaged(body []byte) ([]stagedItem, error) {
	return decodeList(body, "stagedCredentials", func(s stagedItem) bool { return s.ID != "" || s.Key != "" })
}

// parseSFTime accepts the date formats Connect REST is known to use; an
// unknown format gives the zero time (the field is informational).
func parseSFTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	return time.Time{}
}

func (s stagedItem) toDomain() rotator.StagedCredential {
	return rotator.StagedCredential{
		ID:      s.ID,
		Status:  rotator.StagedStatus(s.State),
		Key:     s.Key,
		Secret:  rotator.NewSecret(s.Secret),
		Created: parseSFTime(s.CreatedDate),
		Expires: parseSFTime(s.ExpirationDate),
	}
}

// decodeErr wraps a decoding failure of a 2xx body.
func decodeErr(op string, status int, class Class) *APIError {
	return &APIError{Op: op, Status: status, Code: "UNEXPECTED_RESPONSE", Message: "response body has an unexpected shape", Class: class, err: errDecode}
}

func seg(id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", errors.New("salesforce: empty identifier")
	}
	return url.PathEscape(id), nil
}

func segs(ids ...string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		s, err := seg(id)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// FindApp resolves an ECA by developer name: first by walking the usage
// pages (Salesforce's own recipe), then — because usage lists only apps
// "that have OAuth usage data", i.e. an active token — with SOQL on
// ExternalClientApplication. A usage error other than "not listed" (the
// secret-access gate closed, a permission) is returned as is: the caller
// may open the gate and ask again.
func (c *Client) FindApp(ctx context.Context, developerName string) (rotator.AppRef, error) {
	ref, err := c.FindAppByUsage(ctx, developerName)
	if err == nil || !errors.Is(err, rotator.ErrNotFound) {
		return ref, err
	}
	rec, qerr := c.FindECA(ctx, developerName)
	if qerr != nil {
		if errors.Is(qerr, rotator.ErrNotFound) {
			return rotator.AppRef{}, err
		}
		return rotator.AppRef{}, qerr
	}
	c.log.Info("eca found by SOQL (not listed in OAuth usage)", zap.String("eca", rec.DeveloperName))
	return rotator.AppRef{ID: rec.ID, DeveloperName: rec.DeveloperName, Label: rec.Label, Distribution: rec.DistributionState}, nil
}

// FindAppByUsage resolves an ECA through OAuth usage only: it walks the usage pages until an empty page (nextPageUrl is
// present even on the last page).
func (c *Client) FindAppByUsage(ctx context.Context, developerName string) (rotator.AppRef, error) {
	if developerName == "" {
		return rotator.AppRef{}, errors.New("salesforce: find app: empty developer name")
	}
	var folded *usageApp
	prevFirst := ""
	for page := 0; page < maxUsagePages; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(usagePageSize)}}
		status, body, err := c.do(ctx, call{method: http.MethodGet, route: RouteUsage, path: c.dataPath("apps", "oauth", "usage"), query: q, idempotent: true})
		if err != nil {
			return rotator.AppRef{}, err
		}
		apps, derr := decodeUsage(body)
		if derr != nil {
			return rotator.AppRef{}, decodeErr("GET "+RouteUsage, status, ClassFinal)
		}
		if len(apps) == 0 {
			break
		}
		if apps[0].Identifier == prevFirst {
			// The server ignored "page": stop instead of looping.
			break
		}
		prevFirst = apps[0].Identifier
		for i := range apps {
			a := apps[i]
			if a.DeveloperName == developerName {
				return rotator.AppRef{ID: a.Identifier, DeveloperName: a.DeveloperName, Label: a.Label}, nil
			}
			if folded == nil && strings.EqualFold(a.DeveloperName, developerName) {
				folded = &a
			}
		}
	}
	if folded != nil {
		// Developer names are unique case-insensitively in Salesforce.
		return rotator.AppRef{ID: folded.Identifier, DeveloperName: folded.DeveloperName, Label: folded.Label}, nil
	}
	return rotator.AppRef{}, &APIError{Op: "GET " + RouteUsage, Code: "NOT_FOUND", Message: "no external client app named " + strconv.Quote(developerName), Class: ClassNotFound}
}

// Consumers lists the app's OAuth consumers.
func (c *Client) Consumers(ctx context.Context, appID string) ([]rotator.Consumer, error) {
	s, err := segs(appID)
	if err != nil {
		return nil, err
	}
	status, body, err := c.do(ctx, call{method: http.MethodGet, route: RouteConsumers, path: c.dataPath(append([]string{"apps", "oauth", "credentials"}, s...)...), idempotent: true})
	if err != nil {
		return nil, err
	}
	items, derr := decodeConsumers(body)
	if derr != nil {
		return nil, decodeErr("GET "+RouteConsumers, status, ClassFinal)
	}
	out := make([]rotator.Consumer, 0, len(items))
	for _, it := range items {
		out = append(out, rotator.Consumer{ID: it.ID, Key: it.Key, Name: it.Name})
	}
	return out, nil
}

// credentials reads one consumer's credentials with the given part.
func (c *Client) credentials(ctx context.Context, appID, consumerID, part string) (consumerItem, error) {
	s, err := segs(appID, consumerID)
	if err != nil {
		return consumerItem{}, err
	}
	status, body, err := c.do(ctx, call{method: http.MethodGet, route: RouteCredentials, path: c.dataPath(append([]string{"apps", "oauth", "credentials"}, s...)...), query: url.Values{"part": {part}}, idempotent: true})
	if err != nil {
		return consumerItem{}, err
	}
	items, derr := decodeConsumers(body)
	if derr != nil || len(items) == 0 {
		return consumerItem{}, decodeErr("GET "+RouteCredentials, status, ClassFinal)
	}
	// A collection-shaped answer: pick our consumer.
	for _, it := range items {
		if it.ID == consumerID {
			return it, nil
		}
	}
	return items[0], nil
}

// Credentials reads the consumer's primary key and secret
// (part=keyandsecret). A 200 without a secret means Salesforce masked it,
// i.e. the secret-access gate is effectively closed: rotator.ErrPermission.
func (c *Client) Credentials(ctx context.Context, appID, consumerID string) (rotator.Credentials, error) {
	it, err := c.credentials(ctx, appID, consumerID, "keyandsecret")
	if err != nil {
		return rotator.Credentials{}, err
	}
	if it.Key == "" || it.Secret == "" {
		return rotator.Credentials{Key: it.Key}, &APIError{Op: "GET " + RouteCredentials, Status: http.StatusOK, Code: "SECRET_NOT_RETURNED", Message: "response lacks the key or secret (secret access disabled?)", Class: ClassPermission}
	}
	return rotator.Credentials{Key: it.Key, Secret: rotator.NewSecret(it.Secret)}, nil
}

// PrimaryKey reads only the consumer's primary key (part=key).
func (c *Client) PrimaryKey(ctx context.Context, appID, consumerID string) (string, error) {
	it, err := c.credentials(ctx, appID, consumerID, "key")
	if err != nil {
		return "", err
	}
	if it.Key == "" {
		return "", decodeErr("GET "+RouteCredentials, http.StatusOK, ClassFinal)
	}
	return it.Key, nil
}

func (c *Client) stagedPath(appID, consumerID string, extra ...string) (string, error) {
	s, err := segs(append([]string{appID, consumerID}, extra...)...)
	if err != nil {
		return "", err
	}
	parts := []string{"apps", "oauth", "credentials", s[0], s[1], "staged"}
	return c.dataPath(append(parts, s[2:]...)...), nil
}

// Staged lists the consumer's staged slot. Nothing staged (a 404 or an
// empty list, Salesforce's choice is unconfirmed) is an empty slice.
func (c *Client) Staged(ctx context.Context, appID, consumerID string) ([]rotator.StagedCredential, error) {
	p, err := c.stagedPath(appID, consumerID)
	if err != nil {
		return nil, err
	}
	status, body, err := c.do(ctx, call{method: http.MethodGet, route: RouteStaged, path: p, idempotent: true})
	if err != nil {
		if errors.Is(err, rotator.ErrNotFound) {
			return []rotator.StagedCredential{}, nil
		}
		return nil, err
	}
	items, derr := decodeStaged(body)
	if derr != nil {
		return nil, decodeErr("GET "+RouteStaged, status, ClassFinal)
	}
	out := make([]rotator.StagedCredential, 0, len(items))
	for _, it := range items {
		out = append(out, it.toDomain())
	}
	return out, nil
}

// Stage POSTs `{}` to the staged collection (an empty body makes Salesforce
// hang up) and returns the new credential with its secret. It is never
// retried once it may have reached Salesforce: a reset, timeout or 5xx gives
// an error matching rotator.ErrAmbiguous. When the POST succeeded but neither
// its body nor a read-back carries the new secret, the credential (id and
// key, no secret) is returned together with an ErrAmbiguous error of Code
// STAGED_SECRET_MISSING: the caller should delete it and stage again. An
// occupied slot gives rotator.ErrSlotOccupied (a 409, a code listed in
// Options.SlotOccupiedCodes, or any other 4xx while GET staged shows an
// entry).
func (c *Client) Stage(ctx context.Context, appID, consumerID string) (rotator.StagedCredential, error) {
	const op = "POST " + RouteStaged
	p, err := c.stagedPath(appID, consumerID)
	if err != nil {
		return rotator.StagedCredential{}, err
	}
	status, body, err := c.do(ctx, call{method: http.MethodPost, route: RouteStaged, path: p, body: []byte("{}"), contentType: "application/json"})
	if err != nil {
		return rotator.StagedCredential{}, c.stageError(ctx, appID, consumerID, err)
	}
	items, derr := decodeStaged(body)
	if best, ok := pickStaged(items); derr == nil && ok && best.ID != "" && best.Secret != "" {
		return best.toDomain(), nil
	}
	// The POST succeeded but its body did not name the new credential:
	// read the slot back (sfdx-hardis does the same).
	c.log.Warn("staged POST response lacks id or secret, reading slot back", zap.String(logKeyMethod, http.MethodPost), zap.String(logKeyRoute, RouteStaged), zap.Int(logKeyStatus, status))
	list, gerr := c.Staged(ctx, appID, consumerID)
	if gerr != nil {
		return rotator.StagedCredential{}, &APIError{Op: op, Status: status, Code: "STAGED_READBACK_FAILED", Message: "staged credential created but could not be read back", Class: ClassAmbiguous, err: gerr}
	}
	var found *rotator.StagedCredential
	for i := range list {
		if list[i].Status == rotator.StagedActive || list[i].Status == "" {
			if found == nil || (found.Secret.IsZero() && !list[i].Secret.IsZero()) {
				found = &list[i]
			}
		}
	}
	if found == nil {
		return rotator.StagedCredential{}, &APIError{Op: op, Status: status, Code: "STAGED_NOT_FOUND", Message: "staged POST succeeded but no active staged credential is listed", Class: ClassAmbiguous}
	}
	if found.Secret.IsZero() {
		// Salesforce holds a staged credential whose secret we never saw:
		// the caller must delete it and stage again.
		return *found, &APIError{Op: op, Status: status, Code: "STAGED_SECRET_MISSING", Message: "staged credential " + found.ID + " was created but its secret was not returned", Class: ClassAmbiguous}
	}
	return *found, nil
}

// pickStaged chooses the new credential in a POST response: an Active (or
// state-less) entry carrying a secret, else the first one.
func pickStaged(items []stagedItem) (stagedItem, bool) {
	if len(items) == 0 {
		return stagedItem{}, false
	}
	for _, it := range items {
		if (it.State == "" || it.State == string(rotator.StagedActive)) && it.Secret != "" {
			return it, true
		}
	}
	return items[0], true
}

// stageError refines a failed POST staged: a 409, a configured code, or any
// other 4xx while the slot is visibly taken means rotator.ErrSlotOccupied.
func (c *Client) stageError(ctx context.Context, appID, consumerID string, err error) error {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	if apiErr.Class == ClassSlotOccupied || c.slotCodes[apiErr.Code] {
		apiErr.Class = ClassSlotOccupied
		return apiErr
	}
	if apiErr.Class != ClassFinal || apiErr.Status < 400 || apiErr.Status >= 500 {
		return apiErr
	}
	// The occupied-slot error is unconfirmed: look at the slot.
	list, gerr := c.Staged(ctx, appID, consumerID)
	if gerr == nil && len(list) > 0 {
		apiErr.Class = ClassSlotOccupied
	}
	return apiErr
}

// Promote PATCHes {"command":"rotate"} on the staged credential: it becomes
// primary and the previous primary moves to the slot as Rotated. Never
// retried once it may have reached Salesforce.
//
// The response ("App Oauth Staged Credentials", salesforce-eca-api.md §3.6)
// is parsed defensively — its shape is unconfirmed: a bare object or the
// collection wrapper, read bounded like every body. The entry is returned
// only when its state is Rotated (the previous primary now in the slot),
// without its secret; anything else (another state, no id, an empty or
// undecodable body) returns a zero StagedCredential with no error, since
// the rotate itself succeeded, and the caller lists the slot instead.
func (c *Client) Promote(ctx context.Context, appID, consumerID, stagedID string) (rotator.StagedCredential, error) {
	p, err := c.stagedPath(appID, consumerID, stagedID)
	if err != nil {
		return rotator.StagedCredential{}, err
	}
	_, body, err := c.do(ctx, call{method: http.MethodPatch, route: RouteStagedID, path: p, body: []byte(`{"command":"rotate"}`), contentType: "application/json"})
	if err != nil {
		return rotator.StagedCredential{}, err
	}
	return rotatedFrom(body), nil
}

// rotatedFrom picks the Rotated entry out of a PATCH rotate response.
func rotatedFrom(body []byte) rotator.StagedCredential {
	items, err := decodeStaged(body)
	if err != nil {
		return rotator.StagedCredential{}
	}
	for _, it := range items {
		if it.ID != "" && it.Key != "" && strings.EqualFold(strings.TrimSpace(it.State), string(rotator.StagedRotated)) {
			sc := it.toDomain()
			sc.Status, sc.Secret = rotator.StagedRotated, rotator.Secret{}
			return sc
		}
	}
	return rotator.StagedCredential{}
}

// DeleteStaged deletes the staged slot's entry. A 404 (already deleted or
// expired) matches rotator.ErrNotFound. Never retried once it may have
// reached Salesforce.
func (c *Client) DeleteStaged(ctx context.Context, appID, consumerID, stagedID string) error {
	p, err := c.stagedPath(appID, consumerID, stagedID)
	if err != nil {
		return err
	}
	_, _, err = c.do(ctx, call{method: http.MethodDelete, route: RouteStagedID, path: p})
	return err
}
