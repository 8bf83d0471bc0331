package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// writtenLog writes n events and returns the log path and an anchor of
// its head signed with the test key (what Vault would hold).
func writtenLog(t *testing.T, n int) (string, *Anchor) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	writeEvents(t, l, n)
	l.Close()
	seq, hash, chain := l.Head()
	return path, signedAnchor(t, MACSigner(testMAC(t)), chain, seq, hash)
}

func signedAnchor(t testing.TB, s Signer, chain string, seq uint64, hash string) *Anchor {
	t.Helper()
	a := &Anchor{ID: "test", Chain: chain, Seq: seq, Hash: hash, Time: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), Mode: ModeHMAC}
	sig, err := s.SignHead(context.Background(), a.Message())
	if err != nil {
		t.Fatal(err)
	}
	a.Sig = sig
	return a
}

// forge rewrites line i (0-based) and every later line with recomputed
// hashes and prev_hash links, signing with key: what an attacker who can
// edit the file but lacks the MAC key can do at best.
func forge(t *testing.T, lines [][]byte, i int, edit func(*Record), key MACer) {
	t.Helper()
	prev := ZeroHash
	if i > 0 {
		r, err := ParseLine(lines[i-1])
		if err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
	}
	for j := i; j < len(lines) && len(lines[j]) > 0; j++ {
		r, err := ParseLine(lines[j])
		if err != nil {
			t.Fatal(err)
		}
		if j == i {
			edit(r)
		}
		r.PrevHash = prev
		line, err := encodeLine(nil, r, func(h string) (string, error) {
			m, err := key.Sign(context.Background(), []string{h})
			return m[0], err
		})
		if err != nil {
			t.Fatal(err)
		}
		lines[j] = line
		prev = r.Hash
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	attackerKey, _ := LocalKey([]byte("attacker-key-attacker-key-attack"))
	tests := []struct {
		name     string
		tamper   func(t *testing.T, path string, lines [][]byte) [][]byte
		wantKind string
		wantLine int
	}{
		{"a changed byte is an edit", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			i := bytes.Index(ls[6], []byte(`"app":"app0"`))
			ls[6][i+len(`"app":"app`)] = '9'
			return ls
		}, KindEdited, 7},
		{"a changed byte in a hash is an edit", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			i := bytes.LastIndex(ls[3], []byte(`"hash":"`)) + len(`"hash":"`)
			ls[3][i] ^= 1
			return ls
		}, KindEdited, 4},
		{"a deleted line is a gap", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return append(ls[:4:4], ls[5:]...)
		}, KindGap, 5},
		{"two swapped lines are a reordering", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls[10], ls[11] = ls[11], ls[10]
			return ls
		}, KindReordered, 11},
		{"a deleted first line is a gap", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return ls[1:]
		}, KindGap, 1},
		{"a duplicated line is a reordering", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return append(ls[:9:9], append([][]byte{ls[7]}, ls[9:]...)...)
		}, KindReordered, 10},
		{"the tail cut off is a truncation against the anchor", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return ls[:15]
		}, KindTruncated, 0},
		{"a record edited with every hash recomputed is a forgery", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			forge(t, ls, 8, func(r *Record) { r.Outcome = rotator.OutcomeFailed }, attackerKey)
			return ls
		}, KindForged, 9},
		{"a record appended with a recomputed hash is a forgery", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			ls = append(ls[:len(ls)-1], ls[len(ls)-2], nil)
			forge(t, ls, len(ls)-2, func(r *Record) { r.Seq++; r.Type = rotator.EventRotationSucceeded }, attackerKey)
			return ls
		}, KindForged, 21},
		{"a garbage line in the middle is an edit", func(t *testing.T, _ string, ls [][]byte) [][]byte {
			return append(ls[:3:3], append([][]byte{[]byte("{\"v\":1}\n")}, ls[3:]...)...)
		}, KindEdited, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, cp := writtenLog(t, 20)
			lines := readLines(t, path)
			writeLines(t, path, tt.tamper(t, path, lines))
			_, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t), Sig: MACSigner(testMAC(t)), Anchor: cp})
			var te *TamperError
			if !errors.As(err, &te) || !errors.Is(err, ErrTampered) {
				t.Fatalf("verify = %v, want a TamperError", err)
			}
			if te.Kind != tt.wantKind || te.Line != tt.wantLine {
				t.Fatalf("got %s at line %d (%v), want %s at line %d", te.Kind, te.Line, te, tt.wantKind, tt.wantLine)
			}
		})
	}
}

