package sfsim

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Staged credential states, as Salesforce spells them.
const (
	StateActive  = "Active"
	StateRotated = "Rotated"
	StateExpired = "Expired"
)

// ErrNotFound is returned by lookups of an org, ECA or consumer that does not
// exist.
var ErrNotFound = errors.New("sfsim: not found")

// org is the mutable model of one org. Its exported fields are the state file
// format.
type org struct {
	Name         string `json:"name"`
	OrgID        string `json:"orgId"`
	DevHub       bool   `json:"devHub,omitempty"`
	Port         int    `json:"port,omitempty"`
	SecretAccess bool   `json:"secretAccess"`
	// SecretAccessSince is when updateMetadata last switched SecretAccess
	// on (sim clock); secrets are returned from SettingDelay later.
	SecretAccessSince time.Time `json:"secretAccessSince,omitempty"`
	// MetadataSecretAccess is enableConsumerSecretApiAccess.
	MetadataSecretAccess bool              `json:"metadataSecretAccess,omitempty"`
	APILimit             int               `json:"apiLimit"`
	PropagationDelay     *Duration         `json:"propagationDelay,omitempty"`
	Users                []UserConfig      `json:"users,omitempty"`
	ECAs                 []*eca            `json:"ecas,omitempty"`
	Installs             []string          `json:"installs,omitempty"`
	RunAs                map[string]string `json:"runAs,omitempty"`
	// UsageDay is the sim-day (UTC midnight) Usage counts for.
	UsageDay time.Time `json:"usageDay"`
	Usage    int       `json:"usage"`
}

// eca is one External Client App owned by a Dev Hub.
type eca struct {
	DeveloperName         string      `json:"developerName"`
	Label                 string      `json:"label,omitempty"`
	ID                    string      `json:"id"`
	ClientCredentialsUser string      `json:"clientCredentialsUser,omitempty"`
	JWTCertificatePEM     string      `json:"jwtCertificatePEM,omitempty"`
	PreAuthorizedUsers    []string    `json:"preAuthorizedUsers,omitempty"`
	DistributionState     string      `json:"distributionState,omitempty"`
	Consumers             []*consumer `json:"consumers"`
	// Global OAuth settings and distribution state (mdapi.go).
	MD ecaMetadata `json:"metadata"`

	pub *rsa.PublicKey
}

// consumer is one OAuth consumer: a primary pair and one staged slot.
type consumer struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Key    string `json:"key"`
	Secret string `json:"secret"`
	// Since is when the primary pair became primary (zero for seeded pairs,
	// which are therefore fully propagated).
	Since time.Time   `json:"since"`
	Slot  *stagedCred `json:"slot,omitempty"`
}

// stagedCred is the entry in a consumer's staged slot.
type stagedCred struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Key       string    `json:"key"`
	Secret    string    `json:"secret"`
	CreatedBy string    `json:"createdBy"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
}

// ConsumerState is a snapshot of one consumer for tests and the admin API.
type ConsumerState struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Key          string       `json:"key"`
	Secret       string       `json:"secret,omitempty"`
	PrimarySince time.Time    `json:"primarySince"`
	Staged       *StagedState `json:"staged,omitempty"`
}

// StagedState is a snapshot of a consumer's staged slot.
type StagedState struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Key       string    `json:"key"`
	Secret    string    `json:"secret,omitempty"`
	CreatedBy string    `json:"createdBy"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
}

// snapshot copies c; secrets are kept only when reveal is set.
func (c *consumer) snapshot(reveal bool) ConsumerState {
	cs := ConsumerState{ID: c.ID, Name: c.Name, Key: c.Key, PrimarySince: c.Since}
	if reveal {
		cs.Secret = c.Secret
	}
	if st := c.Slot; st != nil {
		cs.Staged = &StagedState{ID: st.ID, State: st.State, Key: st.Key, CreatedBy: st.CreatedBy,
			Created: st.Created, Expires: st.Expires}
		if reveal {
			cs.Staged.Secret = st.Secret
		}
	}
	return cs
}

// lapse applies the passage of sim time to the slot: a Rotated pair past its
// expiry is removed, an Active entry past its expiry becomes Expired (and stays
// in the slot until deleted, so a leftover is visible to the daemon).
func (c *consumer) lapse(now time.Time) {
	st := c.Slot
	if st == nil || now.Before(st.Expires) {
		return
	}
	switch st.State {
	case StateRotated:
		c.Slot = nil
	case StateActive:
		st.State = StateExpired
	}
}

