package sfsim

import (
	"archive/zip"
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file simulates what the metadata strategy of packaged ECAs needs
// (issue 12): ExternalClientApplication.distributionState, the Dev Hub's
// ExtlClntAppGlobalOauthSettings with its rotate flags, listMetadata,
// retrieve/checkRetrieveStatus and deploy/checkDeployStatus with real zips
// and async ids, the Metadata secret-access setting and user permission, and
// the refusal of the staged-credentials endpoints for packaged ECAs.

// PermViewSecretsInMetadata is the user permission "View External Client
// Apps Consumer Secrets in Metadata" (API name assumed).
const PermViewSecretsInMetadata = "ViewExternalClientAppConsumerSecretsInMetadata"

// Metadata type names, folders and suffixes.
const (
	mdTypeECA      = "ExternalClientApplication"
	mdTypeGlobal   = "ExtlClntAppGlobalOauthSettings"
	mdFolderECA    = "externalClientApps"
	mdFolderGlobal = "extlClntAppGlobalOauthSets"
	mdSuffixECA    = ".eca"
	mdSuffixGlobal = ".ecaGlblOauth"
	mdFolderSet    = "settings"
	mdSuffixSet    = ".settings"
	maxSOAPBody    = 4 << 20
)

// MetadataBehavior holds the switches for the Metadata API and packaged
// ECAs. The zero value is the strict default for every field.
type MetadataBehavior struct {
	// PackagedStagedStatus/Code/Message answer the staged-credentials
	// routes for a Packaged ECA. Salesforce's Help says only local ECAs may
	// use that endpoint; the status and code are not documented. Default
	// 400 INVALID_OPERATION with the Help's sentence.
	PackagedStagedStatus  int    `yaml:"packagedStagedStatus" json:"packagedStagedStatus,omitempty"`
	PackagedStagedCode    string `yaml:"packagedStagedCode" json:"packagedStagedCode,omitempty"`
	PackagedStagedMessage string `yaml:"packagedStagedMessage" json:"packagedStagedMessage,omitempty"`
	// PackagedSecretNotInREST refuses part=secret|keyandsecret for a
	// Packaged ECA, like the staged routes (default false: the by-consumer
	// read works; unconfirmed either way).
	PackagedSecretNotInREST bool `yaml:"packagedSecretNotInREST" json:"packagedSecretNotInREST,omitempty"`
	// ConsumerSecretInRetrieve: a retrieve of ExtlClntAppGlobalOauthSettings
	// carries consumerSecret when both gates are open (nil = true). False
	// models the integrators who never saw it.
	ConsumerSecretInRetrieve *bool `yaml:"consumerSecretInRetrieve" json:"consumerSecretInRetrieve,omitempty"`
	// MetadataGateLenient lets retrieve and deploy of the global OAuth
	// settings work without the Metadata secret-access setting and the
	// user permission (they then only hide consumerSecret). Default false:
	// both gates are required for the type, as its documented access rule
	// says.
	MetadataGateLenient bool `yaml:"metadataGateLenient" json:"metadataGateLenient,omitempty"`
	// DeployWithoutIgnoreWarnings accepts a deploy with a rotate flag true
	// and ignoreWarnings false (default false: refused, as documented).
	DeployWithoutIgnoreWarnings bool `yaml:"deployWithoutIgnoreWarnings" json:"deployWithoutIgnoreWarnings,omitempty"`
	// RotateFlagsReset clears the rotate flags after they rotated (default
	// false: the flags persist, so a later deploy still carrying true
	// rotates again, as integrators report).
	RotateFlagsReset bool `yaml:"rotateFlagsReset" json:"rotateFlagsReset,omitempty"`
	// MetadataRotationOverlap is how long the previous pair keeps working
	// after a metadata rotation (default 0: the secret "is replaced").
	MetadataRotationOverlap Duration `yaml:"metadataRotationOverlap" json:"metadataRotationOverlap,omitempty"`
	// DeployDelay is how long (sim clock) a deploy stays InProgress before it
	// takes effect (default 0: done at the first status check).
	DeployDelay Duration `yaml:"deployDelay" json:"deployDelay,omitempty"`
	// RetrieveDelay is the same for a retrieve.
	RetrieveDelay Duration `yaml:"retrieveDelay" json:"retrieveDelay,omitempty"`
	// Faults of the metadata path.
	// DeployComponentError makes every deploy of ExtlClntAppGlobalOauthSettings
	// fail with this componentFailures problem.
	DeployComponentError string `yaml:"deployComponentError" json:"deployComponentError,omitempty"`
	// DeployNeverFinishes keeps every deploy InProgress for ever, without effect.
	DeployNeverFinishes bool `yaml:"deployNeverFinishes" json:"deployNeverFinishes,omitempty"`
	// DeployResetAfterAccept resets the connection instead of answering the
	// first N deploys, after they were accepted (they run and take effect).
	DeployResetAfterAccept int `yaml:"deployResetAfterAccept" json:"deployResetAfterAccept,omitempty"`
}

const (
	defaultPackagedCode    = "INVALID_OPERATION"
	defaultPackagedMessage = "This workflow doesn't apply to packaged external client apps. Only local external client apps can use the OAuth Staged Credentials endpoint."
)

func (m MetadataBehavior) withDefaults() MetadataBehavior {
	if m.PackagedStagedStatus == 0 {
		m.PackagedStagedStatus = http.StatusBadRequest
	}
	if m.PackagedStagedCode == "" {
		m.PackagedStagedCode = defaultPackagedCode
	}
	if m.PackagedStagedMessage == "" {
		m.PackagedStagedMessage = defaultPackagedMessage
	}
	return m
}

func (m MetadataBehavior) validate(p string) []error {
	var errs []error
	if m.PackagedStagedStatus != 0 && (m.PackagedStagedStatus < 400 || m.PackagedStagedStatus > 599) {
		errs = append(errs, fmt.Errorf("%s.packagedStagedStatus: want a 4xx or 5xx status", p))
	}
	if m.MetadataRotationOverlap < 0 || m.DeployDelay < 0 || m.RetrieveDelay < 0 {
		errs = append(errs, fmt.Errorf("%s: metadata durations must not be negative", p))
	}
	if m.DeployResetAfterAccept < 0 {
		errs = append(errs, fmt.Errorf("%s.deployResetAfterAccept: must not be negative", p))
	}
	return errs
}

func (m MetadataBehavior) secretInRetrieve() bool {
	return m.ConsumerSecretInRetrieve == nil || *m.ConsumerSecretInRetrieve
}

// mdField is one element of the global OAuth settings the simulator keeps
// verbatim (callbackUrl, flow flags, label, …).
type mdField struct {
	Name  string `json:"name"`
	Value string `json:"value"` // inner XML
}

// ecaMetadata is the Metadata side of one ECA.
type ecaMetadata struct {
	Distribution string    `json:"distribution"`
	GlobalName   string    `json:"globalName"`
	Fields       []mdField `json:"fields"`
	RotateKey    bool      `json:"rotateKey,omitempty"`
	RotateSecret bool      `json:"rotateSecret,omitempty"`
	Rotations    int       `json:"rotations,omitempty"`
}

func newECAMetadata(ec ECAConfig, e *eca) ecaMetadata {
	m := ecaMetadata{Distribution: ec.Distribution(), GlobalName: ec.GlobalOAuthName}
	if m.GlobalName == "" {
		m.GlobalName = ec.DeveloperName + "_glbl"
	}
	m.Fields = []mdField{
		{"callbackUrl", "https://login.salesforce.com/services/oauth2/success"},
		{"isClientCredentialsFlowEnabled", strconv.FormatBool(ec.ClientCredentialsUser != "")},
		{"isConsumerSecretOptional", "false"},
		{"isIntrospectAllTokens", "false"},
		{"isPkceRequired", "true"},
		{"isSecretRequiredForRefreshToken", "true"},
		{"label", esc(e.Label)},
	}
	return m
}

// mdState holds the async jobs (not persisted: a restarted simulator
// forgets them, as a checkDeployStatus of an unknown id shows).
type mdState struct {
	jobs    map[string]*mdJob
	order   []string
	resets  int // deploys answered with a reset so far
	deploys []DeployRecord
}

// maxJobs bounds the remembered async jobs.
const maxJobs = 1000

// mdJob is one retrieve or deploy.
type mdJob struct {
	id       string
	deploy   bool
	org      string
	readyAt  time.Time
	never    bool
	done     bool
	status   string
	failures []mdFailure
	zip      []byte // retrieve result
	apply    func(now time.Time)
	record   int // index into deploys, deploy only
}

type mdFailure struct {
	typ, name, problem string
}

// DeployRecord is one deploy the simulator accepted, for tests.
type DeployRecord struct {
	ID           string    `json:"id"`
	Org          string    `json:"org"`
	Components   []string  `json:"components"` // Type/fullName
	RotateKey    bool      `json:"rotateKey"`
	RotateSecret bool      `json:"rotateSecret"`
	Accepted     time.Time `json:"accepted"`
	Status       string    `json:"status"`
	// Files are the deployed component files by zip path (tests only; they
	// may hold a consumer secret, so they are never serialised).
	Files map[string][]byte `json:"-"`
}

// MetadataDeploys returns every deploy accepted so far, oldest first.
func (s *Sim) MetadataDeploys() []DeployRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleMDLocked(s.nowLocked())
	return append([]DeployRecord(nil), s.md.deploys...)
}

