package sfsim

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// packagedConfig makes Billing packaged and opens both Metadata gates for
// the admin user.
func packagedConfig(t testing.TB) Config {
	cfg := testConfig(t)
	cfg.Orgs[0].ECAs[1].DistributionState = DistributionPackaged
	cfg.Orgs[0].MetadataSecretAccess = true
	cfg.Orgs[0].Users[0].Permissions = append(cfg.Orgs[0].Users[0].Permissions, PermViewSecretsInMetadata)
	return cfg
}

func soapPost(t *testing.T, s *Sim, body string) response {
	t.Helper()
	res, err := send(http.MethodPost, s.OrgURL(hub)+"/services/Soap/m/65.0", "", "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatalf("SOAP: %v", err)
	}
	return res
}

func globalZip(t *testing.T, doc string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string]string{
		"package.xml": `<Package xmlns="http://soap.sforce.com/2006/04/metadata"><types><members>Billing_glbl</members><name>ExtlClntAppGlobalOauthSettings</name></types><version>65.0</version></Package>`,
		"extlClntAppGlobalOauthSets/Billing_glbl.ecaGlblOauth": doc,
	} {
		w, _ := zw.Create(name)
		_, _ = w.Write([]byte(data))
	}
	_ = zw.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

var idRE = regexp.MustCompile(`<id>([^<]+)</id>`)

func deployBody(tok, zip string, ignore bool) string {
	ig := "false"
	if ignore {
		ig = "true"
	}
	return envelope(tok, `<met:deploy><met:ZipFile>`+zip+`</met:ZipFile><met:DeployOptions><met:ignoreWarnings>`+ig+`</met:ignoreWarnings></met:DeployOptions></met:deploy>`)
}

func checkDeploy(t *testing.T, s *Sim, tok, id string) string {
	t.Helper()
	return string(soapPost(t, s, envelope(tok, `<met:checkDeployStatus><met:asyncProcessId>`+id+`</met:asyncProcessId><met:includeDetails>true</met:includeDetails></met:checkDeployStatus>`)).body)
}

const billingDoc = `<?xml version="1.0" encoding="UTF-8"?>
<ExtlClntAppGlobalOauthSettings xmlns="http://soap.sforce.com/2006/04/metadata">
    <callbackUrl>https://login.salesforce.com/services/oauth2/success</callbackUrl>
    <externalClientApplication>Billing</externalClientApplication>
    <label>Billing</label>
    <shouldRotateConsumerSecret>true</shouldRotateConsumerSecret>
</ExtlClntAppGlobalOauthSettings>`

func TestMetadataDeployStrictness(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ignore      bool
		lenient     bool
		wantSuccess bool
	}{
		{"strict: a rotate flag without ignoreWarnings is refused", false, false, false},
		{"strict: with ignoreWarnings it rotates", true, false, true},
		{"deployWithoutIgnoreWarnings: accepted", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := packagedConfig(t)
			cfg.Behavior.DeployWithoutIgnoreWarnings = tc.lenient
			s := start(t, cfg)
			tok := adminToken(t, s)
			res := soapPost(t, s, deployBody(tok, globalZip(t, billingDoc), tc.ignore))
			m := idRE.FindSubmatch(res.body)
			if res.status != 200 || m == nil {
				t.Fatalf("deploy = %d %s", res.status, res.body)
			}
			st := checkDeploy(t, s, tok, string(m[1]))
			if got := strings.Contains(st, "<success>true</success>"); got != tc.wantSuccess {
				t.Fatalf("success = %v, want %v: %s", got, tc.wantSuccess, st)
			}
			if !tc.wantSuccess && !strings.Contains(st, "ignoreWarnings") {
				t.Fatalf("refusal does not say why: %s", st)
			}
			cs, _ := s.ConsumerState(hub, "Billing", billingCID)
			if rotated := cs.Secret != billingSecret; rotated != tc.wantSuccess {
				t.Fatalf("rotated = %v, want %v", rotated, tc.wantSuccess)
			}
		})
	}
}

