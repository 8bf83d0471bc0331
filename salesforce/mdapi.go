package salesforce

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// This file is the Metadata API (SOAP) surface the metadata strategy needs
// for packaged ECAs: readMetadata of ExternalClientApplication
// (distributionState), listMetadata, retrieve + checkRetrieveStatus and
// deploy + checkDeployStatus of ExtlClntAppGlobalOauthSettings, and the
// Metadata secret-access setting
// (ExternalClientAppSettings.enableConsumerSecretApiAccess).

var _ rotator.MetadataIssuer = (*Client)(nil)

// mdSecretField is the org setting "Allow access to OAuth consumer secrets
// via Metadata API" (deprecated in the v66 docs, but still the documented
// gate of consumerSecret in ExtlClntAppGlobalOauthSettings).
const mdSecretField = "enableConsumerSecretApiAccess"

// DefaultMetadataPoll paces checkRetrieveStatus polls: the first poll at
// once, then 200ms doubling to 5s, at most 60 polls.
func DefaultMetadataPoll(attempt int) (bool, time.Duration) {
	return rotator.Backoff{Base: 200 * time.Millisecond, Max: 5 * time.Second, Attempts: 59}.NextAttempt(attempt)
}

// maxListed bounds the components listMetadata may return that the client
// will look at.
const maxListed = 2000

// mdResponse covers every Metadata response this file reads. Local names
// only; unknown elements are ignored.
type mdResponse struct {
	XMLName xml.Name `xml:"Envelope"`
	Body    struct {
		Read *struct {
			Records []struct {
				Nil               string `xml:"http://www.w3.org/2001/XMLSchema-instance nil,attr"`
				FullName          string `xml:"fullName"`
				DistributionState string `xml:"distributionState"`
				RESTAccess        string `xml:"enableClientSecretInRestApiAccess"`
				MDAccess          string `xml:"enableConsumerSecretApiAccess"`
			} `xml:"result>records"`
		} `xml:"readMetadataResponse"`
		List *struct {
			Results []struct {
				FullName string `xml:"fullName"`
				Type     string `xml:"type"`
				FileName string `xml:"fileName"`
			} `xml:"result"`
		} `xml:"listMetadataResponse"`
		Retrieve *asyncResult `xml:"retrieveResponse>result"`
		Deploy   *asyncResult `xml:"deployResponse>result"`
		Update   *struct {
			Results []struct {
				Success string `xml:"success"`
				Errors  []struct {
					Message    string `xml:"message"`
					StatusCode string `xml:"statusCode"`
				} `xml:"errors"`
			} `xml:"result"`
		} `xml:"updateMetadataResponse"`
	} `xml:"Body"`
}

type asyncResult struct {
	ID    string `xml:"id"`
	Done  string `xml:"done"`
	State string `xml:"state"`
}

// statusEnvelope decodes checkRetrieveStatus / checkDeployStatus answers.
type statusEnvelope struct {
	XMLName xml.Name `xml:"Envelope"`
	Body    struct {
		Retrieve *statusResult `xml:"checkRetrieveStatusResponse>result"`
		Deploy   *statusResult `xml:"checkDeployStatusResponse>result"`
	} `xml:"Body"`
}

type statusResult struct {
	ID              string `xml:"id"`
	Done            string `xml:"done"`
	Success         string `xml:"success"`
	Status          string `xml:"status"`
	ZipFile         string `xml:"zipFile"`
	ErrorMessage    string `xml:"errorMessage"`
	ErrorStatusCode string `xml:"errorStatusCode"`
	Messages        []struct {
		FileName string `xml:"fileName"`
		Problem  string `xml:"problem"`
	} `xml:"messages"`
	Failures []struct {
		FullName      string `xml:"fullName"`
		ComponentType string `xml:"componentType"`
		Problem       string `xml:"problem"`
		ProblemType   string `xml:"problemType"`
	} `xml:"details>componentFailures"`
}

func decodeXML(b []byte, v any) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		return errors.New("not a SOAP envelope")
	}
	return nil
}