// DistributionState returns an ECA's distribution state ("" when unknown).
func (s *Sim) DistributionState(org, ecaName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.org(org); o != nil {
		if e := o.ownECA(ecaName); e != nil {
			return e.MD.Distribution
		}
	}
	return ""
}

// MetadataSecretAccess reports the org's enableConsumerSecretApiAccess.
func (s *Sim) MetadataSecretAccess(org string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org(org)
	return o != nil && o.MetadataSecretAccess
}

// SetMetadataSecretAccess changes the org's enableConsumerSecretApiAccess.
func (s *Sim) SetMetadataSecretAccess(org string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.org(org); o != nil {
		o.MetadataSecretAccess = on
		s.saveLocked()
	}
}

// RotateFlags returns the persisted rotate flags of an ECA's global OAuth
// settings.
func (s *Sim) RotateFlags(org, ecaName string) (key, secret bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.org(org); o != nil {
		if e := o.ownECA(ecaName); e != nil {
			return e.MD.RotateKey, e.MD.RotateSecret
		}
	}
	return false, false
}

// GlobalOAuthFields returns the kept fields of an ECA's global OAuth
// settings (what a deploy would reset if it omitted them).
func (s *Sim) GlobalOAuthFields(org, ecaName string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	if o := s.org(org); o != nil {
		if e := o.ownECA(ecaName); e != nil {
			for _, f := range e.MD.Fields {
				out[f.Name] = f.Value
			}
		}
	}
	return out
}