func TestVerifyWithoutTheKeyMissesAForgeryButSaysSo(t *testing.T) {
	path, _ := writtenLog(t, 5)
	lines := readLines(t, path)
	k, _ := LocalKey([]byte("attacker-key-attacker-key-attack"))
	forge(t, lines, 2, func(r *Record) { r.App = "other" }, k)
	writeLines(t, path, lines)
	res, err := VerifyFile(t.Context(), path, VerifyOptions{})
	if err != nil || res.MACChecked {
		t.Fatalf("hash-only verify: %v, MACChecked %v", err, res.MACChecked)
	}
}

func TestVerifyRejectsAForgedCheckpoint(t *testing.T) {
	path, cp := writtenLog(t, 5)
	cp.Sig = "hs256:AAAA"
	_, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t), Sig: MACSigner(testMAC(t)), Anchor: cp})
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != KindCheckpoint {
		t.Fatalf("got %v, want a checkpoint TamperError", err)
	}
}

func TestVerifyAcceptsALogAheadOfItsCheckpoint(t *testing.T) {
	path, cp := writtenLog(t, 5)
	l := openLog(t, Options{File: path})
	writeEvents(t, l, 3)
	l.Close()
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t), Sig: MACSigner(testMAC(t)), Anchor: cp})
	if err != nil || res.Anchor == nil || res.Records != 8 {
		t.Fatalf("verify = %v (%+v)", err, res)
	}
}

// crash simulates a crash in the middle of an append: the first half of a
// valid next line reaches the disk, its newline does not.
func crash(t *testing.T, path string) []byte {
	t.Helper()
	lines := readLines(t, path)
	last := lines[len(lines)-2]
	frag := last[:len(last)/2]
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(frag); err != nil {
		t.Fatal(err)
	}
	return frag
}

func TestATornLastLineIsReportedByOpenAndVerify(t *testing.T) {
	path, _ := writtenLog(t, 4)
	crash(t, path)

	_, err := New(t.Context(), Options{File: path, MAC: testMAC(t)})
	var tt *TornTailError
	if !errors.Is(err, ErrTornTail) || !errors.As(err, &tt) || tt.Line != 5 || tt.File != path {
		t.Fatalf("New = %v, want a TornTailError at line 5", err)
	}
	_, err = VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	var te *TamperError
	if !errors.Is(err, ErrTornTail) || !errors.As(err, &te) || te.Kind != KindTorn || te.Line != 5 {
		t.Fatalf("verify = %v, want a torn TamperError at line 5", err)
	}
}

