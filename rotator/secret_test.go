package rotator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretCannotBePrinted(t *testing.T) {
	const raw = "hunter2-raw-secret"
	s := NewSecret(raw)
	type holder struct {
		Pub    string
		Secret Secret
		hidden Secret
	}
	h := holder{Pub: "pub", Secret: s, hidden: s}
	js, _ := json.Marshal(h)
	txt, _ := s.MarshalText()
	var sl bytes.Buffer
	slog.New(slog.NewJSONHandler(&sl, nil)).Info("x", "s", s, "h", h)
	outs := map[string]string{
		"String":     s.String(),
		"GoString":   s.GoString(),
		"%v":         fmt.Sprintf("%v", s),
		"%s":         fmt.Sprintf("%s", s),
		"%q":         fmt.Sprintf("%q", s),
		"%x":         fmt.Sprintf("%x", s),
		"%d":         fmt.Sprintf("%d", s),
		"%+v holder": fmt.Sprintf("%+v", h),
		"%#v holder": fmt.Sprintf("%#v", h),
		"json":       string(js),
		"text":       string(txt),
		"slog":       sl.String(),
	}
	for name, out := range outs {
		if strings.Contains(out, raw) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
	}
	if s.Reveal() != raw {
		t.Errorf("Reveal() = %q, want the raw value", s.Reveal())
	}
}

func TestZeroSecret(t *testing.T) {
	var z Secret
	if !z.IsZero() || z.Reveal() != "" || !NewSecret("").IsZero() {
		t.Error("zero secret should be empty")
	}
	if !NewSecret("a").Equal(NewSecret("a")) || NewSecret("a").Equal(NewSecret("b")) {
		t.Error("Equal compares values")
	}
}
