package salesforce_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// TestContractBehaviorVariants runs one rotation cycle against every reading
// of what Salesforce leaves undocumented (sfsim.Behavior): the client must
// not depend on any one of them.
func TestContractBehaviorVariants(t *testing.T) {
	tests := []struct {
		name string
		b    sfsim.Behavior
	}{
		{"the simulator's defaults", sfsim.Behavior{}},
		{"an empty staged slot answers 404", sfsim.Behavior{EmptyStagedNotFound: true}},
		{"an occupied slot answers 409", sfsim.Behavior{OccupiedSlotStatus: http.StatusConflict, OccupiedSlotCode: "DUPLICATE_VALUE", OccupiedSlotMessage: "duplicate"}},
		{"an occupied slot answers an unknown 400 code", sfsim.Behavior{OccupiedSlotStatus: http.StatusBadRequest, OccupiedSlotCode: "INVALID_STATE", OccupiedSlotMessage: "staged credentials exist"}},
		{"the staged url is the item's own URL", sfsim.Behavior{StagedURLIsItem: true}},
		{"the closed gate answers 400 with the known wording", sfsim.Behavior{SecretAccessStatus: http.StatusBadRequest, SecretAccessCode: "INVALID_INPUT", SecretAccessMessage: "This feature is not currently enabled for this user."}},
		{"the closed gate answers 403 INSUFFICIENT_ACCESS", sfsim.Behavior{SecretAccessStatus: http.StatusForbidden, SecretAccessCode: "INSUFFICIENT_ACCESS", SecretAccessMessage: "insufficient access"}},
		{"staged credentials already authenticate", sfsim.Behavior{StagedAuthenticates: true}},
		{"the collection includes secrets", sfsim.Behavior{CollectionIncludesSecrets: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, func(c *sfsim.Config) { c.Behavior = tt.b })
			c, logs := simClient(t, sim)
			ctx := t.Context()
			app, cons := target(t, c)

			if got, err := c.Staged(ctx, app.ID, cons.ID); err != nil || len(got) != 0 {
				t.Fatalf("Staged on an empty slot = %v, %v", got, err)
			}
			next, err := c.Stage(ctx, app.ID, cons.ID)
			if err != nil || next.Secret.IsZero() {
				t.Fatalf("Stage: %v", err)
			}
			if _, err := c.Stage(ctx, app.ID, cons.ID); !errors.Is(err, rotator.ErrSlotOccupied) {
				t.Errorf("Stage on an occupied slot = %v, want ErrSlotOccupied", err)
			}
			if _, err := c.Promote(ctx, app.ID, cons.ID, next.ID); err != nil {
				t.Fatalf("Promote: %v", err)
			}
			got, err := c.Credentials(ctx, app.ID, cons.ID)
			if err != nil || got.Key != next.Key || !got.Secret.Equal(next.Secret) {
				t.Fatalf("Credentials after rotate: %v", err)
			}
			slot, err := c.Staged(ctx, app.ID, cons.ID)
			if err != nil || len(slot) != 1 || slot[0].Status != rotator.StagedRotated {
				t.Fatalf("Staged after rotate: %+v %v", slot, err)
			}
			if err := c.DeleteStaged(ctx, app.ID, cons.ID, slot[0].ID); err != nil {
				t.Fatalf("DeleteStaged: %v", err)
			}
			sim.SetSecretAccess(devhub, false)
			if _, err := c.Credentials(ctx, app.ID, cons.ID); !errors.Is(err, rotator.ErrPermission) {
				t.Errorf("Credentials with the gate closed = %v, want ErrPermission", err)
			}
			for _, l := range logs.All() {
				noLeak(t, "log", l.Message+fmtAny(l.ContextMap()), next.Secret.Reveal())
			}
		})
	}
}

// TestContractRetryAfterIsHonoured checks the client waits what the
// simulator's Retry-After asks for (recorded, not slept).
func TestContractRetryAfterIsHonoured(t *testing.T) {
	sim := startSim(t, func(c *sfsim.Config) { c.Behavior.RetryAfter = sfsim.Duration(7 * time.Second) })
	var mu sync.Mutex
	var waits []time.Duration
	c, _ := simClient(t, sim, func(o *salesforce.Options) {
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return ctx.Err()
		}
	})
	app, cons := target(t, c)
	sim.SetFaults([]sfsim.Fault{{Org: devhub, Method: http.MethodGet, Route: sfsim.RouteConsumer, Kind: sfsim.FaultUnavailable, Count: 1}})
	if _, err := c.PrimaryKey(t.Context(), app.ID, cons.ID); err != nil {
		t.Fatalf("PrimaryKey: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 1 || waits[0] != 7*time.Second {
		t.Errorf("waits %v, want [7s]", waits)
	}
}
