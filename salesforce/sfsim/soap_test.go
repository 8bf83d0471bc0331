package sfsim

import (
	"net/http"
	"strings"
	"testing"
)

// envelope wraps a Metadata API body with a session header.
func envelope(session, body string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:met="http://soap.sforce.com/2006/04/metadata" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Header><met:SessionHeader><met:sessionId>` + session + `</met:sessionId></met:SessionHeader></soapenv:Header>
 <soapenv:Body>` + body + `</soapenv:Body></soapenv:Envelope>`
}

const (
	readSettings = `<met:readMetadata><met:type>ExternalClientAppSettings</met:type><met:fullNames>ExternalClientApp</met:fullNames></met:readMetadata>`
	updateOn     = `<met:updateMetadata><met:metadata xsi:type="met:ExternalClientAppSettings"><met:fullName>ExternalClientApp</met:fullName><met:enableClientSecretInRestApiAccess>true</met:enableClientSecretInRestApiAccess></met:metadata></met:updateMetadata>`
	updateOff    = `<met:updateMetadata><met:metadata xsi:type="ExternalClientAppSettings"><met:fullName>ExternalClientApp</met:fullName><met:enableClientSecretInRestApiAccess>false</met:enableClientSecretInRestApiAccess></met:metadata></met:updateMetadata>`
)

func TestMetadataSOAP(t *testing.T) {
	s := start(t, testConfig(t))
	admin := adminToken(t, s)
	plain := token(t, s, hub, billingKey, billingSecret)
	soapURL := s.OrgURL(hub) + "/services/Soap/m/65.0"
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantIn     []string
		wantAccess bool
	}{
		{name: "readMetadata shows the setting off", body: envelope(admin, readSettings), wantStatus: 200,
			wantIn: []string{`<records xsi:type="ExternalClientAppSettings">`, `<fullName>ExternalClientApp</fullName>`, `<enableClientSecretInRestApiAccess>false<`}},
		{name: "updateMetadata turns the setting on", body: envelope(admin, updateOn), wantStatus: 200,
			wantIn: []string{`<success>true</success>`}, wantAccess: true},
		{name: "readMetadata then shows it on", body: envelope(admin, readSettings), wantStatus: 200,
			wantIn: []string{`<enableClientSecretInRestApiAccess>true<`}, wantAccess: true},
		{name: "a bad session is an INVALID_SESSION_ID fault", body: envelope("00Dnope", updateOff), wantStatus: 500,
			wantIn: []string{`<faultcode>sf:INVALID_SESSION_ID</faultcode>`, `Invalid Session ID found in SessionHeader`}, wantAccess: true},
		{name: "a user without ModifyMetadata gets INSUFFICIENT_ACCESS", body: envelope(plain, updateOff), wantStatus: 500,
			wantIn: []string{`sf:INSUFFICIENT_ACCESS`}, wantAccess: true},
		{name: "an unknown fullName fails in the result", body: envelope(admin, strings.Replace(updateOff, "<met:fullName>ExternalClientApp", "<met:fullName>Other", 1)),
			wantStatus: 200, wantIn: []string{`<success>false</success>`, `INVALID_CROSS_REFERENCE_KEY`}, wantAccess: true},
		{name: "a non-boolean value fails in the result", body: envelope(admin, strings.Replace(updateOff, ">false<", ">maybe<", 1)),
			wantStatus: 200, wantIn: []string{`<success>false</success>`}, wantAccess: true},
		{name: "an unknown type in readMetadata is a fault", body: envelope(admin, strings.Replace(readSettings, "ExternalClientAppSettings", "ApexClass", 1)),
			wantStatus: 500, wantIn: []string{`sf:INVALID_TYPE`}, wantAccess: true},
		{name: "an unimplemented operation is a fault", body: envelope(admin, `<met:describeMetadata/>`),
			wantStatus: 500, wantIn: []string{`INVALID_OPERATION`}, wantAccess: true},
		{name: "malformed XML is a client fault", body: `<soapenv:Envelope`, wantStatus: 500,
			wantIn: []string{`<faultcode>soapenv:Client</faultcode>`}, wantAccess: true},
		{name: "updateMetadata turns the setting off again", body: envelope(admin, updateOff), wantStatus: 200,
			wantIn: []string{`<success>true</success>`}, wantAccess: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := send(http.MethodPost, soapURL, "", "text/xml; charset=utf-8", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if res.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", res.status, res.body, tt.wantStatus)
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(string(res.body), w) {
					t.Errorf("body %s lacks %s", res.body, w)
				}
			}
			if got := s.SecretAccess(hub); got != tt.wantAccess {
				t.Errorf("SecretAccess = %v, want %v", got, tt.wantAccess)
			}
		})
	}
}

func TestParseSOAP(t *testing.T) {
	req, err := parseSOAP(strings.NewReader(envelope(" tok ", updateOn)))
	if err != nil {
		t.Fatal(err)
	}
	if req.SessionID != "tok" || req.Op != "updateMetadata" || len(req.Records) != 1 {
		t.Fatalf("got %+v", req)
	}
	r := req.Records[0]
	if r.Type != settingsType || r.FullName != settingsFullName || r.SecretAccess == nil || !*r.SecretAccess {
		t.Fatalf("record = %+v", r)
	}
	if _, err := parseSOAP(strings.NewReader(envelope("x", ""))); err == nil {
		t.Fatal("an empty body parsed, want an error")
	}
}

func FuzzParseSOAP(f *testing.F) {
	f.Add(envelope("tok", readSettings))
	f.Add(envelope("tok", updateOn))
	f.Add(envelope("", `<met:updateMetadata><met:metadata/><met:metadata xsi:type=""/></met:updateMetadata>`))
	f.Add(`<Envelope><Body><a/><b/></Body></Envelope>`)
	f.Add(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Envelope/>`)
	f.Fuzz(func(t *testing.T, in string) {
		req, err := parseSOAP(strings.NewReader(in))
		if err != nil {
			return
		}
		if req.Op == "" {
			t.Fatalf("parsed without an operation: %+v", req)
		}
		for _, r := range req.Records {
			if r.SecretAccess != nil && r.BadValue != "" {
				t.Fatalf("record both valid and bad: %+v", r)
			}
		}
	})
}