// buildOrgs turns the config into the mutable model, generating missing ids
// and credentials.
func buildOrgs(cfg []OrgConfig, ids *idSource) ([]*org, error) {
	out := make([]*org, 0, len(cfg))
	for _, oc := range cfg {
		o := &org{
			Name: oc.Name, OrgID: oc.OrgID, DevHub: oc.DevHub, Port: oc.Port,
			SecretAccess: oc.SecretAccess, MetadataSecretAccess: oc.MetadataSecretAccess, APILimit: oc.APILimit, PropagationDelay: oc.PropagationDelay,
			Installs: append([]string(nil), oc.Installs...), RunAs: oc.RunAs,
		}
		if o.OrgID == "" {
			o.OrgID = ids.id("00D", 18)
		}
		if o.APILimit == 0 {
			o.APILimit = DefaultAPILimit
		}
		for _, u := range oc.Users {
			if u.UserID == "" {
				u.UserID = ids.id("005", 18)
			}
			u.Permissions = append([]string(nil), u.Permissions...)
			o.Users = append(o.Users, u)
		}
		for _, ec := range oc.ECAs {
			e := &eca{
				DeveloperName: ec.DeveloperName, Label: ec.Label, ID: ec.ID,
				ClientCredentialsUser: ec.ClientCredentialsUser, JWTCertificatePEM: ec.JWTCertificatePEM,
				PreAuthorizedUsers: append([]string(nil), ec.PreAuthorizedUsers...),
				DistributionState:  ec.Distribution(),
			}
			if e.ID == "" {
				e.ID = ids.id("0xI", 18)
			}
			if e.Label == "" {
				e.Label = strings.ReplaceAll(e.DeveloperName, "_", " ")
			}
			for i, cc := range ec.Consumers {
				c := &consumer{ID: cc.ID, Name: cc.Name, Key: cc.Key, Secret: cc.Secret}
				if c.ID == "" {
					c.ID = ids.id("888", 18)
				}
				if c.Name == "" {
					c.Name = e.DeveloperName
					if i > 0 {
						c.Name = fmt.Sprintf("%s_%d", e.DeveloperName, i+1)
					}
				}
				if c.Key == "" {
					c.Key = ids.key()
				}
				if c.Secret == "" {
					c.Secret = ids.secret()
				}
				e.Consumers = append(e.Consumers, c)
			}
			e.MD = newECAMetadata(ec, e)
			if err := e.init(); err != nil {
				return nil, err
			}
			o.ECAs = append(o.ECAs, e)
		}
		out = append(out, o)
	}
	return out, nil
}

// init parses derived fields after building or loading.
func (e *eca) init() error {
	e.pub = nil
	if e.JWTCertificatePEM == "" {
		return nil
	}
	pub, err := parsePublicKey(e.JWTCertificatePEM)
	if err != nil {
		return fmt.Errorf("sfsim: ECA %s: %w", e.DeveloperName, err)
	}
	e.pub = pub
	return nil
}

// parsePublicKey reads an RSA public key from a CERTIFICATE, PUBLIC KEY or
// RSA PUBLIC KEY PEM block.
func parsePublicKey(s string) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var pub any
	switch blk.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		pub = cert.PublicKey
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		pub = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA public key: %w", err)
		}
		pub = k
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", blk.Type)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key (only RS256 is supported)")
	}
	return rk, nil
}

// user returns the org's user by username.
func (o *org) user(username string) *UserConfig {
	for i := range o.Users {
		if o.Users[i].Username == username {
			return &o.Users[i]
		}
	}
	return nil
}

// userByID returns the org's user by id.
func (o *org) userByID(id string) *UserConfig {
	for i := range o.Users {
		if o.Users[i].UserID == id {
			return &o.Users[i]
		}
	}
	return nil
}

// has reports whether u holds the permission.
func (u *UserConfig) has(perm string) bool {
	for _, p := range u.Permissions {
		if p == perm {
			return true
		}
	}
	return false
}

// ownECA finds an ECA owned by o by id or developer name.
func (o *org) ownECA(idOrName string) *eca {
	for _, e := range o.ECAs {
		if e.ID == idOrName || e.DeveloperName == idOrName {
			return e
		}
	}
	return nil
}

// consumer finds a consumer by id.
func (e *eca) consumer(id string) *consumer {
	for _, c := range e.Consumers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// idSource generates Salesforce-looking identifiers from a random source.
type idSource struct{ r io.Reader }

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// chars returns n random characters from alphabet.
func (g *idSource) chars(alphabet string, n int) string {
	buf := make([]byte, n)
	if _, err := io.ReadFull(g.r, buf); err != nil {
		// A failing random source is a broken program, not a request error.
		panic(fmt.Sprintf("sfsim: random source: %v", err))
	}
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf)
}

// id returns an id of total length n starting with prefix.
func (g *idSource) id(prefix string, n int) string {
	return prefix + g.chars(base62, n-len(prefix))
}

// key returns a new consumer key (3MVG…).
func (g *idSource) key() string { return "3MVG9" + g.chars(base62+"._", 80) }

// secret returns a new consumer secret (64 upper-case hex digits).
func (g *idSource) secret() string { return g.chars("0123456789ABCDEF", 64) }

// token returns a new opaque access token for the org.
func (g *idSource) token(orgID string) string { return orgID + "!AQ" + g.chars(base62+"._", 96) }
