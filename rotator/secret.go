package rotator

import (
	"fmt"
	"log/slog"
)

// redacted is what every printing path of a Secret yields.
const redacted = "<redacted>"

// Secret holds a sensitive string (a consumer secret, a token, a TOTP seed)
// that cannot be printed by construction: String, GoString, every fmt verb,
// JSON, text and slog/zap marshalling all yield "<redacted>". The raw value is
// reachable only through Reveal.
//
// The value sits behind a pointer so that even reflection-based printing of a
// struct holding a Secret in an unexported field shows an address, never the
// text.
type Secret struct {
	v *string
}

// NewSecret wraps s. An empty s gives the zero Secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the raw value. It is the only way to reach it; grep for
// Reveal( to audit every place a secret leaves its wrapper.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == nil || *s.v == "" }

// Equal compares two secrets by value.
func (s Secret) Equal(o Secret) bool { return s.Reveal() == o.Reveal() }

// String implements fmt.Stringer (zap.Any and zap.Stringer use it).
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer for %#v.
func (s Secret) GoString() string { return `rotator.Secret("` + redacted + `")` }

// Format implements fmt.Formatter so that every verb (%x and %q included)
// prints the redaction marker.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML and other encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
