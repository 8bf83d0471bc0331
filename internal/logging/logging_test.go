package logging

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
	"go.uber.org/zap"
)

func TestSecretsAreRedactedInEveryEncoderAndFieldKind(t *testing.T) {
	const raw = "sup3r-s3cret-consumer-value"
	s := rotator.NewSecret(raw)
	creds := rotator.Credentials{Key: "3MVG-public", Secret: s}
	for _, format := range []string{FormatJSON, FormatConsole} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, format, "debug")
			if err != nil {
				t.Fatal(err)
			}
			log.Info("rotating",
				zap.Any("any", s),
				zap.Stringer("stringer", s),
				zap.Reflect("reflect", creds),
				zap.Any("struct", creds),
				zap.Any("ptr", &creds),
				zap.String("sprintf", fmt.Sprintf("%v %+v %#v %s %q %x", s, creds, creds, s, s, s)),
				Err(fmt.Errorf("wrapped: %w: %v", errors.New("boom"), s)),
			)
			out := buf.String()
			if strings.Contains(out, raw) {
				t.Fatalf("secret leaked:\n%s", out)
			}
			if !strings.Contains(out, "<redacted>") || !strings.Contains(out, "3MVG-public") {
				t.Fatalf("expected redaction marker and the public key:\n%s", out)
			}
		})
	}
}

func TestUnknownFormatOrLevelIsAnError(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "xml", "info"); err == nil {
		t.Error("format xml: want error")
	}
	if _, err := New(&bytes.Buffer{}, "json", "loud"); err == nil {
		t.Error("level loud: want error")
	}
}
