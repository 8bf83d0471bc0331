// Package logging builds ecarotator's zap loggers: JSON for the daemon, a
// readable console encoder for CLI commands, and the stable key names every
// package logs with.
package logging

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Stable log keys. Dashboards and alerts depend on them; do not rename.
const (
	KeyApp         = "app"
	KeyOrg         = "org"
	KeyECA         = "eca"
	KeyRotationID  = "rotation_id"
	KeyStep        = "step"
	KeyErr         = "err"
	KeyEvent       = "event"
	KeyAttempt     = "attempt"
	KeyVaultPath   = "vault_path"
	KeyVersion     = "vault_version"
	KeyConsumerKey = "consumer_key"
	KeyReason      = "reason"
	KeyNext        = "next"
	KeyReplica     = "replica"
)

// Formats.
const (
	FormatJSON    = "json"
	FormatConsole = "console"
)

// New returns a logger writing to w in format ("json" or "console") at
// level ("debug", "info", "warn", "error").
func New(w io.Writer, format, level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("logging: level %q: %w", level, err)
	}
	var enc zapcore.Encoder
	switch format {
	case FormatJSON, "":
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "time"
		ec.MessageKey = "msg"
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	case FormatConsole:
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		ec.CallerKey = ""
		ec.StacktraceKey = ""
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("logging: unknown format %q (json or console)", format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

// Err is zap.Error under the stable key "err".
func Err(err error) zap.Field { return zap.NamedError(KeyErr, err) }