func TestMetadataStagedRoutesRefusedForPackaged(t *testing.T) {
	cfg := packagedConfig(t)
	cfg.Orgs[0].SecretAccess = true
	s := start(t, cfg)
	tok := adminToken(t, s)
	res := call(t, http.MethodGet, consumerPath(s, billingID, billingCID)+"/staged", tok, "")
	if res.status != 400 || !strings.Contains(res.restErr(t), "INVALID_OPERATION") {
		t.Fatalf("GET staged of a packaged ECA = %d %s", res.status, res.body)
	}
	res = call(t, http.MethodGet, consumerPath(s, analyticID, "888000000000000ANA")+"/staged", tok, "")
	if res.status != 200 {
		t.Fatalf("GET staged of a local ECA = %d %s", res.status, res.body)
	}
}

func TestMetadataOverlapSwitch(t *testing.T) {
	for _, overlap := range []time.Duration{0, time.Hour} {
		cfg := packagedConfig(t)
		cfg.Behavior.MetadataRotationOverlap = Duration(overlap)
		s := start(t, cfg)
		tok := adminToken(t, s)
		res := soapPost(t, s, deployBody(tok, globalZip(t, billingDoc), true))
		if res.status != 200 {
			t.Fatalf("deploy: %s", res.body)
		}
		cs, _ := s.ConsumerState(hub, "Billing", billingCID)
		for _, org := range []string{hub, acme, globex} {
			if got := tokenStatus(t, s, org, billingKey, cs.Secret); got != "ok" {
				t.Errorf("overlap %v: new pair at %s = %s", overlap, org, got)
			}
			got := tokenStatus(t, s, org, billingKey, billingSecret)
			if (got == "ok") != (overlap > 0) {
				t.Errorf("overlap %v: old pair at %s = %s", overlap, org, got)
			}
		}
		s.Advance(overlap + time.Second)
		if got := tokenStatus(t, s, acme, billingKey, billingSecret); got == "ok" {
			t.Errorf("overlap %v: old pair still works after the overlap", overlap)
		}
	}
}

func TestMetadataBehaviorIsFlatInJSONAndYAML(t *testing.T) {
	b := Behavior{MetadataBehavior: MetadataBehavior{DeployDelay: Duration(time.Second), PackagedSecretNotInREST: true}}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"deployDelay":"1s"`) || !strings.Contains(string(raw), `"packagedSecretNotInREST":true`) {
		t.Fatalf("JSON = %s, want the metadata switches at the top level", raw)
	}
	var back Behavior
	if err := json.Unmarshal(raw, &back); err != nil || back.DeployDelay != Duration(time.Second) {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	cfg, err := ParseConfig([]byte("orgs: [{name: hub}]\nbehavior: {deployDelay: 2s, consumerSecretInRetrieve: false, metadataRotationOverlap: 1h}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Behavior.MetadataBehavior; m.DeployDelay != Duration(2*time.Second) || m.secretInRetrieve() || m.MetadataRotationOverlap != Duration(time.Hour) {
		t.Fatalf("YAML = %+v", m)
	}
	if _, err := ParseConfig([]byte("orgs: [{name: hub}]\nbehavior: {packagedStagedStatus: 200}\n")); err == nil {
		t.Fatal("a 2xx packagedStagedStatus was accepted")
	}
}

func FuzzReadDeployZip(f *testing.F) {
	f.Add(globalZipBytes(billingDoc))
	f.Add(base64.StdEncoding.EncodeToString([]byte("PK\x03\x04")))
	f.Add("not base64")
	f.Fuzz(func(t *testing.T, b64 string) {
		files, err := readDeployZip(b64)
		if err == nil && files["package.xml"] == nil {
			t.Fatal("accepted a zip without package.xml")
		}
	})
}

// globalZipBytes is globalZip without a *testing.T (for fuzz seeds).
func globalZipBytes(doc string) string {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string]string{"package.xml": "<Package/>", "extlClntAppGlobalOauthSets/Billing_glbl.ecaGlblOauth": doc} {
		w, _ := zw.Create(name)
		_, _ = w.Write([]byte(data))
	}
	_ = zw.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}
