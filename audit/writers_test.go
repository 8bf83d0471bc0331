package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
)

// Two writers (the daemon and a CLI command, each with its own Log and
// file descriptor) appending to one file at once produce one chain: every
// append takes the lock and catches up with the other's records first.
func TestTwoWritersOnOneFileKeepOneChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	const per = 40
	logs := []*Log{openLog(t, Options{File: path}), openLog(t, Options{File: path})}
	var wg sync.WaitGroup
	errs := make(chan error, len(logs))
	for w, l := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				e := rotator.Event{Type: rotator.EventStepCompleted, RotationID: fmt.Sprintf("w%d-%d", w, i), Actor: rotator.Actor{Kind: rotator.ActorScheduler}}
				if err := l.Record(context.Background(), e); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Record: %v", err)
	}
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	if err != nil || res.Records != 2*per {
		t.Fatalf("verify: %v (%d records), want one chain of %d", err, res.Records, 2*per)
	}
}

// A writer follows a size rotation done by another writer.
func TestAWriterFollowsARotationDoneByAnotherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := openLog(t, Options{File: path, MaxFileBytes: 4096})
	b := openLog(t, Options{File: path, MaxFileBytes: 4096})
	for i := range 30 { // enough for b to rotate the file under a
		w := b
		if i%7 == 0 {
			w = a
		}
		writeEvents(t, w, 1)
	}
	writeEvents(t, a, 2)
	files, _ := Files(path)
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	if err != nil || res.Records != 32 || len(files) < 2 {
		t.Fatalf("verify: %v (%d records in %d files)", err, res.Records, len(files))
	}
}

// The live file deleted, moved away or cut while a writer has it open:
// the writer stops instead of appending to an unlinked file nobody reads
// (the review's H2 note) or after a cut.
func TestAWriterStopsWhenItsFileIsDeletedMovedOrCutWhileOpen(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"deleted", func(t *testing.T, path string) { os.Remove(path) }},
		{"moved away", func(t *testing.T, path string) { os.Rename(path, path+".saved") }},
		{"cut", func(t *testing.T, path string) {
			lines := readLines(t, path)
			writeLines(t, path, lines[:2])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l := openLog(t, Options{File: path})
			writeEvents(t, l, 4)
			tt.change(t, path)
			err := l.Record(t.Context(), rotator.Event{Type: rotator.EventManualAction, Actor: rotator.Actor{Kind: rotator.ActorSystem}})
			if !errors.Is(err, ErrNotDurable) || !errors.Is(err, ErrFileGone) {
				t.Fatalf("Record after the file was %s: %v, want ErrFileGone", tt.name, err)
			}
		})
	}
}

// A record another writer appended with a bad MAC is not extended.
func TestAWriterRefusesToExtendARecordAppendedWithoutTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	writeEvents(t, l, 2)
	other, _ := LocalKey([]byte("attacker-key-attacker-key-attack"))
	intruder := openLog(t, Options{File: path, MAC: testMAC(t)})
	intruder.opts.MAC = other // it opened fine, then appends with another key
	writeEvents(t, intruder, 1)
	err := l.Record(t.Context(), rotator.Event{Type: rotator.EventManualAction, Actor: rotator.Actor{Kind: rotator.ActorSystem}})
	if !errors.Is(err, ErrBadTail) {
		t.Fatalf("Record after a foreign append: %v, want ErrBadTail", err)
	}
}

