package salesforce

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addGoldens seeds a fuzz target with every testdata file of the given
// extension, so the corpus always covers the pinned shapes.
func addGoldens(f *testing.F, ext string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*"+ext))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "null", "[]", "{}", "[null]", `{"stagedCredentials":null}`, `{"stagedCredentials":{"id":"x"}}`, `{"apps":"x"}`, "\ufeff[]", `[1,2]`, `"str"`} {
		f.Add([]byte(s))
	}
}

func FuzzDecodeUsage(f *testing.F) {
	addGoldens(f, ".json")
	f.Fuzz(func(t *testing.T, b []byte) {
		apps, err := decodeUsage(b)
		if err != nil && apps != nil {
			t.Fatalf("error with data")
		}
	})
}

func FuzzDecodeConsumers(f *testing.F) {
	addGoldens(f, ".json")
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := decodeConsumers(b)
		if err != nil && items != nil {
			t.Fatalf("error with data")
		}
	})
}

func FuzzDecodeStaged(f *testing.F) {
	addGoldens(f, ".json")
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := decodeStaged(b)
		if err != nil && items != nil {
			t.Fatalf("error with data")
		}
		for _, it := range items {
			_ = it.toDomain()
		}
		_, _ = pickStaged(items)
	})
}

func FuzzDecodeRESTError(f *testing.F) {
	addGoldens(f, ".json")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, msg := parseRESTError(b)
		if len(msg) > maxMessage+len("…") {
			t.Fatalf("message not truncated: %d", len(msg))
		}
	})
}

func FuzzDecodeTokenResponse(f *testing.F) {
	addGoldens(f, ".json")
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := decodeTokenResponse(b)
		if err == nil && (tr.Token == nil || tr.AccessToken == "") {
			t.Fatalf("success without a token")
		}
		if err != nil && strings.Contains(err.Error(), string(b)) && len(b) > 8 {
			t.Fatalf("error quotes the body")
		}
	})
}

func FuzzDecodeSOAP(f *testing.F) {
	addGoldens(f, ".xml")
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><Envelope><Body>&a;</Body></Envelope>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg := parseSOAPFault(b)
		if strings.Contains(code, ":") {
			t.Fatalf("prefix kept in %q", code)
		}
		if len(msg) > maxMessage+len("…") {
			t.Fatalf("message not truncated")
		}
		_, _ = decodeSOAP(b)
	})
}

func FuzzParseLimitInfo(f *testing.F) {
	for _, s := range []string{"api-usage=1/2", "api-usage=18/5000; api-bursts=1/750", "", "api-usage=/", "api-usage=99999999999999999999/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, ok := ParseLimitInfo(s)
		if ok && (u.Used < 0 || u.Limit <= 0) {
			t.Fatalf("accepted %+v", u)
		}
	})
}
