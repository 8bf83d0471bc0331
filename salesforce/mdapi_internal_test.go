package salesforce

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

const sampleGlobal = `<?xml version="1.0" encoding="UTF-8"?>
<ExtlClntAppGlobalOauthSettings xmlns="http://soap.sforce.com/2006/04/metadata">
    <callbackUrl>https://app.example/cb?a=1&amp;b=2</callbackUrl>
    <!-- a comment the deploy must keep -->
    <consumerKey>3MVGKEY</consumerKey>
    <consumerSecret>SECRET-VALUE</consumerSecret>
    <externalClientApplication>Billing_Sync</externalClientApplication>
    <idTokenConfig>
        <idTokenAudience>x</idTokenAudience>
        <shouldRotateConsumerKey>nested, not a flag</shouldRotateConsumerKey>
    </idTokenConfig>
    <isClientCredentialsFlowEnabled>true</isClientCredentialsFlowEnabled>
    <label><![CDATA[Billing & Sync]]></label>
    <shouldRotateConsumerKey>true</shouldRotateConsumerKey>
    <shouldRotateConsumerSecret>false</shouldRotateConsumerSecret>
</ExtlClntAppGlobalOauthSettings>
`

var flagRE = regexp.MustCompile(`\s*<shouldRotateConsumer(Key|Secret)>(true|false)</shouldRotateConsumer(Key|Secret)>`)

// stripTopFlags removes top-level flag elements (the nested one in the
// sample carries text, not a boolean, and stays).
func stripTopFlags(s string) string { return flagRE.ReplaceAllString(s, "") }

func TestSetRotateFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		doc       string
		key, sec  bool
		wantKey   string
		wantSec   string
		wantOrder bool // key before secret before the root end
	}{
		{"both flags present: values replaced, everything else kept", sampleGlobal, false, true, "false", "true", true},
		{"flags absent: inserted in alphabetical position", strings.Replace(strings.Replace(sampleGlobal,
			"    <shouldRotateConsumerKey>true</shouldRotateConsumerKey>\n", "", 1),
			"    <shouldRotateConsumerSecret>false</shouldRotateConsumerSecret>\n", "", 1), true, true, "true", "true", true},
		{"only the key flag present", strings.Replace(sampleGlobal,
			"    <shouldRotateConsumerSecret>false</shouldRotateConsumerSecret>\n", "", 1), false, true, "false", "true", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := setRotateFlags([]byte(tc.doc), tc.key, tc.sec)
			if err != nil {
				t.Fatalf("setRotateFlags: %v", err)
			}
			if got, want := stripTopFlags(string(out)), stripTopFlags(tc.doc); got != want {
				t.Fatalf("beyond the flags the file changed:\n got %s\nwant %s", got, want)
			}
			d, err := parseGlobalOAuth(out)
			if err != nil {
				t.Fatalf("parse result: %v", err)
			}
			if d.RotateKey != tc.wantKey || d.RotateSecret != tc.wantSec {
				t.Fatalf("flags = %q %q, want %q %q", d.RotateKey, d.RotateSecret, tc.wantKey, tc.wantSec)
			}
			s := string(out)
			k, sc, end := strings.LastIndex(s, "<shouldRotateConsumerKey>"), strings.Index(s, "<shouldRotateConsumerSecret>"), strings.Index(s, "</ExtlClntAppGlobalOauthSettings>")
			if tc.wantOrder && !(k < sc && sc < end && k > strings.Index(s, "<label>")) {
				t.Fatalf("flags out of order in %s", s)
			}
		})
	}
}

func TestSetRotateFlagsRefusesBadInput(t *testing.T) {
	for _, doc := range []string{"", "<a>", "not xml", "<a><shouldRotateConsumerKey>1</shouldRotateConsumerKey><shouldRotateConsumerKey>1</shouldRotateConsumerKey></a>"} {
		if _, err := setRotateFlags([]byte(doc), true, true); err == nil {
			t.Errorf("setRotateFlags(%q) succeeded", doc)
		}
	}
}

