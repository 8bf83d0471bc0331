package sfsim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Metadata names the simulator understands.
const (
	settingsType     = "ExternalClientAppSettings"
	settingsFullName = "ExternalClientApp"
	metadataNS       = "http://soap.sforce.com/2006/04/metadata"
)

// soapRequest is a parsed Metadata API call.
type soapRequest struct {
	SessionID string
	// Op is the body element's local name (readMetadata, updateMetadata, …).
	Op        string
	Type      string   // readMetadata
	FullNames []string // readMetadata
	Records   []soapRecord
}

// soapRecord is one updateMetadata record.
type soapRecord struct {
	Type     string
	FullName string
	// SecretAccess is enableClientSecretInRestApiAccess, nil when absent.
	SecretAccess *bool
	// BadValue holds an unparsable enableClientSecretInRestApiAccess value.
	BadValue string
	// MetadataAccess is enableConsumerSecretApiAccess, nil when absent.
	MetadataAccess *bool
}

type soapEnvelopeXML struct {
	XMLName xml.Name `xml:"Envelope"`
	Header  struct {
		SessionHeader struct {
			SessionID string `xml:"sessionId"`
		} `xml:"SessionHeader"`
	} `xml:"Header"`
	Body struct {
		Ops []soapOpXML `xml:",any"`
	} `xml:"Body"`
}

type soapOpXML struct {
	XMLName   xml.Name
	Type      string          `xml:"type"`
	FullNames []string        `xml:"fullNames"`
	Metadata  []soapRecordXML `xml:"metadata"`
}

type soapRecordXML struct {
	XSIType      string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
	FullName     string `xml:"fullName"`
	SecretAccess *struct {
		Value string `xml:",chardata"`
	} `xml:"enableClientSecretInRestApiAccess"`
	MetadataAccess *struct {
		Value string `xml:",chardata"`
	} `xml:"enableConsumerSecretApiAccess"`
}

// errSOAPParse is wrapped by parseSOAP errors.
var errSOAPParse = errors.New("malformed SOAP request")

// parseSOAP reads a Metadata API SOAP envelope (at most 1 MiB).
func parseSOAP(r io.Reader) (soapRequest, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return soapRequest{}, fmt.Errorf("%w: %v", errSOAPParse, err)
	}
	if len(b) > 1<<20 {
		return soapRequest{}, fmt.Errorf("%w: body too large", errSOAPParse)
	}
	var env soapEnvelopeXML
	dec := xml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&env); err != nil {
		return soapRequest{}, fmt.Errorf("%w: %v", errSOAPParse, err)
	}
	if len(env.Body.Ops) != 1 {
		return soapRequest{}, fmt.Errorf("%w: want one operation in the body, got %d", errSOAPParse, len(env.Body.Ops))
	}
	op := env.Body.Ops[0]
	req := soapRequest{
		SessionID: strings.TrimSpace(env.Header.SessionHeader.SessionID),
		Op:        op.XMLName.Local,
		Type:      strings.TrimSpace(op.Type),
	}
	for _, n := range op.FullNames {
		req.FullNames = append(req.FullNames, strings.TrimSpace(n))
	}
	for _, m := range op.Metadata {
		rec := soapRecord{Type: m.XSIType, FullName: strings.TrimSpace(m.FullName)}
		// xsi:type may carry a prefix ("met:ExternalClientAppSettings").
		if _, local, ok := strings.Cut(rec.Type, ":"); ok {
			rec.Type = local
		}
		if m.SecretAccess != nil {
			v, err := strconv.ParseBool(strings.TrimSpace(m.SecretAccess.Value))
			if err != nil {
				rec.BadValue = m.SecretAccess.Value
			} else {
				rec.SecretAccess = &v
			}
		}
		if m.MetadataAccess != nil {
			v, err := strconv.ParseBool(strings.TrimSpace(m.MetadataAccess.Value))
			if err != nil {
				rec.BadValue = m.MetadataAccess.Value
			} else {
				rec.MetadataAccess = &v
			}
		}
		req.Records = append(req.Records, rec)
	}
	return req, nil
}