func TestPublicKeyFilesRoundTripAndRejectGarbage(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	k := &PublicKeys{Key: "ecarotator-audit-sign", Versions: map[int]ed25519.PublicKey{1: pub}}
	var buf bytes.Buffer
	if err := WritePublicKeys(&buf, k); err != nil {
		t.Fatal(err)
	}
	got, err := ParsePublicKeys(buf.Bytes())
	if err != nil || !got.Versions[1].Equal(pub) {
		t.Fatalf("round trip: %v", err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	fromPEM, err := ParsePublicKeys(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil || !fromPEM.Versions[1].Equal(pub) {
		t.Fatalf("PEM: %v", err)
	}
	msg := AnchorMessage("a", "0123456789abcdef", 3, strings.Repeat("0", 64), newClock().Now())
	sig := "vault:v1:" + b64(string(ed25519.Sign(priv, []byte(msg))))
	for _, tt := range []struct {
		name string
		sig  string
		want bool
	}{
		{"a valid signature", sig, true},
		{"an unknown key version", strings.Replace(sig, "v1", "v2", 1), false},
		{"another message's signature", "vault:v1:" + b64(string(ed25519.Sign(priv, []byte(msg+"x")))), false},
		{"not a transit signature", "hs256:AAAA", false},
		{"bad base64", "vault:v1:!!!", false},
	} {
		ok, err := got.VerifyHead(t.Context(), msg, tt.sig)
		if err != nil || ok != tt.want {
			t.Errorf("%s: ok=%v err=%v, want %v", tt.name, ok, err, tt.want)
		}
	}
	for _, bad := range [][]byte{nil, []byte("{}"), []byte(`{"format":"x"}`), bytes.Repeat([]byte("a"), 70<<10),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})} {
		if _, err := ParsePublicKeys(bad); err == nil {
			t.Errorf("ParsePublicKeys(%.20q) accepted", bad)
		}
	}
}

// Offline verification: a log whose audit.checkpoint records are signed
// with ed25519 verifies with only the public key; a record after the last
// signature is unsigned (and fails unless allowed); a forged signature is
// a forgery.
func TestOfflineVerifyChecksCheckpointSignatures(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	signer := edSigner{priv}
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path, Signer: signer})
	writeEvents(t, l, 3)
	appendCheckpoint(t, l)
	writeEvents(t, l, 2)
	appendCheckpoint(t, l)
	l.Close()
	pk := &PublicKeys{Versions: map[int]ed25519.PublicKey{1: pub}}
	res, err := VerifyFile(t.Context(), path, VerifyOptions{Sig: pk})
	if err != nil || res.Signatures != 2 || res.SignedSeq != 6 || res.Unsigned != 0 {
		t.Fatalf("verify: %v %+v", err, res)
	}
	writeEvents(t, openLog(t, Options{File: path}), 1)
	_, err = VerifyFile(t.Context(), path, VerifyOptions{Sig: pk})
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != KindUnsigned {
		t.Fatalf("unsigned tail: %v", err)
	}
	if _, err := VerifyFile(t.Context(), path, VerifyOptions{Sig: pk, AllowUnsignedTail: true}); err != nil {
		t.Fatalf("unsigned tail allowed: %v", err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	_, err = VerifyFile(t.Context(), path, VerifyOptions{Sig: &PublicKeys{Versions: map[int]ed25519.PublicKey{1: other}}, AllowUnsignedTail: true})
	if !errors.As(err, &te) || te.Kind != KindForged || te.Seq != 4 {
		t.Fatalf("wrong public key: %v, want forged at seq 4", err)
	}
}

type edSigner struct{ k ed25519.PrivateKey }

func (s edSigner) SignHead(_ context.Context, msg string) (string, error) {
	return "vault:v1:" + b64(string(ed25519.Sign(s.k, []byte(msg)))), nil
}
func (edSigner) Mode() string { return ModeEd25519 }

// appendCheckpoint appends the signed statement as anchorLocked does,
// without a Vault to anchor in.
func appendCheckpoint(t *testing.T, l *Log) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opts.CheckpointPath = "unused"
	defer func() { l.opts.CheckpointPath = "" }()
	a := Anchor{ID: "t", Chain: l.chain, Seq: l.seq, Hash: l.head, Time: l.opts.Now().UTC(), Mode: l.mode}
	sig, _ := l.opts.Signer.SignHead(t.Context(), a.Message())
	err := l.appendOne(t.Context(), rotator.Event{Type: EventCheckpoint, Time: a.Time, Actor: rotator.Actor{Kind: rotator.ActorSystem},
		Details: map[string]string{"anchor_id": a.ID, "chain": a.Chain, "seq": fmt.Sprint(a.Seq), "hash": a.Hash,
			"time": a.Time.Format("2006-01-02T15:04:05.999999999Z07:00"), "mode": a.Mode, "sig": sig}})
	if err != nil {
		t.Fatal(err)
	}
}

// Verify reads a consistent snapshot of a log that is being written: it
// never reports a half-written append as a torn line.
func TestVerifyWhileAWriterAppendsSeesNoTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	writeEvents(t, l, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 150 {
			e := rotator.Event{Type: rotator.EventStepCompleted, Details: map[string]string{"pad": strings.Repeat("x", 2000)}, Actor: rotator.Actor{Kind: rotator.ActorScheduler}}
			if err := l.Record(context.Background(), e); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if _, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)}); err != nil {
			t.Fatalf("verify during appends: %v", err)
		}
	}
}