func TestParseGlobalOAuth(t *testing.T) {
	d, err := parseGlobalOAuth([]byte(sampleGlobal))
	if err != nil || d.Key != "3MVGKEY" || d.Secret != "SECRET-VALUE" || d.ECA != "Billing_Sync" || !xmlBool(d.RotateKey) || xmlBool(d.RotateSecret) {
		t.Fatalf("parse = %+v, %v", d, err)
	}
	_, err = parseGlobalOAuth([]byte(strings.Replace(sampleGlobal, "<shouldRotateConsumerSecret>false", "<shouldRotateConsumerSecret>maybe", 1)))
	if err == nil || strings.Contains(err.Error(), "SECRET-VALUE") {
		t.Fatalf("bad flag error = %v", err)
	}
	if _, err := parseGlobalOAuth(bytes.Repeat([]byte("a"), maxComponentBytes+1)); err == nil {
		t.Fatal("oversized file accepted")
	}
}

func TestDeployZipRoundTrip(t *testing.T) {
	z, err := deployZip("Billing_Sync_glbl", "65.0", []byte(sampleGlobal))
	if err != nil {
		t.Fatal(err)
	}
	files, err := zipFiles(z)
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := componentFile(files, globalOAuthFolder, "Billing_Sync_glbl", globalOAuthSuffix)
	if !ok || string(doc) != sampleGlobal {
		t.Fatalf("component round trip failed: %v", ok)
	}
	if !strings.Contains(string(files["package.xml"]), "<members>Billing_Sync_glbl</members>") {
		t.Fatalf("package.xml = %s", files["package.xml"])
	}
	for _, bad := range []string{"", "../x", "a/b"} {
		if _, err := deployZip(bad, "65.0", nil); err == nil {
			t.Errorf("deployZip(%q) succeeded", bad)
		}
	}
}

func TestCandidates(t *testing.T) {
	got := candidates([]string{"Other_glbl", "billing_sync_glbl", "Billing_Sync", "Billing_SyncX"}, "Billing_Sync")
	want := []string{"Billing_Sync", "billing_sync_glbl", "Billing_SyncX"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("candidates = %v, want %v", got, want)
	}
}

func FuzzParseGlobalOAuth(f *testing.F) {
	f.Add([]byte(sampleGlobal))
	f.Add([]byte(`<ExtlClntAppGlobalOauthSettings><shouldRotateConsumerKey>x</shouldRotateConsumerKey></ExtlClntAppGlobalOauthSettings>`))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseGlobalOAuth(b)
	})
}

func FuzzSetRotateFlags(f *testing.F) {
	f.Add([]byte(sampleGlobal), true, false)
	f.Add([]byte(`<a/>`), true, true)
	f.Add([]byte(`<a><b/><z/></a>`), false, true)
	f.Fuzz(func(t *testing.T, b []byte, key, sec bool) {
		out, err := setRotateFlags(b, key, sec)
		if err != nil {
			return
		}
		// An accepted file stays well-formed and carries the flags asked for.
		kids, _, err := topLevelChildren(out)
		if err != nil {
			t.Fatalf("result not well-formed: %q -> %q", b, out)
		}
		n := 0
		for _, k := range kids {
			if k.name == fieldRotateKey || k.name == fieldRotateSecret {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("result has %d flags: %q", n, out)
		}
	})
}

func FuzzZipFiles(f *testing.F) {
	z, _ := deployZip("X", "65.0", []byte(sampleGlobal))
	f.Add(z)
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := zipFiles(b)
		if err == nil && len(files) > maxZipFiles {
			t.Fatalf("%d files", len(files))
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte(`<Envelope><Body><checkDeployStatusResponse><result><done>true</done><id>0Af</id><status>Failed</status><details><componentFailures><problem>x</problem></componentFailures></details></result></checkDeployStatusResponse></Body></Envelope>`))
	f.Add([]byte(`<Envelope><Body><checkRetrieveStatusResponse><result><zipFile>` + base64.StdEncoding.EncodeToString([]byte("x")) + `</zipFile></result></checkRetrieveStatusResponse></Body></Envelope>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var env statusEnvelope
		_ = decodeXML(b, &env)
		var r mdResponse
		_ = decodeXML(b, &r)
	})
}