// refusePackagedLocked answers the staged routes (and, per switch, secret
// reads) of a Packaged ECA with the configured error. s.mu is held.
func (s *Sim) refusePackagedLocked(w http.ResponseWriter, e *eca, rt route, part string) bool {
	if e.MD.Distribution != DistributionPackaged {
		return false
	}
	b := s.behavior.MetadataBehavior
	staged := rt.name == RouteStaged || rt.name == RouteStagedItem
	secret := rt.name == RouteConsumer && part != "key" && b.PackagedSecretNotInREST
	if !staged && !secret {
		return false
	}
	writeRESTError(w, b.PackagedStagedStatus, b.PackagedStagedCode, b.PackagedStagedMessage)
	return true
}

// settleMD finishes the deploys and retrieves that are due.
func (s *Sim) settleMD() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleMDLocked(s.nowLocked())
}

func (s *Sim) settleMDLocked(now time.Time) {
	for _, id := range s.md.order {
		j := s.md.jobs[id]
		if j == nil || j.done || j.never || now.Before(j.readyAt) {
			continue
		}
		j.done = true
		if len(j.failures) > 0 {
			j.status = "Failed"
		} else {
			j.status = "Succeeded"
			if j.apply != nil {
				j.apply(now)
			}
		}
		if j.deploy {
			s.md.deploys[j.record].Status = j.status
		}
	}
}

