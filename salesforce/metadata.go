package salesforce

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Metadata names of the org setting that gates secret access over REST.
const (
	settingsType     = "ExternalClientAppSettings"
	settingsFullName = "ExternalClientApp"
	settingsField    = "enableClientSecretInRestApiAccess"
	metadataNS       = "http://soap.sforce.com/2006/04/metadata"
)

// soapEnvelope renders a Metadata API request. The session id is XML-escaped
// into the SessionHeader; this is the only place the token enters a body.
func soapEnvelope(token string, body string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:met="` + metadataNS + `">` +
		`<soapenv:Header><met:SessionHeader><met:sessionId>`)
	_ = xml.EscapeText(&b, []byte(token))
	b.WriteString(`</met:sessionId></met:SessionHeader></soapenv:Header><soapenv:Body>`)
	b.WriteString(body)
	b.WriteString(`</soapenv:Body></soapenv:Envelope>`)
	return b.Bytes()
}

func readSettingsBody() string {
	return `<met:readMetadata><met:type>` + settingsType + `</met:type><met:fullNames>` + settingsFullName + `</met:fullNames></met:readMetadata>`
}

func updateSettingsBody(on bool) string {
	return `<met:updateMetadata><met:metadata xsi:type="met:` + settingsType + `"><met:fullName>` + settingsFullName +
		`</met:fullName><met:` + settingsField + `>` + strconv.FormatBool(on) + `</met:` + settingsField + `></met:metadata></met:updateMetadata>`
}

// soapFault is a SOAP 1.1 fault; namespaces are ignored (local names match).
type soapFault struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
}

// soapResponse covers the two responses we read.
type soapResponse struct {
	XMLName xml.Name `xml:"Envelope"`
	Body    struct {
		Fault *soapFault `xml:"Fault"`
		Read  *struct {
			Result struct {
				Records []struct {
					FullName string `xml:"fullName"`
					Enabled  string `xml:"enableClientSecretInRestApiAccess"`
					// Metadata is the (deprecated in 66.0) Metadata API
					// secret-access setting; nil when not returned.
					Metadata *string `xml:"enableConsumerSecretApiAccess"`
				} `xml:"records"`
			} `xml:"result"`
		} `xml:"readMetadataResponse"`
		Update *struct {
			Results []struct {
				FullName string `xml:"fullName"`
				Success  string `xml:"success"`
				Errors   []struct {
					Message    string `xml:"message"`
					StatusCode string `xml:"statusCode"`
				} `xml:"errors"`
			} `xml:"result"`
		} `xml:"updateMetadataResponse"`
	} `xml:"Body"`
}

// decodeSOAP parses a Metadata API response envelope.
func decodeSOAP(b []byte) (*soapResponse, error) {
	var r soapResponse
	d := xml.NewDecoder(bytes.NewReader(b))
	// Entities other than the XML built-ins are refused by encoding/xml
	// (Strict), which also keeps entity expansion attacks out.
	d.Strict = true
	if err := d.Decode(&r); err != nil {
		return nil, errors.New("not a SOAP envelope")
	}
	return &r, nil
}

// parseSOAPFault returns the fault code (without its "sf:" prefix) and
// string of a SOAP fault body, or "" when there is none.
func parseSOAPFault(b []byte) (code, msg string) {
	r, err := decodeSOAP(b)
	if err != nil || r.Body.Fault == nil {
		return "", ""
	}
	code = strings.TrimSpace(r.Body.Fault.Code)
	if i := strings.LastIndexByte(code, ':'); i >= 0 {
		code = code[i+1:]
	}
	return code, truncate(r.Body.Fault.String)
}

func (c *Client) soapCall(ctx context.Context, op string, body string) (int, []byte, error) {
	return c.do(ctx, call{
		method:     http.MethodPost,
		route:      RouteSOAP + " " + op,
		path:       "/services/Soap/m/" + c.version,
		soapBody:   func(token string) []byte { return soapEnvelope(token, body) },
		soap:       true,
		idempotent: true, // read, and an absolute (not toggling) update
	})
}

// SecretAccess reads ExternalClientAppSettings.enableClientSecretInRestApiAccess
// with readMetadata. An absent field (Salesforce omits defaults) is false.
func (c *Client) SecretAccess(ctx context.Context) (bool, error) {
	const op = "POST " + RouteSOAP + " readMetadata"
	status, b, err := c.soapCall(ctx, "readMetadata", readSettingsBody())
	if err != nil {
		return false, err
	}
	r, derr := decodeSOAP(b)
	if derr != nil || r.Body.Read == nil {
		return false, decodeErr(op, status, ClassFinal)
	}
	for _, rec := range r.Body.Read.Result.Records {
		if rec.FullName == "" || rec.FullName == settingsFullName {
			on, _ := strconv.ParseBool(strings.TrimSpace(rec.Enabled))
			return on, nil
		}
	}
	return false, nil
}

// SecretAccessSettings reads both secret-access settings of
// ExternalClientAppSettings: enableClientSecretInRestApiAccess (REST, the
// one ecarotator toggles) and enableConsumerSecretApiAccess (Metadata API,
// deprecated in 66.0; metadataKnown is false when Salesforce omits it).
func (c *Client) SecretAccessSettings(ctx context.Context) (rest, metadata, metadataKnown bool, err error) {
	const op = "POST " + RouteSOAP + " readMetadata"
	status, b, err := c.soapCall(ctx, "readMetadata", readSettingsBody())
	if err != nil {
		return false, false, false, err
	}
	r, derr := decodeSOAP(b)
	if derr != nil || r.Body.Read == nil {
		return false, false, false, decodeErr(op, status, ClassFinal)
	}
	for _, rec := range r.Body.Read.Result.Records {
		if rec.FullName == "" || rec.FullName == settingsFullName {
			rest, _ = strconv.ParseBool(strings.TrimSpace(rec.Enabled))
			if rec.Metadata != nil {
				metadata, _ = strconv.ParseBool(strings.TrimSpace(*rec.Metadata))
				metadataKnown = true
			}
			return rest, metadata, metadataKnown, nil
		}
	}
	return false, false, false, nil
}

// SetSecretAccess sets ExternalClientAppSettings.enableClientSecretInRestApiAccess
// with updateMetadata. The call sets an absolute value, so it is idempotent
// and retried like a read.
func (c *Client) SetSecretAccess(ctx context.Context, on bool) error {
	const op = "POST " + RouteSOAP + " updateMetadata"
	status, b, err := c.soapCall(ctx, "updateMetadata", updateSettingsBody(on))
	if err != nil {
		return err
	}
	r, derr := decodeSOAP(b)
	if derr != nil || r.Body.Update == nil || len(r.Body.Update.Results) == 0 {
		return decodeErr(op, status, ClassFinal)
	}
	res := r.Body.Update.Results[0]
	if ok, _ := strconv.ParseBool(strings.TrimSpace(res.Success)); ok {
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