// mdCall sends one Metadata SOAP operation. idempotent=false (deploy) means a
// failure after the request may have reached Salesforce is ClassAmbiguous
// and never retried.
func (c *Client) mdCall(ctx context.Context, op, body string, idempotent bool) (int, []byte, error) {
	return c.do(ctx, call{
		method:     http.MethodPost,
		route:      RouteSOAP + " " + op,
		path:       "/services/Soap/m/" + c.version,
		soapBody:   func(token string) []byte { return soapEnvelope(token, body) },
		soap:       true,
		idempotent: idempotent,
	})
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// DistributionState reads ExternalClientApplication.distributionState with
// readMetadata. An absent field is reported as Local: Salesforce omits
// defaults, and a packaged ECA always says so.
func (c *Client) DistributionState(ctx context.Context, eca string) (string, error) {
	const op = "POST " + RouteSOAP + " readMetadata"
	body := `<met:readMetadata><met:type>` + ecaType + `</met:type><met:fullNames>` + xmlText(eca) + `</met:fullNames></met:readMetadata>`
	status, b, err := c.mdCall(ctx, "readMetadata", body, true)
	if err != nil {
		return "", err
	}
	var r mdResponse
	if decodeXML(b, &r) != nil || r.Body.Read == nil {
		return "", decodeErr(op, status, ClassFinal)
	}
	for _, rec := range r.Body.Read.Records {
		if rec.Nil == "true" || rec.FullName == "" {
			continue
		}
		if !strings.EqualFold(rec.FullName, eca) {
			continue
		}
		switch st := strings.TrimSpace(rec.DistributionState); st {
		case "":
			return rotator.DistributionLocal, nil
		default:
			return st, nil
		}
	}
	return "", &APIError{Op: op, Status: status, Code: "NOT_FOUND", Message: "no ExternalClientApplication " + truncate(eca), Class: ClassNotFound}
}

// listGlobalOAuth lists the full names of every ExtlClntAppGlobalOauthSettings.
func (c *Client) listGlobalOAuth(ctx context.Context) ([]string, error) {
	const op = "POST " + RouteSOAP + " listMetadata"
	body := `<met:listMetadata><met:queries><met:type>` + globalOAuthType + `</met:type></met:queries><met:asOfVersion>` + c.version + `</met:asOfVersion></met:listMetadata>`
	status, b, err := c.mdCall(ctx, "listMetadata", body, true)
	if err != nil {
		return nil, err
	}
	var r mdResponse
	if decodeXML(b, &r) != nil || r.Body.List == nil {
		return nil, decodeErr(op, status, ClassFinal)
	}
	var names []string
	for i, res := range r.Body.List.Results {
		if i >= maxListed {
			break
		}
		if n := strings.TrimSpace(res.FullName); n != "" && (res.Type == "" || res.Type == globalOAuthType) {
			names = append(names, n)
		}
	}
	return names, nil
}

// candidates orders listed names by how likely they belong to eca: the
// exact name, then names with the ECA as prefix (<ECA>_glbl, <ECA>GlblOAuth).
func candidates(names []string, eca string) []string {
	var exact, prefixed []string
	for _, n := range names {
		switch {
		case strings.EqualFold(n, eca):
			exact = append(exact, n)
		case len(n) > len(eca) && strings.EqualFold(n[:len(eca)], eca):
			prefixed = append(prefixed, n)
		}
	}
	return append(exact, prefixed...)
}

// GlobalOAuth finds the ECA's global OAuth settings component with
// listMetadata (names carry suffixes such as <ECA>_glbl, so they are not
// guessed), retrieves it, and checks that its externalClientApplication
// names the ECA. When no listed name starts with the ECA's name, every
// listed component is retrieved (bounded) and matched by that field.
func (c *Client) GlobalOAuth(ctx context.Context, eca string) (rotator.OAuthSettings, error) {
	const op = "retrieve " + globalOAuthType
	names, err := c.listGlobalOAuth(ctx)
	if err != nil {
		return rotator.OAuthSettings{}, err
	}
	try := candidates(names, eca)
	if len(try) == 0 {
		try = names
	}
	if len(try) > maxZipFiles-1 {
		try = try[:maxZipFiles-1]
	}
	if len(try) == 0 {
		return rotator.OAuthSettings{}, &APIError{Op: op, Code: "NOT_FOUND", Message: "listMetadata lists no " + globalOAuthType, Class: ClassNotFound}
	}
	files, err := c.retrieve(ctx, globalOAuthType, try)
	if err != nil {
		return rotator.OAuthSettings{}, err
	}
	for _, name := range try {
		doc, ok := componentFile(files, globalOAuthFolder, name, globalOAuthSuffix)
		if !ok {
			continue
		}
		d, err := parseGlobalOAuth(doc)
		if err != nil {
			return rotator.OAuthSettings{}, &APIError{Op: op, Code: "MALFORMED_COMPONENT", Message: err.Error(), Class: ClassFinal}
		}
		if d.ECA != "" && !strings.EqualFold(d.ECA, eca) {
			continue
		}
		if d.ECA == "" && !strings.EqualFold(name, eca) && len(try) > 1 {
			continue
		}
		return rotator.OAuthSettings{
			FullName: name, ECA: d.ECA, Key: d.Key, Secret: rotator.NewSecret(d.Secret),
			RotateKey: xmlBool(d.RotateKey), RotateSecret: xmlBool(d.RotateSecret), Doc: rotator.NewSecret(string(doc)),
		}, nil
	}
	return rotator.OAuthSettings{}, &APIError{Op: op, Code: "NOT_FOUND", Message: "no " + globalOAuthType + " names externalClientApplication " + truncate(eca), Class: ClassNotFound}
}

// retrieve runs retrieve + checkRetrieveStatus for members of one type and
// returns the zip's files. Polling is bounded by Options.MetadataPoll.
func (c *Client) retrieve(ctx context.Context, typ string, members []string) (map[string][]byte, error) {
	const op = "POST " + RouteSOAP + " retrieve"
	var b strings.Builder
	b.WriteString(`<met:retrieve><met:retrieveRequest><met:apiVersion>` + c.version + `</met:apiVersion><met:singlePackage>true</met:singlePackage><met:unpackaged><met:types>`)
	for _, m := range members {
		b.WriteString(`<met:members>` + xmlText(m) + `</met:members>`)
	}
	b.WriteString(`<met:name>` + typ + `</met:name></met:types><met:version>` + c.version + `</met:version></met:unpackaged></met:retrieveRequest></met:retrieve>`)
	status, body, err := c.mdCall(ctx, "retrieve", b.String(), true)
	if err != nil {
		return nil, err
	}
	var r mdResponse
	if decodeXML(body, &r) != nil || r.Body.Retrieve == nil || strings.TrimSpace(r.Body.Retrieve.ID) == "" {
		return nil, decodeErr(op, status, ClassFinal)
	}
	id := strings.TrimSpace(r.Body.Retrieve.ID)
	poll := c.opts.MetadataPoll
	if poll == nil {
		poll = DefaultMetadataPoll
	}
	for attempt := 1; ; attempt++ {
		st, err := c.checkStatus(ctx, "checkRetrieveStatus", id, true)
		if err != nil {
			return nil, err
		}
		if st.done {
			if !st.success {
				return nil, &APIError{Op: "checkRetrieveStatus", Code: firstNonEmpty(st.code, "RETRIEVE_FAILED"), Message: truncate(strings.Join(st.problems, "; ")), Class: ClassFinal}
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.zip))
			if err != nil {
				return nil, &APIError{Op: "checkRetrieveStatus", Code: "MALFORMED_ZIP", Message: "zipFile is not base64", Class: ClassFinal}
			}
			files, err := zipFiles(raw)
			if err != nil {
				return nil, &APIError{Op: "checkRetrieveStatus", Code: "MALFORMED_ZIP", Message: err.Error(), Class: ClassFinal}
			}
			return files, nil
		}
		retry, wait := poll(attempt)
		if !retry {
			return nil, &APIError{Op: "checkRetrieveStatus", Code: "RETRIEVE_TIMEOUT", Message: "retrieve " + id + " not done after " + strconv.Itoa(attempt) + " polls", Class: ClassTransient}
		}
		if err := c.opts.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// asyncStatus is a decoded checkRetrieveStatus / checkDeployStatus answer.
type asyncStatus struct {
	id, status, zip, code string
	done, success         bool
	problems              []string
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (c *Client) checkStatus(ctx context.Context, opName, id string, retrieve bool) (asyncStatus, error) {
	op := "POST " + RouteSOAP + " " + opName
	var body string
	if retrieve {
		body = `<met:checkRetrieveStatus><met:asyncProcessId>` + xmlText(id) + `</met:asyncProcessId><met:includeZip>true</met:includeZip></met:checkRetrieveStatus>`
	} else {
		body = `<met:checkDeployStatus><met:asyncProcessId>` + xmlText(id) + `</met:asyncProcessId><met:includeDetails>true</met:includeDetails></met:checkDeployStatus>`
	}
	status, b, err := c.mdCall(ctx, opName, body, true)
	if err != nil {
		return asyncStatus{}, err
	}
	var env statusEnvelope
	if decodeXML(b, &env) != nil {
		return asyncStatus{}, decodeErr(op, status, ClassFinal)
	}
	res := env.Body.Deploy
	if retrieve {
		res = env.Body.Retrieve
	}
	if res == nil {
		return asyncStatus{}, decodeErr(op, status, ClassFinal)
	}
	st := asyncStatus{
		id: strings.TrimSpace(res.ID), status: strings.TrimSpace(res.Status), zip: res.ZipFile,
		code: strings.TrimSpace(res.ErrorStatusCode), done: xmlBool(res.Done), success: xmlBool(res.Success),
	}
	if retrieve && st.done && st.status != "" {
		// checkRetrieveStatus has no "success" before API 31 in some
		// answers: a Succeeded status is enough.
		st.success = st.success || st.status == "Succeeded"
	}
	if m := strings.TrimSpace(res.ErrorMessage); m != "" {
		st.problems = append(st.problems, m)
	}
	for _, f := range res.Failures {
		st.problems = append(st.problems, fmt.Sprintf("%s %s: %s", strings.TrimSpace(f.ComponentType), strings.TrimSpace(f.FullName), strings.TrimSpace(f.Problem)))
	}
	for _, m := range res.Messages {
		st.problems = append(st.problems, fmt.Sprintf("%s: %s", strings.TrimSpace(m.FileName), strings.TrimSpace(m.Problem)))
	}
	return st, nil
}

// Deploy deploys s.Doc back with the rotate flags set as given and every
// other byte of the component unchanged, with ignoreWarnings (Salesforce
// requires it whenever a rotate flag is true), rollbackOnError and
// singlePackage. A deploy is not idempotent: a failure after the request
// may have reached Salesforce is ClassAmbiguous, never retried here.
func (c *Client) Deploy(ctx context.Context, s rotator.OAuthSettings, rotateKey, rotateSecret bool) (string, error) {
	const op = "POST " + RouteSOAP + " deploy"
	doc, err := setRotateFlags([]byte(s.Doc.Reveal()), rotateKey, rotateSecret)
	if err != nil {
		return "", &APIError{Op: op, Code: "MALFORMED_COMPONENT", Message: err.Error(), Class: ClassFinal}
	}
	z, err := deployZip(s.FullName, c.version, doc)
	if err != nil {
		return "", &APIError{Op: op, Code: "MALFORMED_COMPONENT", Message: err.Error(), Class: ClassFinal}
	}
	body := `<met:deploy><met:ZipFile>` + base64.StdEncoding.EncodeToString(z) + `</met:ZipFile><met:DeployOptions>` +
		`<met:ignoreWarnings>true</met:ignoreWarnings><met:rollbackOnError>true</met:rollbackOnError>` +
		`<met:singlePackage>true</met:singlePackage></met:DeployOptions></met:deploy>`
	status, b, err := c.mdCall(ctx, "deploy", body, false)
	if err != nil {
		return "", err
	}
	var r mdResponse
	if decodeXML(b, &r) != nil || r.Body.Deploy == nil || strings.TrimSpace(r.Body.Deploy.ID) == "" {
		// Accepted (2xx) but unreadable: the deploy may be running.
		return "", decodeErr(op, status, ClassAmbiguous)
	}
	return strings.TrimSpace(r.Body.Deploy.ID), nil
}

// DeployStatus is one checkDeployStatus (includeDetails) call.
func (c *Client) DeployStatus(ctx context.Context, id string) (rotator.DeployStatus, error) {
	st, err := c.checkStatus(ctx, "checkDeployStatus", id, false)
	if err != nil {
		return rotator.DeployStatus{}, err
	}
	return rotator.DeployStatus{ID: firstNonEmpty(st.id, id), Done: st.done, Success: st.success, Status: st.status, Errors: st.problems}, nil
}

// MetadataSecretAccess reads ExternalClientAppSettings.enableConsumerSecretApiAccess
// ("Allow access to OAuth consumer secrets via Metadata API"); absent is false.
func (c *Client) MetadataSecretAccess(ctx context.Context) (bool, error) {
	const op = "POST " + RouteSOAP + " readMetadata"
	status, b, err := c.mdCall(ctx, "readMetadata", readSettingsBody(), true)
	if err != nil {
		return false, err
	}
	var r mdResponse
	if decodeXML(b, &r) != nil || r.Body.Read == nil {
		return false, decodeErr(op, status, ClassFinal)
	}
	for _, rec := range r.Body.Read.Records {
		if rec.FullName == "" || rec.FullName == settingsFullName {
			return xmlBool(rec.MDAccess), nil
		}
	}
	return false, nil
}

// SetMetadataSecretAccess sets enableConsumerSecretApiAccess with
// updateMetadata (an absolute value, so retried like a read).
func (c *Client) SetMetadataSecretAccess(ctx context.Context, on bool) error {
	const op = "POST " + RouteSOAP + " updateMetadata"
	body := `<met:updateMetadata><met:metadata xsi:type="met:` + settingsType + `"><met:fullName>` + settingsFullName +
		`</met:fullName><met:` + mdSecretField + `>` + strconv.FormatBool(on) + `</met:` + mdSecretField + `></met:metadata></met:updateMetadata>`
	status, b, err := c.mdCall(ctx, "updateMetadata", body, true)
	if err != nil {
		return err
	}
	var r mdResponse
	if decodeXML(b, &r) != nil || r.Body.Update == nil || len(r.Body.Update.Results) == 0 {
		return decodeErr(op, status, ClassFinal)
	}
	res := r.Body.Update.Results[0]
	if xmlBool(res.Success) {
		return nil
	}
	e := &APIError{Op: op, Status: status, Code: "UPDATE_FAILED", Class: ClassFinal}
	if len(res.Errors) > 0 {
		e.Code = strings.TrimSpace(res.Errors[0].StatusCode)
		e.Message = truncate(res.Errors[0].Message)
		e.Class = classifyREST(0, e.Code, true)
	}
	return e
}
