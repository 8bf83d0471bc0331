package audit

import (
	"bytes"
	"testing"
)

func TestLastIndexMatchesBytesLastIndex(t *testing.T) {
	key := `,"seq":`
	for _, body := range []string{"", `,"seq":`, `{"a":1,"seq":2,"seq":3}`, `,"seq":,"seq":`, `x,"se`, `,"seq":,"seq",,"seq":"`, `{"details":{"a":"1","seq":"9"},"seq":4,"v":1`} {
		if got, want := lastIndex([]byte(body), key), bytes.LastIndex([]byte(body), []byte(key)); got != want {
			t.Errorf("lastIndex(%q) = %d, want %d", body, got, want)
		}
	}
}

func FuzzLastIndex(f *testing.F) {
	f.Add([]byte(`{"a":1,"seq":2,"seq":3}`), `,"seq":`)
	f.Add([]byte(`aaaa`), `aa`)
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		if key == "" {
			return
		}
		if got, want := lastIndex(body, key), bytes.LastIndex(body, []byte(key)); got != want {
			t.Fatalf("lastIndex(%q, %q) = %d, want %d", body, key, got, want)
		}
	})
}