func (s *Sim) addJobLocked(j *mdJob) {
	if s.md.jobs == nil {
		s.md.jobs = map[string]*mdJob{}
	}
	if len(s.md.order) >= maxJobs {
		old := s.md.order[0]
		s.md.order = s.md.order[1:]
		delete(s.md.jobs, old)
	}
	s.md.jobs[j.id] = j
	s.md.order = append(s.md.order, j.id)
}

// mdRequest is the body of the Metadata operations this file serves.
type mdRequest struct {
	XMLName xml.Name
	Body    struct {
		Op struct {
			XMLName   xml.Name
			Type      string   `xml:"type"`
			FullNames []string `xml:"fullNames"`
			Queries   []struct {
				Type string `xml:"type"`
			} `xml:"queries"`
			Request struct {
				Types []struct {
					Members []string `xml:"members"`
					Name    string   `xml:"name"`
				} `xml:"unpackaged>types"`
			} `xml:"retrieveRequest"`
			AsyncID string `xml:"asyncProcessId"`
			ZipFile string `xml:"ZipFile"`
			Options struct {
				IgnoreWarnings string `xml:"ignoreWarnings"`
			} `xml:"DeployOptions"`
		} `xml:",any"`
	} `xml:"Body"`
}

// serveMetadataLocked serves listMetadata, retrieve, checkRetrieveStatus,
// deploy, checkDeployStatus and readMetadata of ExternalClientApplication.
// It returns false for what soap.go serves itself. s.mu is held.
func (s *Sim) serveMetadataLocked(w http.ResponseWriter, o *org, u *UserConfig, req soapRequest, raw []byte) bool {
	switch req.Op {
	case "readMetadata":
		if req.Type != mdTypeECA {
			return false
		}
	case "listMetadata", "retrieve", "checkRetrieveStatus", "deploy", "checkDeployStatus":
	default:
		return false
	}
	var mr mdRequest
	if err := xml.Unmarshal(raw, &mr); err != nil {
		writeSOAPFault(w, http.StatusInternalServerError, "soapenv:Client", "malformed request")
		return true
	}
	op := mr.Body.Op
	now := s.nowLocked()
	b := s.behavior.MetadataBehavior
	gates := o.MetadataSecretAccess && u.has(PermViewSecretsInMetadata)
	switch req.Op {
	case "readMetadata":
		var out strings.Builder
		out.WriteString("<readMetadataResponse><result>")
		for _, n := range op.FullNames {
			e := o.ownECA(strings.TrimSpace(n))
			if e == nil || e.DeveloperName != strings.TrimSpace(n) {
				out.WriteString(`<records xsi:nil="true"/>`)
				continue
			}
			fmt.Fprintf(&out, `<records xsi:type="%s"><fullName>%s</fullName><distributionState>%s</distributionState><label>%s</label><orgScopedExternalApp>%s</orgScopedExternalApp></records>`,
				mdTypeECA, esc(e.DeveloperName), e.MD.Distribution, esc(e.Label), esc(o.OrgID+":"+e.DeveloperName))
		}
		out.WriteString("</result></readMetadataResponse>")
		writeSOAP(w, out.String())
	case "listMetadata":
		var out strings.Builder
		out.WriteString("<listMetadataResponse>")
		for _, q := range op.Queries {
			for _, e := range o.ECAs {
				name, folder, suffix := "", "", ""
				switch strings.TrimSpace(q.Type) {
				case mdTypeECA:
					name, folder, suffix = e.DeveloperName, mdFolderECA, mdSuffixECA
				case mdTypeGlobal:
					name, folder, suffix = e.MD.GlobalName, mdFolderGlobal, mdSuffixGlobal
				default:
					continue
				}
				fmt.Fprintf(&out, `<result><fileName>%s/%s%s</fileName><fullName>%s</fullName><id>%s</id><type>%s</type></result>`,
					folder, esc(name), suffix, esc(name), e.ID, strings.TrimSpace(q.Type))
			}
		}
		out.WriteString("</listMetadataResponse>")
		writeSOAP(w, out.String())
	case "retrieve":
		j := &mdJob{id: s.ids.id("09S", 18), org: o.Name, readyAt: now.Add(time.Duration(b.RetrieveDelay))}
		files := map[string][]byte{}
		var members []string
		for _, t := range op.Request.Types {
			typ := strings.TrimSpace(t.Name)
			for _, m := range t.Members {
				m = strings.TrimSpace(m)
				members = append(members, typ+":"+m)
				data, problem := s.retrieveComponentLocked(o, typ, m, gates, b)
				if problem != "" {
					j.failures = append(j.failures, mdFailure{typ, m, problem})
					continue
				}
				files[data.name] = data.body
			}
		}
		if len(members) == 0 {
			j.failures = append(j.failures, mdFailure{"", "", "No package.xml members were requested"})
		}
		j.zip = buildZip(files)
		s.addJobLocked(j)
		writeSOAP(w, `<retrieveResponse><result><done>false</done><id>`+j.id+`</id><state>Queued</state></result></retrieveResponse>`)
	case "checkRetrieveStatus", "checkDeployStatus":
		s.settleMDLocked(now)
		j := s.md.jobs[strings.TrimSpace(op.AsyncID)]
		if j == nil || j.deploy != (req.Op == "checkDeployStatus") || j.org != o.Name {
			writeSOAPFault(w, http.StatusInternalServerError, "sf:INVALID_ID_FIELD", "INVALID_ID_FIELD: invalid id "+esc(strings.TrimSpace(op.AsyncID)))
			return true
		}
		writeSOAP(w, jobStatusXML(req.Op, j))
	case "deploy":
		s.deployLocked(w, o, gates, b, op.ZipFile, op.Options.IgnoreWarnings, now)
	}
	return true
}

