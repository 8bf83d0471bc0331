//go:build integration

package vault

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// acquireSoon retries Acquire while the lock is held, until ctx ends.
func acquireSoon(ctx context.Context, c *Client, name, holder string, ttl time.Duration) (rotator.Lease, error) {
	for {
		l, err := c.Acquire(ctx, name, holder, ttl)
		if !errors.Is(err, rotator.ErrLocked) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return l, ctx.Err()
		case <-time.After(2 * time.Millisecond): // contention backoff
		}
	}
}

func TestLockContentionAmongGoroutinesNeverHasTwoHolders(t *testing.T) {
	srv := vaulttest.Start(t)
	const workers, rounds = 8, 6
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	clients := []*Client{rootClient(t, srv), rootClient(t, srv)}
	var holders, maxHolders atomic.Int32
	var mu sync.Mutex
	var fences []int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%len(clients)]
			for range rounds {
				l, err := acquireSoon(ctx, c, "contended", fmt.Sprintf("worker-%d", w), time.Minute)
				if err != nil {
					errs <- err
					return
				}
				n := holders.Add(1)
				for {
					m := maxHolders.Load()
					if n <= m || maxHolders.CompareAndSwap(m, n) {
						break
					}
				}
				if err := c.Check(ctx, l); err != nil {
					errs <- fmt.Errorf("holder's own check: %w", err)
				}
				mu.Lock()
				fences = append(fences, l.Fence)
				mu.Unlock()
				holders.Add(-1)
				if err := c.Release(ctx, l); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := maxHolders.Load(); got != 1 {
		t.Fatalf("got at most %d concurrent holders, want 1", got)
	}
	if len(fences) != workers*rounds {
		t.Fatalf("got %d acquisitions, want %d", len(fences), workers*rounds)
	}
	slices.Sort(fences)
	if len(slices.Compact(fences)) != workers*rounds {
		t.Fatalf("fencing tokens repeat: %v", fences)
	}
}

func TestExpiredLeaseIsTakenOverAndTheStaleHolderIsFenced(t *testing.T) {
	srv := vaulttest.Start(t)
	clock := rotatortest.NewClock(time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC))
	a := rootClient(t, srv, func(o *Options) { o.Now = clock.Now })
	b := rootClient(t, srv, func(o *Options) { o.Now = clock.Now })
	ctx := t.Context()
	if _, err := a.WriteCredentials(ctx, "salesforce/fenced", creds("k0", "s0"), rotator.WriteOptions{}); err != nil {
		t.Fatal(err)
	}

	la, err := a.Acquire(ctx, "fenced", "replica-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, "fenced", "replica-b", time.Minute); !errors.Is(err, rotator.ErrLocked) {
		t.Fatalf("acquire while held: got %v, want ErrLocked", err)
	}
	if _, err := a.WriteCredentials(ctx, "salesforce/fenced", creds("k1", "s1"), rotator.WriteOptions{CAS: 1, Lease: &la}); err != nil {
		t.Fatalf("write under a live lease: %v", err)
	}

	clock.Advance(2 * time.Minute) // a's lease expires; a is "paused" (GC, partition)
	wantIs(t, a.Check(ctx, la), rotator.ErrFenced)
	lb, err := b.Acquire(ctx, "fenced", "replica-b", time.Minute)
	if err != nil {
		t.Fatalf("takeover after expiry: %v", err)
	}
	if lb.Fence <= la.Fence {
		t.Fatalf("got fence %d after %d, want it to grow", lb.Fence, la.Fence)
	}

	tests := []struct {
		name string
		do   func() error
	}{
		{"the stale holder's credential write is rejected", func() error {
			_, err := a.WriteCredentials(ctx, "salesforce/fenced", creds("k2", "s2"), rotator.WriteOptions{CAS: 2, Lease: &la})
			return err
		}},
		{"the stale holder's journal save is rejected", func() error {
			_, err := a.Save(ctx, "fenced", rotator.JournalEntry{App: "fenced"}, 0, &la)
			return err
		}},
		{"the stale holder's journal clear is rejected", func() error { return a.Clear(ctx, "fenced", &la) }},
		{"the stale holder cannot renew", func() error { _, err := a.Renew(ctx, la, time.Minute); return err }},
		{"the stale holder cannot release the new lease", func() error { return a.Release(ctx, la) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantIs(t, tt.do(), rotator.ErrFenced) })
	}

	if _, err := b.WriteCredentials(ctx, "salesforce/fenced", creds("k2", "s2"), rotator.WriteOptions{CAS: 2, Lease: &lb}); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}
	got, _, err := b.ReadCredentials(ctx, "salesforce/fenced")
	if err != nil || got.Current.Key != "k2" {
		t.Fatalf("got %q err=%v, want the new holder's k2", got.Current.Key, err)
	}
	if err := b.Release(ctx, lb); err != nil {
		t.Fatal(err)
	}
	wantIs(t, b.Check(ctx, lb), rotator.ErrFenced)
	lc, err := a.Acquire(ctx, "fenced", "replica-a", time.Minute)
	if err != nil || lc.Fence <= lb.Fence {
		t.Fatalf("acquire after release: fence %d (after %d) err=%v", lc.Fence, lb.Fence, err)
	}
}

