package salesforce

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
)

const soapPattern = "POST /services/Soap/m/65.0"

func TestSecretAccessReadsTheSetting(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"an enabled setting reads true", "soap_read_response.xml", true},
		{"an omitted field reads false", "soap_read_response_off.xml", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle(soapPattern, serveGolden(t, 200, tt.body))
			c, _, logs := testClient(t, f)
			got, err := c.SecretAccess(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			r := f.requests()[0]
			want := strings.ReplaceAll(golden(t, "soap_read_request.golden.xml"), "{{TOKEN}}", testToken)
			if r.Body != want {
				t.Errorf("request body\n got %s\nwant %s", r.Body, want)
			}
			if r.Header.Get("Content-Type") != "text/xml; charset=utf-8" || r.Header.Get("SOAPAction") == "" {
				t.Errorf("headers %v", r.Header)
			}
			if r.Header.Get("Authorization") != "" {
				t.Errorf("SOAP call sends a bearer header; the session travels in SessionHeader")
			}
			assertLogsClean(t, logs)
		})
	}
}

func TestSetSecretAccessUpdatesTheSetting(t *testing.T) {
	f := newFake(t)
	f.handle(soapPattern, serveGolden(t, 200, "soap_update_response.xml"))
	c, _, _ := testClient(t, f)
	if err := c.SetSecretAccess(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(golden(t, "soap_update_request.golden.xml"), "{{TOKEN}}", testToken)
	if got := f.requests()[0].Body; got != want {
		t.Errorf("request body\n got %s\nwant %s", got, want)
	}
}

func TestMetadataFailures(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		set       bool
		want      error
		wantClass Class
		wantCode  string
		wantCalls int
	}{
		{"an updateMetadata error result is classified by its statusCode", 200, "soap_update_error.xml", true, rotator.ErrPermission, ClassPermission, "INSUFFICIENT_ACCESS", 1},
		{"a SOAP fault with a code is final, not retried", 500, "soap_fault_type.xml", false, nil, ClassFinal, "INVALID_TYPE", 1},
		{"a 503 without a fault is retried then unreachable", 503, "", false, rotator.ErrUnreachable, ClassTransient, "", 4},
		{"a non-SOAP 200 is an unexpected shape", 200, "consumers.json", false, nil, ClassFinal, "UNEXPECTED_RESPONSE", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var n atomic.Int32
			f.handle(soapPattern, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if tt.body == "" {
					w.WriteHeader(tt.status)
					return
				}
				serveGolden(t, tt.status, tt.body)(w, r)
			})
			c, _, _ := testClient(t, f)
			var err error
			if tt.set {
				err = c.SetSecretAccess(t.Context(), true)
			} else {
				_, err = c.SecretAccess(t.Context())
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Class != tt.wantClass || apiErr.Code != tt.wantCode {
				t.Fatalf("err = %v, want class %v code %q", err, tt.wantClass, tt.wantCode)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err %v does not match %v", err, tt.want)
			}
			if got := int(n.Load()); got != tt.wantCalls {
				t.Errorf("calls %d, want %d", got, tt.wantCalls)
			}
			assertNoLeak(t, "error", err.Error())
		})
	}
}

func TestInvalidSessionFaultReauthenticates(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	f.handle(soapPattern, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			serveGolden(t, 500, "soap_fault_session.xml")(w, r)
			return
		}
		serveGolden(t, 200, "soap_read_response.xml")(w, r)
	})
	c, _, _ := testClient(t, f)
	on, err := c.SecretAccess(t.Context())
	if err != nil || !on {
		t.Fatalf("got %v, %v", on, err)
	}
	if f.tokenCount() != 2 {
		t.Errorf("token requests %d, want 2", f.tokenCount())
	}
}

func TestParseSOAPFault(t *testing.T) {
	code, msg := parseSOAPFault([]byte(golden(t, "soap_fault_session.xml")))
	if code != "INVALID_SESSION_ID" || !strings.HasPrefix(msg, "INVALID_SESSION_ID: Invalid Session ID") {
		t.Errorf("got %q %q", code, msg)
	}
	if code, _ := parseSOAPFault([]byte("<html>")); code != "" {
		t.Errorf("garbage parsed as fault %q", code)
	}
}

func TestSessionIDIsXMLEscaped(t *testing.T) {
	b := string(soapEnvelope("a<b&c", readSettingsBody()))
	if !strings.Contains(b, "<met:sessionId>a&lt;b&amp;c</met:sessionId>") {
		t.Errorf("token not escaped: %s", b)
	}
}
