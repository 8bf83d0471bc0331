// Package audit is ecarotator's tamper-evident audit trail: the record
// schema, the hash chain and its MAC (Vault transit; a KV key in lab mode),
// the sinks (an append-only file with fsync per event, shared by the daemon
// and CLI writers under a lock, and Vault KV for several replicas sharing
// one chain), the chain head signed with a transit ed25519 key and anchored
// in Vault, and the auditor's side: streaming Verify (online, or offline
// with the public key), Scan with filters, the story of one rotation,
// exports and the compliance report. docs/audit.md says what Verify proves
// and what it cannot.
//
// # Record format (schema v1)
//
// One JSON object per line: the rotator.Event fields (event, time, app,
// org, eca, consumer_key, rotation_id, step, actor, outcome, error,
// vault_path, vault_version, fingerprint, details) plus v (1), seq (1, 2,
// … with no gaps), prev_hash (the previous record's hash; 64 zeros for seq
// 1), hash and mac. Everything but hash and mac is written in canonical form
// (AppendCanonical: sorted keys, no whitespace, encoding/json escaping, UTC
// RFC 3339 nano time, empty optional fields omitted); hash is the hex
// SHA-256 of that canonical object, and the line is that object with
// `,"hash":"…","mac":"…"}` in place of its closing brace. mac is the MAC of
// the hash string: "hs256:<base64>" (HMAC-SHA256 with a KV key) or
// "vault:v<N>:<base64>" (transit). A secret is represented only by its
// fingerprint, "fp1:" + base64url(HMAC-SHA256(k, secret)[:16]) with k
// derived from the MAC key. rotator.Event has no field of type
// rotator.Secret, and Record replaces detail values under secret-sounding
// keys (secret, password, private, seed, credential, token, …) with
// "<redacted>" as a safety net, noting them in details.audit_redacted.
//
// # Integrity
//
// Edits change a hash; deleted, duplicated or swapped lines break seq and
// prev_hash; a forger who recomputes the hashes cannot produce the MACs,
// which only the daemon's policy can compute. Auditors check MACs through
// transit/verify and rely on signatures: the writer signs (chain id, seq,
// hash, time) with an ed25519 transit key, appends the statement as an
// audit.checkpoint record (so a file verifies offline with the public key)
// and advances the anchor at <checkpoint_path>/anchors/<anchor id> in
// Vault with check-and-set — after every event that ends an action, every
// CheckpointEvery records and at Close. New refuses, and Verify fails on, a
// file that is missing, ends before the anchor or holds another chain
// (AnchorError, KindDeleted, KindTruncated, KindReplaced); `ecarotator
// audit repair` records such a loss and moves the anchor. The chain id is
// the first 16 hex digits of the seq-1 hash.
//
// # Files and crashes
//
// The live file (mode 0600, O_APPEND, fsync per record) rotates by size to
// path.1, path.2, … (oldest first); the chain continues across files. At
// open the writer recovers the head from the last line and checks its MAC.
// A torn last line (a crash mid-append) is reported, never silently
// accepted: New fails with a *TornTailError and Verify reports KindTorn.
// An operator repairs it with `ecarotator audit repair` (Options.
// RepairTornTail), which keeps the fragment, ends it with a newline, and
// appends an audit.repair record naming the fragment's line, offset, length
// and SHA-256; Verify accepts exactly that shape and lists the repair.
//
// # Failing closed
//
// Record returns an error wrapping ErrNotDurable when any configured sink
// could not make the event durable; after a failed file write the writer
// refuses every later append. FailOpen turns that into a logged error for
// deployments that set fail_closed: false.
//
// # Vault sink
//
// Records at <sink>/records/<seq> (created with check-and-set 0: exactly
// one replica wins each seq) and the head at <sink>/head (advanced with
// check-and-set). A loser helps the winner's record become the head, re-links
// and retries, so replicas produce one linear chain and a writer that died
// between the two writes does not stall the others. The file and the Vault
// sink are separate chains (a replica's file holds its own events).
package audit
