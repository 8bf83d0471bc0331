package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Routes of the discovery resources (doctor and the SOQL fallback).
const (
	RouteVersions = "/services/data/"
	RouteQuery    = "/query"
	RouteLimits   = "/limits"
	RouteIdentity = "{id}"
)

// ECARecord is an ExternalClientApplication row read with SOQL.
type ECARecord struct {
	ID                string // the app id used in credential URLs (0x…)
	DeveloperName     string
	Label             string
	DistributionState string // Local or Packaged
}

// soqlQuote quotes s as a SOQL string literal.
func soqlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// Query runs a SOQL query (GET /services/data/vXX.X/query) and returns its
// records, following nextRecordsUrl for at most a few pages.
func (c *Client) Query(ctx context.Context, soql string) ([]map[string]any, error) {
	var out []map[string]any
	path, q := c.dataPath("query"), url.Values{"q": {soql}}
	for page := 0; page < 20; page++ {
		status, body, err := c.do(ctx, call{method: http.MethodGet, route: RouteQuery, path: path, query: q, idempotent: true})
		if err != nil {
			return nil, err
		}
		var res struct {
			Done           bool             `json:"done"`
			NextRecordsURL string           `json:"nextRecordsUrl"`
			Records        []map[string]any `json:"records"`
		}
		if json.Unmarshal(trimJSON(body), &res) != nil {
			return nil, decodeErr("GET "+RouteQuery, status, ClassFinal)
		}
		out = append(out, res.Records...)
		if res.Done || res.NextRecordsURL == "" || !strings.HasPrefix(res.NextRecordsURL, "/services/data/") {
			return out, nil
		}
		path, q = res.NextRecordsURL, nil
	}
	return out, nil
}

// FindECA reads the ExternalClientApplication named developerName with
// SOQL: its id, label and distribution state. ErrNotFound when absent.
func (c *Client) FindECA(ctx context.Context, developerName string) (ECARecord, error) {
	if developerName == "" {
		return ECARecord{}, errors.New("salesforce: find eca: empty developer name")
	}
	rows, err := c.Query(ctx, "SELECT Id, DeveloperName, MasterLabel, DistributionState FROM ExternalClientApplication WHERE DeveloperName = "+soqlQuote(developerName))
	if err != nil {
		return ECARecord{}, err
	}
	for _, r := range rows {
		rec := ECARecord{ID: str(r["Id"]), DeveloperName: str(r["DeveloperName"]), Label: str(r["MasterLabel"]), DistributionState: str(r["DistributionState"])}
		if strings.EqualFold(rec.DeveloperName, developerName) && rec.ID != "" {
			return rec, nil
		}
	}
	return ECARecord{}, &APIError{Op: "GET " + RouteQuery, Code: "NOT_FOUND", Message: "no ExternalClientApplication named " + strconv.Quote(developerName), Class: ClassNotFound}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// Version is one entry of GET /services/data/.
type Version struct {
	Label   string `json:"label"`
	URL     string `json:"url"`
	Version string `json:"version"`
}

// Versions lists the REST API versions the org serves (GET
// /services/data/, on the instance).
func (c *Client) Versions(ctx context.Context) ([]Version, error) {
	status, body, err := c.do(ctx, call{method: http.MethodGet, route: RouteVersions, path: "/services/data/", idempotent: true})
	if err != nil {
		return nil, err
	}
	var vs []Version
	if json.Unmarshal(trimJSON(body), &vs) != nil {
		return nil, decodeErr("GET "+RouteVersions, status, ClassFinal)
	}
	return vs, nil
}

// Limit is one entry of GET /services/data/vXX.X/limits.
type Limit struct {
	Max       int `json:"Max"`
	Remaining int `json:"Remaining"`
}

// Limits reads the org's limits (DailyApiRequests and others).
func (c *Client) Limits(ctx context.Context) (map[string]Limit, error) {
	status, body, err := c.do(ctx, call{method: http.MethodGet, route: RouteLimits, path: c.dataPath("limits"), idempotent: true})
	if err != nil {
		return nil, err
	}
	var out map[string]Limit
	if json.Unmarshal(trimJSON(body), &out) != nil {
		return nil, decodeErr("GET "+RouteLimits, status, ClassFinal)
	}
	return out, nil
}

// Identity is what the token response's identity URL says about the
// logged-in user.
type Identity struct {
	UserID         string `json:"user_id"`
	OrganizationID string `json:"organization_id"`
	Username       string `json:"username"`
	DisplayName    string `json:"display_name"`
	Active         bool   `json:"active"`
}

// Identity GETs the identity URL ("id" of the token response) with the
// session's token.
func (c *Client) Identity(ctx context.Context) (Identity, error) {
	const op = "GET " + RouteIdentity
	s, err := c.session(ctx)
	if err != nil {
		return Identity{}, err
	}
	u, err := checkBaseURL(s.id)
	if err != nil {
		return Identity{}, &APIError{Op: op, Code: "BAD_IDENTITY_URL", Message: "token response id rejected: " + err.Error(), Class: ClassFinal}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Identity{}, &APIError{Op: op, Code: "BAD_IDENTITY_URL", Class: ClassFinal}
	}
	req.Header.Set("Authorization", "Bearer "+s.tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		e, _ := transportError(op, err, true)
		return Identity{}, e
	}
	defer resp.Body.Close()
	b, rerr := readBounded(resp.Body, c.opts.MaxBodyBytes)
	if rerr != nil {
		return Identity{}, &APIError{Op: op, Status: resp.StatusCode, Class: ClassTransient, err: redactErr(rerr)}
	}
	if resp.StatusCode/100 != 2 {
		return Identity{}, &APIError{Op: op, Status: resp.StatusCode, Code: "IDENTITY_REFUSED", Message: truncate(scrub(string(b), s.tok.AccessToken)), Class: classifyREST(resp.StatusCode, "", true)}
	}
	var id Identity
	if json.Unmarshal(trimJSON(b), &id) != nil {
		return Identity{}, decodeErr(op, resp.StatusCode, ClassFinal)
	}
	return id, nil
}

// UserPermissions reads, with SOQL, which of perms (PermissionSet field
// names such as "PermissionsApiEnabled") any permission set assigned to
// userID grants. A field the org does not know is an INVALID_FIELD error.
func (c *Client) UserPermissions(ctx context.Context, userID string, perms []string) (map[string]bool, error) {
	fields := make([]string, 0, len(perms)+1)
	fields = append(fields, "PermissionSet.Name")
	for _, p := range perms {
		fields = append(fields, "PermissionSet."+p)
	}
	rows, err := c.Query(ctx, "SELECT "+strings.Join(fields, ", ")+" FROM PermissionSetAssignment WHERE AssigneeId = "+soqlQuote(userID))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range perms {
		out[p] = false
	}
	for _, r := range rows {
		ps, _ := r["PermissionSet"].(map[string]any)
		for _, p := range perms {
			if b, _ := ps[p].(bool); b {
				out[p] = true
			}
		}
	}
	return out, nil
}
