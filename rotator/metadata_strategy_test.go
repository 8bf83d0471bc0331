package rotator_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// An Issuer without the Metadata API (the fake org) serves only local ECAs:
// auto and staged choose staged, metadata is refused with a clear error.
func TestChooseStrategyWithoutMetadataAPI(t *testing.T) {
	w := rotatortest.NewWorld(1)
	e := newEngine(t, w, "a", nil)
	for _, tc := range []struct {
		strategy rotator.Strategy
		want     rotator.Strategy
		wantErr  bool
	}{
		{"", rotator.StrategyStaged, false},
		{rotator.StrategyAuto, rotator.StrategyStaged, false},
		{rotator.StrategyStaged, rotator.StrategyStaged, false},
		{rotator.StrategyMetadata, rotator.StrategyMetadata, true},
	} {
		app := w.App
		app.Strategy = tc.strategy
		c, err := e.ChooseStrategy(t.Context(), app)
		if (err != nil) != tc.wantErr || (!tc.wantErr && (c.Strategy != tc.want || c.Why == "")) {
			t.Errorf("strategy %q: got %+v, %v", tc.strategy, c, err)
		}
	}
	app := w.App
	app.Strategy = rotator.StrategyMetadata
	_, err := e.Rotate(t.Context(), app, rotator.Request{Actor: operator})
	if err == nil || !strings.Contains(err.Error(), "no Metadata API") || errors.Is(err, rotator.ErrLocked) {
		t.Fatalf("Rotate(metadata without the API) = %v", err)
	}
	res := rotate(t, e, w.App) // auto → staged, unchanged behaviour
	if res.Strategy != rotator.StrategyStaged {
		t.Fatalf("auto rotated with %q", res.Strategy)
	}
	if c := e.KnownStrategy(w.App, nil); c.Strategy != rotator.StrategyAuto {
		t.Fatalf("KnownStrategy without a read = %+v", c)
	}
}