type mdFile struct {
	name string
	body []byte
}

// retrieveComponentLocked renders one requested component.
func (s *Sim) retrieveComponentLocked(o *org, typ, name string, gates bool, b MetadataBehavior) (mdFile, string) {
	switch typ {
	case "Settings", "ExternalClientAppSettings":
		if name != settingsFullName {
			return mdFile{}, "Entity of type '" + typ + "' named '" + name + "' cannot be found"
		}
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<ExternalClientAppSettings xmlns="%s">
    <enableClientSecretInRestApiAccess>%t</enableClientSecretInRestApiAccess>
    <enableConsumerSecretApiAccess>%t</enableConsumerSecretApiAccess>
</ExternalClientAppSettings>
`, metadataNS, o.SecretAccess, o.MetadataSecretAccess)
		return mdFile{mdFolderSet + "/" + name + mdSuffixSet, []byte(body)}, ""
	case mdTypeECA:
		e := o.ownECA(name)
		if e == nil || e.DeveloperName != name {
			return mdFile{}, "Entity of type '" + typ + "' named '" + name + "' cannot be found"
		}
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<ExternalClientApplication xmlns="%s">
    <distributionState>%s</distributionState>
    <isProtected>false</isProtected>
    <label>%s</label>
</ExternalClientApplication>
`, metadataNS, e.MD.Distribution, esc(e.Label))
		return mdFile{mdFolderECA + "/" + name + mdSuffixECA, []byte(body)}, ""
	case mdTypeGlobal:
		e := o.ecaByGlobalName(name)
		if e == nil {
			return mdFile{}, "Entity of type '" + typ + "' named '" + name + "' cannot be found"
		}
		if !gates && !b.MetadataGateLenient {
			return mdFile{}, "You can't retrieve " + typ + " without the org setting \"Allow access to OAuth consumer secrets via Metadata API\" and the user permission \"View External Client Apps Consumer Secrets in Metadata\""
		}
		c := e.Consumers[0]
		fields := map[string]string{
			"consumerKey":                esc(c.Key),
			"externalClientApplication":  esc(e.DeveloperName),
			"shouldRotateConsumerKey":    strconv.FormatBool(e.MD.RotateKey),
			"shouldRotateConsumerSecret": strconv.FormatBool(e.MD.RotateSecret),
		}
		if gates && b.secretInRetrieve() {
			fields["consumerSecret"] = esc(c.Secret)
		}
		if e.JWTCertificatePEM != "" {
			fields["certificate"] = esc(e.JWTCertificatePEM)
		}
		for _, f := range e.MD.Fields {
			fields[f.Name] = f.Value
		}
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		sort.Strings(names)
		var body strings.Builder
		body.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<" + mdTypeGlobal + ` xmlns="` + metadataNS + `">` + "\n")
		for _, n := range names {
			body.WriteString("    <" + n + ">" + fields[n] + "</" + n + ">\n")
		}
		body.WriteString("</" + mdTypeGlobal + ">\n")
		return mdFile{mdFolderGlobal + "/" + name + mdSuffixGlobal, []byte(body.String())}, ""
	}
	return mdFile{}, "Unsupported metadata type in the simulator: " + typ
}

