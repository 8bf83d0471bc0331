package salesforce

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestPrintingOptionsAndClientRedactsKeyMaterial(t *testing.T) {
	opts := Options{
		LoginURL: "https://acme.my.salesforce.com",
		Auth:     Auth{Method: AuthJWT, ClientID: "3MVGCLIENT", Username: "u@example.com", Key: testKey(), PrivateKey: testKeyPEM(), ClientSecret: rotator.NewSecret(testClientSecret)},
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	prime := testKey().Primes[0].String()[:24]
	modulus := testKey().N.String()[:24]
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{opts, &opts, opts.Auth, c} {
			out := fmt.Sprintf(verb, v)
			assertNoLeak(t, "printed "+verb, out)
			if strings.Contains(out, prime) || strings.Contains(out, modulus) || strings.Contains(out, "PRIVATE KEY") {
				t.Errorf("%s of %T prints key material", verb, v)
			}
		}
	}
	if got := fmt.Sprint(opts.Auth); !strings.Contains(got, "3MVGCLIENT") || !strings.Contains(got, "<redacted>") {
		t.Errorf("Auth prints %q, want the client id and a redaction marker", got)
	}
}