func TestRenewingAnExpiredLeaseNobodyTookIsAllowed(t *testing.T) {
	srv := vaulttest.Start(t)
	clock := rotatortest.NewClock(time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC))
	c := rootClient(t, srv, func(o *Options) { o.Now = clock.Now })
	ctx := t.Context()
	l, err := c.Acquire(ctx, "lapsed", "me", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	wantIs(t, c.Check(ctx, l), rotator.ErrFenced)
	l2, err := c.Renew(ctx, l, time.Minute)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if l2.Fence != l.Fence || !l2.ExpiresAt.After(l.ExpiresAt) {
		t.Fatalf("got %+v after %+v, want the same fence and a later expiry", l2, l)
	}
	if err := c.Check(ctx, l); err != nil {
		t.Fatalf("check with the original lease value after renewal: %v", err)
	}
}

func TestExpiredLeaseIsTakenOverWithARealShortTTL(t *testing.T) {
	srv := vaulttest.Start(t)
	a, b := rootClient(t, srv), rootClient(t, srv)
	ctx := t.Context()
	la, err := a.Acquire(ctx, "short", "a", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var lb rotator.Lease
	eventually(t, 10*time.Second, "b takes over a's expired lease", func() error {
		lb, err = b.Acquire(ctx, "short", "b", time.Minute)
		return err
	})
	if time.Now().Before(la.ExpiresAt) {
		t.Fatalf("b acquired at %s, before a's lease expired at %s", time.Now(), la.ExpiresAt)
	}
	wantIs(t, a.Check(ctx, la), rotator.ErrFenced)
	if err := b.Check(ctx, lb); err != nil {
		t.Fatal(err)
	}
}

func TestKeepAliveHoldsTheLeaseAndReportsATakeover(t *testing.T) {
	srv := vaulttest.Start(t)
	a, b := rootClient(t, srv), rootClient(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const ttl = 1500 * time.Millisecond // renewals every 500ms: slack for a loaded machine
	l, err := a.Acquire(ctx, "kept", "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	done := a.KeepAlive(ctx, l, ttl)
	// Wait until several renewals happened: the lease then outlived its
	// first TTL several times over without anyone taking it.
	eventually(t, 20*time.Second, "renewals", func() error {
		st, err := a.readLock(ctx, "test", "kept")
		if err != nil {
			return err
		}
		if st.version < int(l.Fence)+4 {
			return fmt.Errorf("lock at version %d", st.version)
		}
		return nil
	})
	if time.Now().Before(l.ExpiresAt) {
		t.Fatalf("renewals observed before the first TTL passed; test proves nothing")
	}
	if _, err := b.Acquire(ctx, "kept", "b", ttl); !errors.Is(err, rotator.ErrLocked) {
		t.Fatalf("acquire during keep-alive: got %v, want ErrLocked", err)
	}
	if err := a.Check(ctx, l); err != nil {
		t.Fatalf("check during keep-alive: %v", err)
	}

	// Someone overwrites the lock (an operator breaking it by hand): the next
	// renewal must report the loss.
	if _, err := srv.Client(t).KVv2("secret").Put(ctx, DefaultLockPrefix+"/kept", map[string]any{
		fieldLockHolder: "intruder", fieldLockFence: 999, fieldLockExpiresAt: time.Now().Add(time.Hour).Format(time.RFC3339Nano),
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		wantIs(t, err, rotator.ErrFenced)
	case <-time.After(20 * time.Second):
		t.Fatal("keep-alive did not report the lost lease")
	}

	l2, err := b.Acquire(ctx, "other", "b", ttl)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(ctx)
	done2 := b.KeepAlive(ctx2, l2, ttl)
	cancel2()
	select {
	case err, ok := <-done2:
		if ok {
			t.Fatalf("after cancel got %v, want the channel closed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("keep-alive did not stop on cancel")
	}
}

// Environment of the lock helper process.
const (
	helperEnv       = "ECAROTATOR_VAULT_LOCK_HELPER" // "contend" or "hold"
	helperAddrEnv   = "ECAROTATOR_HELPER_ADDR"
	helperTokenEnv  = "ECAROTATOR_HELPER_TOKEN"
	helperDirEnv    = "ECAROTATOR_HELPER_DIR"
	helperRoundsEnv = "ECAROTATOR_HELPER_ROUNDS"
	helperNameEnv   = "ECAROTATOR_HELPER_NAME"
)

// TestHelperProcess is not a test: it is the body of the processes that
// the cross-process lock tests start by re-executing the test binary.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	os.Exit(helperMain(mode))
}

func helperMain(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(ctx, Options{
		Address: os.Getenv(helperAddrEnv),
		Auth:    AuthOptions{Method: AuthToken, Token: rotator.NewSecret(os.Getenv(helperTokenEnv))},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: new:", err)
		return 2
	}
	name := os.Getenv(helperNameEnv)
	switch mode {
	case "hold":
		l, err := c.Acquire(ctx, "crash", name, 500*time.Millisecond)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper: acquire:", err)
			return 2
		}
		fmt.Printf("held %d\n", l.Fence)
		<-ctx.Done() // killed by the test while holding
		return 0
	case "contend":
		dir := os.Getenv(helperDirEnv)
		rounds, _ := strconv.Atoi(os.Getenv(helperRoundsEnv))
		log, err := os.OpenFile(filepath.Join(dir, "acquisitions"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		defer log.Close()
		for range rounds {
			l, err := acquireSoon(ctx, c, "xproc", name, time.Minute)
			if err != nil {
				fmt.Fprintln(os.Stderr, "helper: acquire:", err)
				return 2
			}
			// The marker exists only while a holder holds: O_EXCL fails if
			// another process holds at the same time.
			marker := filepath.Join(dir, "held")
			f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				fmt.Fprintf(os.Stderr, "helper %s: two holders at once (fence %d): %v\n", name, l.Fence, err)
				return 3
			}
			f.Close()
			fmt.Fprintf(log, "%s %d\n", name, l.Fence)
			if err := os.Remove(marker); err != nil {
				fmt.Fprintln(os.Stderr, "helper:", err)
				return 2
			}
			if err := c.Release(ctx, l); err != nil {
				fmt.Fprintln(os.Stderr, "helper: release:", err)
				return 2
			}
		}
		return 0
	}
	return 2
}

func helperCmd(ctx context.Context, t *testing.T, srv *vaulttest.Server, mode, name string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperAddrEnv+"="+srv.Addr, helperTokenEnv+"="+srv.Token, helperNameEnv+"="+name)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = &strings.Builder{}
	return cmd
}

func TestLockContentionAcrossTwoProcessesNeverHasTwoHolders(t *testing.T) {
	srv := vaulttest.Start(t)
	dir := t.TempDir()
	const rounds = 15
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var cmds []*exec.Cmd
	for _, name := range []string{"proc-1", "proc-2"} {
		cmd := helperCmd(ctx, t, srv, "contend", name, helperDirEnv+"="+dir, helperRoundsEnv+"="+strconv.Itoa(rounds))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", cmd.Process.Pid, err, cmd.Stderr)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "acquisitions"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2*rounds {
		t.Fatalf("got %d acquisitions, want %d", len(lines), 2*rounds)
	}
	per := map[string]int{}
	var last int64
	for _, ln := range lines {
		name, f, _ := strings.Cut(ln, " ")
		fence, _ := strconv.ParseInt(f, 10, 64)
		if fence <= last {
			t.Fatalf("fences in holding order must grow: %d after %d", fence, last)
		}
		last = fence
		per[name]++
	}
	if per["proc-1"] != rounds || per["proc-2"] != rounds {
		t.Fatalf("got acquisitions per process %v, want %d each", per, rounds)
	}
}

func TestLeaseOfAKilledProcessIsTakenOverAfterExpiry(t *testing.T) {
	srv := vaulttest.Start(t)
	c := rootClient(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := helperCmd(ctx, t, srv, "hold", "doomed")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said nothing: %v\n%s", err, cmd.Stderr)
	}
	fence, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "held ")), 10, 64)
	if err := cmd.Process.Kill(); err != nil { // crash while holding
		t.Fatal(err)
	}
	_ = cmd.Wait()

	if _, err := c.Acquire(ctx, "crash", "survivor", time.Minute); err == nil {
		// Possible only if the 500ms TTL already ran out; still correct.
		t.Log("lease had already expired when the survivor first tried")
	} else {
		var l rotator.Lease
		eventually(t, 10*time.Second, "survivor takes over", func() error {
			l, err = c.Acquire(ctx, "crash", "survivor", time.Minute)
			return err
		})
		if l.Fence <= fence {
			t.Fatalf("got fence %d after the dead holder's %d", l.Fence, fence)
		}
	}
	dead := rotator.Lease{Name: "crash", Holder: "doomed", Fence: fence}
	wantIs(t, c.Check(ctx, dead), rotator.ErrFenced)
}