// ecaByGlobalName finds the ECA whose global OAuth settings are named name.
func (o *org) ecaByGlobalName(name string) *eca {
	for _, e := range o.ECAs {
		if e.MD.GlobalName == name {
			return e
		}
	}
	return nil
}

// buildZip renders files as a zip (sorted names, for stable output).
func buildZip(files map[string][]byte) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, _ := zw.Create(n)
		_, _ = w.Write(files[n])
	}
	_ = zw.Close()
	return buf.Bytes()
}

func jobStatusXML(op string, j *mdJob) string {
	var b strings.Builder
	status := j.status
	switch {
	case status == "" && j.never:
		status = "InProgress"
	case status == "":
		status = "Pending"
	}
	fmt.Fprintf(&b, "<%sResponse><result>", op)
	if j.deploy && len(j.failures) > 0 && j.done {
		b.WriteString("<details>")
		for _, f := range j.failures {
			fmt.Fprintf(&b, "<componentFailures><componentType>%s</componentType><fullName>%s</fullName><problem>%s</problem><problemType>Error</problemType><success>false</success></componentFailures>",
				esc(f.typ), esc(f.name), esc(f.problem))
		}
		b.WriteString("</details>")
	}
	fmt.Fprintf(&b, "<done>%t</done><id>%s</id>", j.done, j.id)
	if !j.deploy && j.done {
		for _, f := range j.failures {
			fmt.Fprintf(&b, "<messages><fileName>%s</fileName><problem>%s</problem></messages>", esc(f.typ+"/"+f.name), esc(f.problem))
		}
	}
	fmt.Fprintf(&b, "<status>%s</status><success>%t</success>", status, j.done && len(j.failures) == 0)
	if !j.deploy && j.done && len(j.failures) == 0 {
		b.WriteString("<zipFile>" + base64.StdEncoding.EncodeToString(j.zip) + "</zipFile>")
	}
	fmt.Fprintf(&b, "</result></%sResponse>", op)
	return b.String()
}

// errDeployZip is a deploy zip the simulator cannot read.
var errDeployZip = errors.New("malformed deploy zip")

// readDeployZip reads a deploy zip: package.xml and component files at the
// root (singlePackage) or under one folder.
func readDeployZip(b64 string) (map[string][]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil || len(raw) == 0 || len(raw) > maxSOAPBody {
		return nil, errDeployZip
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil || len(zr.File) > 100 {
		return nil, errDeployZip
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, errDeployZip
		}
		data, err := io.ReadAll(io.LimitReader(rc, 1<<20+1))
		_ = rc.Close()
		if err != nil || len(data) > 1<<20 {
			return nil, errDeployZip
		}
		name := path.Clean(f.Name)
		if i := strings.IndexByte(name, '/'); i >= 0 && strings.Count(name, "/") == 2 {
			name = name[i+1:] // unpackaged/<folder>/<file>
		}
		out[name] = data
	}
	if _, ok := out["package.xml"]; !ok {
		return nil, fmt.Errorf("%w: no package.xml", errDeployZip)
	}
	return out, nil
}

