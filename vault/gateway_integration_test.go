//go:build integration

package vault

import (
	"errors"
	"slices"
	"testing"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

func TestCapabilitiesManyAnswersPerPathInOneCall(t *testing.T) {
	srv := vaulttest.Start(t)
	rc := rootClient(t, srv)
	root := srv.Client(t)
	if err := root.Sys().PutPolicy("reads-billing", `path "secret/data/ecarotator/control/billing/status" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok := rotator.NewSecret(tokenWith(t, root, "reader", "reads-billing"))
	paths := []string{rc.ControlPath("billing", "status"), rc.ControlPath("payroll", "status"), rc.ControlPath("support", "status")}
	caps, err := rc.CapabilitiesMany(t.Context(), tok, paths)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(caps[paths[0]], "read") || slices.Contains(caps[paths[1]], "read") || slices.Contains(caps[paths[2]], "read") {
		t.Fatalf("caps = %v, want read on billing only", caps)
	}
	one, err := rc.CapabilitiesMany(t.Context(), tok, paths[:1])
	if err != nil || !slices.Contains(one[paths[0]], "read") {
		t.Fatalf("one path: %v, %v", one, err)
	}
	_, err = rc.CapabilitiesMany(t.Context(), rotator.NewSecret("hvs.not-a-token"), paths)
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a bad token: %v, want ErrBadCredentials", err)
	}
}

func TestDocumentsAndOpenJournalsThroughTheGateway(t *testing.T) {
	srv := vaulttest.Start(t)
	c := rootClient(t, srv)
	ctx := t.Context()
	if _, _, err := c.ReadDoc(ctx, "gw/doc"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("missing doc: %v", err)
	}
	v, err := c.WriteDoc(ctx, "gw/doc", map[string]any{"a": "1"}, 0)
	if err != nil || v != 1 {
		t.Fatalf("write: %d %v", v, err)
	}
	if _, err := c.WriteDoc(ctx, "secret/gw/doc", map[string]any{"a": "2"}, 0); !errors.Is(err, rotator.ErrConflict) {
		t.Fatalf("stale check-and-set: %v, want ErrConflict", err)
	}
	data, v, err := c.ReadDoc(ctx, "gw/doc")
	if err != nil || v != 1 || data["a"] != "1" {
		t.Fatalf("read: %v %d %v", data, v, err)
	}
	old, err := c.ReadDocVersion(ctx, "gw/doc", 1)
	if err != nil || old.Version != 1 || old.Created.IsZero() {
		t.Fatalf("read version: %+v %v", old, err)
	}
	if err := c.DocExists(ctx, "gw/doc"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDoc(ctx, "gw/doc"); err != nil {
		t.Fatal(err)
	}
	if err := c.DocExists(ctx, "gw/doc"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("deleted doc: %v", err)
	}

	open, err := c.OpenJournals(ctx)
	if err != nil || len(open) != 0 {
		t.Fatalf("no journal yet: %v %v", open, err)
	}
	if _, err := c.Save(ctx, "billing", rotator.JournalEntry{App: "billing", Step: rotator.StepStage}, 0, nil); err != nil {
		t.Fatal(err)
	}
	open, err = c.OpenJournals(ctx)
	if err != nil || !open["billing"] || len(open) != 1 {
		t.Fatalf("open journals: %v %v", open, err)
	}
}