func TestRepairSealsATornLineAndVerifyReportsIt(t *testing.T) {
	path, _ := writtenLog(t, 4)
	crash(t, path)
	l := openLog(t, Options{File: path, RepairTornTail: true,
		RepairActor: rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice", Reason: "INC-42"}})
	writeEvents(t, l, 2)
	l.Close()
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	if err != nil {
		t.Fatalf("verify after repair: %v", err)
	}
	if len(res.Repairs) != 1 || res.Repairs[0].Line != 5 || res.Repairs[0].RepairSeq != 5 || res.Records != 7 {
		t.Fatalf("repairs %+v, records %d", res.Repairs, res.Records)
	}
	// The fragment is kept as evidence, the repair names it.
	lines := readLines(t, path)
	r, err := ParseLine(lines[5])
	if err != nil || r.Type != EventRepair || r.Actor.Identity != "alice" {
		t.Fatalf("line 6 = %s (%v)", lines[5], err)
	}
}

func TestARepairRecordCannotHideAnEditedLine(t *testing.T) {
	path, _ := writtenLog(t, 4)
	crash(t, path)
	l := openLog(t, Options{File: path, RepairTornTail: true})
	l.Close()
	lines := readLines(t, path)
	lines[4] = append([]byte("x"), lines[4][1:]...) // edit the sealed fragment
	writeLines(t, path, lines)
	_, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != KindEdited || te.Line != 5 {
		t.Fatalf("verify = %v, want an edit at line 5", err)
	}
}

func TestVerifyOfAMissingLogFails(t *testing.T) {
	_, err := VerifyFile(t.Context(), filepath.Join(t.TempDir(), "none.log"), VerifyOptions{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestVerifyReportsTheFirstBadRecordInFileOrder(t *testing.T) {
	// A forgery at line 3 and a gap at line 10: the forgery comes first even
	// though MACs are checked in batches.
	path, _ := writtenLog(t, 20)
	lines := readLines(t, path)
	k, _ := LocalKey([]byte("attacker-key-attacker-key-attack"))
	forge(t, lines, 2, func(r *Record) { r.App = "x" }, k)
	lines = append(lines[:9:9], lines[10:]...)
	writeLines(t, path, lines)
	_, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t), BatchSize: 100})
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != KindForged || te.Line != 3 {
		t.Fatalf("got %v, want forged at line 3", err)
	}
}

func FuzzParseLine(f *testing.F) {
	path := filepath.Join(f.TempDir(), "audit.log")
	l := openLog(f, Options{File: path})
	for _, e := range rotationEvents("billing", "rot-1", "fp1:abc") {
		e.Details = map[string]string{"hash": "x\",\"hash\":\"", "<tag>": "é\u2028"}
		if err := l.Record(context.Background(), e); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	b, _ := os.ReadFile(path)
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		f.Add(line)
	}
	f.Add([]byte(`{"v":1,"hash":"` + strings.Repeat("0", 64) + `","mac":"x"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseLine(line)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LineError", err)
			}
			return
		}
		// The verifier's shortcut agrees with the full parser.
		var quick Record
		if err := parseChainFields(line, &quick); err != nil || quick.Seq != r.Seq || quick.PrevHash != r.PrevHash ||
			quick.Hash != r.Hash || quick.MAC != r.MAC || quick.Type != r.Type {
			t.Fatalf("parseChainFields disagrees with ParseLine (%v):\n%s", err, line)
		}
		// Whatever parses re-encodes to a line that parses to the same chain
		// fields, and its hash is the hash of its own body.
		body := AppendCanonical(nil, r)
		line2, err := encodeLine(nil, r, func(string) (string, error) { return r.MAC, nil })
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseLine(line2)
		if err != nil {
			t.Fatalf("re-encoded line does not parse: %v\n%s", err, line2)
		}
		if r2.Hash != HashCanonical(body) || r2.Seq != r.Seq || r2.PrevHash != r.PrevHash || r2.Type != r.Type {
			t.Fatalf("round trip changed the record:\n%s\n%s", line, line2)
		}
	})
}

func TestARepairedTornFirstLineKeepsTheChainID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(`{"actor":{"kind":"sched`), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, Options{File: path, RepairTornTail: true})
	writeEvents(t, l, 2)
	_, _, chain := l.Head()
	l.Close()
	l2 := openLog(t, Options{File: path})
	if _, _, chain2 := l2.Head(); chain2 != chain || chain == "" {
		t.Fatalf("chain id %q after reopen, want %q", chain2, chain)
	}
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	if err != nil || res.Chain != chain || len(res.Repairs) != 1 || res.Records != 3 {
		t.Fatalf("verify: %v %+v", err, res)
	}
}
