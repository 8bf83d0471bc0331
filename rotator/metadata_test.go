package rotator

import (
	"testing"
	"time"
)

func TestMetadataPollWait(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, 250 * time.Millisecond}, {2, 500 * time.Millisecond}, {3, time.Second}, {6, 8 * time.Second}, {7, 10 * time.Second}, {100, 10 * time.Second}} {
		if got := MetadataPollWait(tc.attempt); got != tc.want {
			t.Errorf("MetadataPollWait(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}

func TestAppValidateMetadataFields(t *testing.T) {
	a := App{Name: "x", DevHub: "h", ECA: "E", VaultPath: "p", VerifyURLs: []string{"u"}, VerifyTimeout: time.Minute,
		Overlap: Overlap{Policy: OverlapSalesforceExpiry}, SecretAccessMode: SecretAccessToggle}
	if err := a.Validate(); err != nil {
		t.Fatalf("valid app: %v", err)
	}
	a.Strategy, a.SecretRead, a.MetadataOverlap = "magic", "soap", -time.Second
	err := a.Validate()
	for _, want := range []string{"unknown strategy", "unknown secret read", "metadata overlap"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
