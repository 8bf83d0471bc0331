package rotator_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// TestNoSecretLeaks runs rotations through success, ambiguous calls, a
// verify failure and a resume with a debug-level logger and checks that no
// secret the fake org ever created appears in a log line, an audit event,
// an error, a result or a plan.
func TestNoSecretLeaks(t *testing.T) {
	w := rotatortest.NewWorld(1)
	var logs bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(&logs), zap.DebugLevel))
	e, err := rotator.NewEngine(w.Options("a", log, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var outputs []string
	keep := func(res rotator.Result, err error) {
		outputs = append(outputs, fmt.Sprintf("%+v %#v", res, res))
		if err != nil {
			outputs = append(outputs, err.Error(), fmt.Sprintf("%+v", err))
		}
	}

	w.Org.FailNext(rotatortest.OpStage, rotatortest.Fault{Err: errAmbiguous, Apply: true})
	keep(e.Rotate(ctx, w.App, rotator.Request{Actor: operator}))
	w.Clock.Advance(8 * 24 * time.Hour)

	w.Org.PropagationDelay = 30 * time.Minute
	keep(e.Rotate(ctx, w.App, rotator.Request{Actor: operator, Reason: "max age"})) // verify fails
	w.Clock.Advance(time.Hour)
	keep(e.Resume(ctx, w.App)) // completes
	keep(e.RevokePrevious(ctx, w.App, operator))
	p, _ := e.Plan(ctx, w.App, w.Clock.Now())
	outputs = append(outputs, fmt.Sprintf("%+v", p))
	j, _ := w.Journal.Entry(w.App.Name)
	outputs = append(outputs, fmt.Sprintf("%+v", j))

	secrets := []string{w.Initial.Secret.Reveal()}
	for _, c := range w.Org.Issued() {
		secrets = append(secrets, c.Secret.Reveal())
	}
	if len(secrets) < 3 {
		t.Fatalf("only %d secrets issued; the scenario did not run", len(secrets))
	}
	haystacks := map[string]string{"logs": logs.String(), "audit": w.Audit.JSON(), "outputs": strings.Join(outputs, "\n")}
	for name, h := range haystacks {
		for _, s := range secrets {
			if s != "" && strings.Contains(h, s) {
				t.Errorf("%s contain a secret", name)
			}
		}
	}
	if !strings.Contains(logs.String(), "rotation succeeded") || w.Audit.Count(rotator.EventRotationSucceeded) != 2 {
		t.Errorf("scenario incomplete: events %v", w.Audit.Types())
	}
	for _, ev := range w.Audit.Events() {
		if ev.Type == rotator.EventRotationSucceeded && !strings.HasPrefix(ev.Fingerprint, "hmac-sha256:") {
			t.Errorf("success event without fingerprint: %+v", ev)
		}
	}
}
