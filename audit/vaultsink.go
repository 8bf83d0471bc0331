package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"time"
)

// The Vault sink keeps one linear chain shared by every replica, in KV v2
// under SinkPath:
//
//	<SinkPath>/records/<seq>  {"line": "<the record line>"} written with cas=0
//	<SinkPath>/head           {"seq": N, "hash": "<hex>"}    advanced with cas
//
// A writer claims seq N+1 by creating records/<N+1> with check-and-set 0:
// Vault lets exactly one replica create it. It then advances head with
// check-and-set on the head version it read. A replica that loses the race
// for records/<N+1> reads the winner's record, helps advance head to it
// (so a writer that crashed between the two writes cannot stall the
// chain), re-links its own record to the new head and retries. The head is
// a hint for finding the tail; the records are the chain.

// vaultHead is the cached chain head of the Vault sink.
type vaultHead struct {
	seq     uint64
	hash    string
	version int // KV version of the head secret (0: absent)
}

type vaultSink struct {
	kv     Vault
	mount  string
	path   string
	head   vaultHead
	known  bool
	maxTry int
	now    func() time.Time
}

func newVaultSink(c Vault, mount, p string) *vaultSink {
	return &vaultSink{kv: c, mount: mount, path: p, maxTry: 100, now: time.Now}
}

func (s *vaultSink) recordPath(seq uint64) string {
	return path.Join(s.path, "records", strconv.FormatUint(seq, 10))
}

// readHead reads <path>/head (seq 0 and ZeroHash when absent).
func readVaultHead(ctx context.Context, kv Vault, mount, p string) (vaultHead, error) {
	data, v, err := kv.ReadDoc(ctx, kvPath(mount, path.Join(p, "head")))
	if isNotFound(err) {
		return vaultHead{hash: ZeroHash}, nil
	}
	if err != nil {
		return vaultHead{}, fmt.Errorf("audit: vault read %s/head: %w", p, err)
	}
	seq, err := jsonUint(data["seq"])
	if err != nil {
		return vaultHead{}, fmt.Errorf("audit: vault %s/head: seq: %w", p, err)
	}
	h, _ := data["hash"].(string)
	return vaultHead{seq: seq, hash: h, version: v}, nil
}

func jsonUint(v any) (uint64, error) {
	switch n := v.(type) {
	case json.Number:
		return strconv.ParseUint(n.String(), 10, 64)
	case float64:
		return uint64(n), nil
	case string:
		return strconv.ParseUint(n, 10, 64)
	default:
		return 0, fmt.Errorf("unexpected %T", v)
	}
}

// readVaultRecord returns the line stored at records/<seq> (nil when absent).
func readVaultRecord(ctx context.Context, kv Vault, mount, p string, seq uint64) ([]byte, error) {
	rp := path.Join(p, "records", strconv.FormatUint(seq, 10))
	data, _, err := kv.ReadDoc(ctx, kvPath(mount, rp))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: vault read %s: %w", rp, err)
	}
	line, _ := data["line"].(string)
	if line == "" {
		return nil, fmt.Errorf("audit: vault %s has no line", rp)
	}
	return []byte(line), nil
}

// append links a record built by build (given seq and prev_hash) into the
// shared chain and returns the stored line.
func (s *vaultSink) append(ctx context.Context, build func(seq uint64, prev string) ([]byte, error)) ([]byte, error) {
	for try := 0; try < s.maxTry; try++ {
		if !s.known {
			h, err := readVaultHead(ctx, s.kv, s.mount, s.path)
			if err != nil {
				return nil, err
			}
			s.head, s.known = h, true
		}
		seq := s.head.seq + 1
		line, err := build(seq, s.head.hash)
		if err != nil {
			return nil, err
		}
		_, err = s.kv.WriteDoc(ctx, kvPath(s.mount, s.recordPath(seq)), map[string]any{"line": string(line)}, 0)
		if err == nil {
			r, perr := ParseLine(line)
			if perr != nil {
				return nil, perr
			}
			if err := s.advance(ctx, seq, r.Hash); err != nil {
				return nil, err
			}
			return line, nil
		}
		if !isCASConflict(err) {
			s.known = false
			return nil, fmt.Errorf("audit: vault write %s: %w", s.recordPath(seq), err)
		}
		// Another replica claimed seq: help its record become the head,
		// then re-link after it.
		if err := s.catchUp(ctx, seq); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("audit: vault sink: gave up after %d conflicting attempts", s.maxTry)
}

// catchUp moves the cached head past a record another writer created at seq.
func (s *vaultSink) catchUp(ctx context.Context, seq uint64) error {
	line, err := readVaultRecord(ctx, s.kv, s.mount, s.path, seq)
	if err != nil {
		return err
	}
	if line == nil { // vanished (deleted?): start again from the head
		s.known = false
		return nil
	}
	r, err := ParseLine(line)
	if err != nil {
		return fmt.Errorf("audit: vault record %d: %w", seq, err)
	}
	if r.PrevHash != s.head.hash {
		// Our head was stale by more than one record: re-read it.
		s.known = false
		return nil
	}
	return s.advance(ctx, seq, r.Hash)
}

// advance sets head to (seq, hash) unless it is already at or past seq.
func (s *vaultSink) advance(ctx context.Context, seq uint64, hash string) error {
	for try := 0; ; try++ {
		if try == s.maxTry {
			return fmt.Errorf("audit: vault advance %s/head: gave up after %d conflicts", s.path, try)
		}
		ver, err := s.kv.WriteDoc(ctx, kvPath(s.mount, path.Join(s.path, "head")),
			map[string]any{"seq": seq, "hash": hash, "updated": s.now().UTC().Format(time.RFC3339Nano)},
			s.head.version)
		if err == nil {
			s.head = vaultHead{seq: seq, hash: hash, version: ver}
			return nil
		}
		if !isCASConflict(err) {
			s.known = false
			return fmt.Errorf("audit: vault advance %s/head: %w", s.path, err)
		}
		h, err := readVaultHead(ctx, s.kv, s.mount, s.path)
		if err != nil {
			return err
		}
		s.head = h
		if h.seq >= seq {
			return nil // someone else moved it at least as far
		}
		// The head is behind seq: retry the CAS on the new version. (If it
		// points before seq-1 the record at seq still links correctly; the
		// head is only a hint.)
	}
}

// ChainID names a file chain by its first record's hash.
func ChainID(genesisHash string) string {
	if len(genesisHash) < 16 {
		return ""
	}
	return genesisHash[:16]
}