// componentXML is a top-level element list of a component file.
type componentXML struct {
	XMLName xml.Name
	Fields  []struct {
		XMLName xml.Name
		Inner   string `xml:",innerxml"`
	} `xml:",any"`
}

// deployLocked accepts a deploy: it validates the zip at once (an
// unreadable zip is a fault, as Salesforce answers), queues the job and
// answers its id. Component problems surface in checkDeployStatus; the
// effect (rotation, settings) happens when the job is done.
func (s *Sim) deployLocked(w http.ResponseWriter, o *org, gates bool, b MetadataBehavior, zipB64, ignoreWarnings string, now time.Time) {
	files, err := readDeployZip(zipB64)
	if err != nil {
		writeSOAPFault(w, http.StatusInternalServerError, "sf:INVALID_ZIP", "INVALID_ZIP: "+err.Error())
		return
	}
	ignore, _ := strconv.ParseBool(strings.TrimSpace(ignoreWarnings))
	j := &mdJob{id: s.ids.id("0Af", 18), deploy: true, org: o.Name, readyAt: now.Add(time.Duration(b.DeployDelay)), never: b.DeployNeverFinishes}
	rec := DeployRecord{ID: j.id, Org: o.Name, Accepted: now, Status: "Pending", Files: files}
	var applies []func(now time.Time)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "package.xml" {
			continue
		}
		folder, file, _ := strings.Cut(n, "/")
		var c componentXML
		if err := xml.Unmarshal(files[n], &c); err != nil {
			j.failures = append(j.failures, mdFailure{"", n, "Error parsing file: " + "malformed XML"})
			continue
		}
		fields := map[string]string{}
		var order []mdField
		for _, f := range c.Fields {
			fields[f.XMLName.Local] = f.Inner
			order = append(order, mdField{f.XMLName.Local, f.Inner})
		}
		switch {
		case folder == mdFolderGlobal && strings.HasSuffix(file, mdSuffixGlobal):
			name := strings.TrimSuffix(file, mdSuffixGlobal)
			rec.Components = append(rec.Components, mdTypeGlobal+"/"+name)
			e := o.ecaByGlobalName(name)
			rk, _ := strconv.ParseBool(strings.TrimSpace(fields["shouldRotateConsumerKey"]))
			rs, _ := strconv.ParseBool(strings.TrimSpace(fields["shouldRotateConsumerSecret"]))
			rec.RotateKey, rec.RotateSecret = rec.RotateKey || rk, rec.RotateSecret || rs
			switch {
			case e == nil:
				j.failures = append(j.failures, mdFailure{mdTypeGlobal, name, "In field: fullName - no " + mdTypeGlobal + " named " + name + " found"})
				continue
			case !gates && !b.MetadataGateLenient:
				j.failures = append(j.failures, mdFailure{mdTypeGlobal, name, "You can't deploy " + mdTypeGlobal + " without the org setting \"Allow access to OAuth consumer secrets via Metadata API\" and the user permission \"View External Client Apps Consumer Secrets in Metadata\""})
				continue
			case strings.TrimSpace(fields["externalClientApplication"]) != e.DeveloperName:
				j.failures = append(j.failures, mdFailure{mdTypeGlobal, name, "In field: externalClientApplication - must name " + e.DeveloperName})
				continue
			case (rk || rs) && !ignore && !b.DeployWithoutIgnoreWarnings:
				j.failures = append(j.failures, mdFailure{mdTypeGlobal, name, "To rotate the consumer key or secret, deploy with the ignore warnings option (ignoreWarnings=true)"})
				continue
			case b.DeployComponentError != "":
				j.failures = append(j.failures, mdFailure{mdTypeGlobal, name, b.DeployComponentError})
				continue
			}
			// A deploy replaces the whole component: kept fields are
			// exactly the deployed ones. consumerKey is immutable (a
			// different value is silently ignored) and a deployed
			// consumerSecret does not become the secret.
			var kept []mdField
			for _, f := range order {
				switch f.Name {
				case "consumerKey", "consumerSecret", "externalClientApplication", "shouldRotateConsumerKey", "shouldRotateConsumerSecret", "certificate":
				default:
					kept = append(kept, f)
				}
			}
			applies = append(applies, func(now time.Time) {
				e.MD.Fields = kept
				e.MD.RotateKey, e.MD.RotateSecret = rk, rs
				if rk || rs {
					s.rotateConsumerLocked(e, rk, rs, now)
					if b.RotateFlagsReset {
						e.MD.RotateKey, e.MD.RotateSecret = false, false
					}
				}
			})
		case folder == mdFolderSet && file == settingsFullName+mdSuffixSet:
			rec.Components = append(rec.Components, "ExternalClientAppSettings/"+settingsFullName)
			rest, restOK := fields["enableClientSecretInRestApiAccess"]
			md, mdOK := fields["enableConsumerSecretApiAccess"]
			applies = append(applies, func(time.Time) {
				if restOK {
					o.SecretAccess, _ = strconv.ParseBool(strings.TrimSpace(rest))
				}
				if mdOK {
					o.MetadataSecretAccess, _ = strconv.ParseBool(strings.TrimSpace(md))
				}
			})
		case folder == mdFolderECA && strings.HasSuffix(file, mdSuffixECA):
			name := strings.TrimSuffix(file, mdSuffixECA)
			rec.Components = append(rec.Components, mdTypeECA+"/"+name)
			e := o.ownECA(name)
			if e == nil {
				j.failures = append(j.failures, mdFailure{mdTypeECA, name, "no " + mdTypeECA + " named " + name})
				continue
			}
			if ds := strings.TrimSpace(fields["distributionState"]); ds != "" && ds != e.MD.Distribution {
				j.failures = append(j.failures, mdFailure{mdTypeECA, name, "In field: distributionState - cannot be changed by a deploy"})
			}
		default:
			j.failures = append(j.failures, mdFailure{"", n, "Unsupported file in the simulator: " + n})
		}
	}
	j.apply = func(now time.Time) {
		for _, a := range applies {
			a(now)
		}
		s.saveLocked()
	}
	j.record = len(s.md.deploys)
	s.md.deploys = append(s.md.deploys, rec)
	s.addJobLocked(j)
	if b.DeployDelay == 0 && !j.never {
		s.settleMDLocked(now)
	}
	if s.md.resets < b.DeployResetAfterAccept {
		s.md.resets++
		if rw, ok := w.(*respWriter); ok {
			rw.abort()
			return
		}
	}
	writeSOAP(w, `<deployResponse><result><done>false</done><id>`+j.id+`</id><state>Queued</state></result></deployResponse>`)
}