// writeSOAPFault answers with a SOAP 1.1 fault.
func writeSOAPFault(w http.ResponseWriter, status int, code, msg string) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="` + metadataNS + `"><soapenv:Body><soapenv:Fault><faultcode>`)
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString(`</faultcode><faultstring>`)
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, b.String())
}

// writeSOAP answers with a SOAP body.
func writeSOAP(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="`+metadataNS+`" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>`+body+`</soapenv:Body></soapenv:Envelope>`)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// serveSOAP implements POST /services/Soap/m/{version}: readMetadata and
// updateMetadata for ExternalClientAppSettings.
func (s *Sim) serveSOAP(w http.ResponseWriter, r *http.Request, host string, rt route) {
	if host == LoginHost {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if r.Method != http.MethodPost {
		writeSOAPFault(w, http.StatusMethodNotAllowed, "soapenv:Client", "SOAP requests must use POST")
		return
	}
	if v, err := strconv.ParseFloat(rt.version, 64); err != nil || v < 31 {
		writeSOAPFault(w, http.StatusNotFound, "soapenv:Client", "No service available for version "+rt.version)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxSOAPBody+1))
	if err != nil || len(raw) > maxSOAPBody {
		writeSOAPFault(w, http.StatusInternalServerError, "soapenv:Client", "request body unreadable or too large")
		return
	}
	req, err := parseSOAP(bytes.NewReader(raw))
	if err != nil {
		writeSOAPFault(w, http.StatusInternalServerError, "soapenv:Client", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org(host)
	if o == nil {
		writeSOAPFault(w, http.StatusInternalServerError, "sf:INVALID_SESSION_ID", "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session")
		return
	}
	sess, ok := s.sessionLocked(req.SessionID, o.Name, s.nowLocked())
	u := o.userByID(sess.userID)
	if !ok || u == nil {
		writeSOAPFault(w, http.StatusInternalServerError, "sf:INVALID_SESSION_ID", "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session")
		return
	}
	// Metadata calls count against the daily API limit too.
	if s.limitHeaderLocked(w, o, true) {
		writeSOAPFault(w, http.StatusInternalServerError, "sf:REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.")
		return
	}
	if !u.has(PermAPIEnabled) || !u.has(PermModifyMetadata) {
		writeSOAPFault(w, http.StatusInternalServerError, "sf:INSUFFICIENT_ACCESS",
			"INSUFFICIENT_ACCESS: use of the Metadata API requires a user with the ModifyAllData or ModifyMetadata permissions")
		return
	}
	if s.serveMetadataLocked(w, o, u, req, raw) { // mdapi.go
		return
	}
	switch req.Op {
	case "readMetadata":
		if req.Type != settingsType {
			writeSOAPFault(w, http.StatusInternalServerError, "sf:INVALID_TYPE", "INVALID_TYPE: This type of metadata is not available for this organization: "+req.Type)
			return
		}
		var b strings.Builder
		b.WriteString("<readMetadataResponse><result>")
		for _, n := range req.FullNames {
			if n != settingsFullName {
				b.WriteString(`<records xsi:nil="true"/>`)
				continue
			}
			fmt.Fprintf(&b, `<records xsi:type="%s"><fullName>%s</fullName><enableClientSecretInRestApiAccess>%t</enableClientSecretInRestApiAccess><enableConsumerSecretApiAccess>%t</enableConsumerSecretApiAccess></records>`,
				settingsType, settingsFullName, o.SecretAccess, o.MetadataSecretAccess)
		}
		b.WriteString("</result></readMetadataResponse>")
		writeSOAP(w, b.String())
	case "updateMetadata":
		var b strings.Builder
		b.WriteString("<updateMetadataResponse>")
		changed := false
		for _, rec := range req.Records {
			problem, code := "", ""
			switch {
			case rec.Type != settingsType:
				problem, code = "Unsupported metadata type in the simulator: "+rec.Type, "INVALID_TYPE"
			case rec.FullName != settingsFullName:
				problem, code = "No such settings: "+rec.FullName, "INVALID_CROSS_REFERENCE_KEY"
			case rec.BadValue != "":
				problem, code = "Invalid value for enableClientSecretInRestApiAccess: "+rec.BadValue, "FIELD_INTEGRITY_EXCEPTION"
			}
			if problem != "" {
				fmt.Fprintf(&b, "<result><errors><message>%s</message><statusCode>%s</statusCode></errors><fullName>%s</fullName><success>false</success></result>",
					esc(problem), code, esc(rec.FullName))
				continue
			}
			if rec.SecretAccess != nil {
				if *rec.SecretAccess && !o.SecretAccess {
					o.SecretAccessSince = s.nowLocked()
				}
				o.SecretAccess = *rec.SecretAccess
				changed = true
			}
			if rec.MetadataAccess != nil {
				o.MetadataSecretAccess = *rec.MetadataAccess
				changed = true
			}
			fmt.Fprintf(&b, "<result><fullName>%s</fullName><success>true</success></result>", settingsFullName)
		}
		b.WriteString("</updateMetadataResponse>")
		if changed {
			s.saveLocked()
		}
		writeSOAP(w, b.String())
	default:
		writeSOAPFault(w, http.StatusInternalServerError, "sf:INVALID_OPERATION", "INVALID_OPERATION: the simulator does not implement "+req.Op)
	}
}