// rotateConsumerLocked gives the ECA's first consumer a new secret (and
// key): every org using the ECA then accepts only the new pair, the old one
// for MetadataRotationOverlap (kept in the consumer's slot as Rotated, where
// token requests already look; a Packaged ECA's slot is unreachable by
// REST).
func (s *Sim) rotateConsumerLocked(e *eca, rotateKey, rotateSecret bool, now time.Time) {
	c := e.Consumers[0]
	oldKey, oldSecret := c.Key, c.Secret
	if rotateKey {
		c.Key = s.ids.key()
	}
	if rotateSecret {
		c.Secret = s.ids.secret()
	}
	c.Since = now
	e.MD.Rotations++
	if ov := time.Duration(s.behavior.MetadataRotationOverlap); ov > 0 {
		if c.Slot == nil || c.Slot.State != StateActive {
			c.Slot = &stagedCred{ID: s.ids.id("0Pq", 18), State: StateRotated, Key: oldKey, Secret: oldSecret, CreatedBy: "metadata", Created: now, Expires: now.Add(ov)}
		}
	} else if c.Slot != nil && c.Slot.State == StateRotated {
		c.Slot = nil
	}
}

// overlapSecret reports whether secret is the previous secret of a
// metadata rotation that changed only the secret, still inside
// MetadataRotationOverlap (kept in the slot as Rotated under the same key).
func (m credMatch) overlapSecret(secret string) bool {
	st := m.consumer.Slot
	return st != nil && st.State == StateRotated && st.CreatedBy == "metadata" && st.Key == m.consumer.Key &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(st.Secret)) == 1
}
