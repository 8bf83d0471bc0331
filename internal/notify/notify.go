// Package notify sends ecarotator's signed JSON webhooks.
//
// Every delivery is a small JSON document (event, app, org, rotation id,
// outcome, time, message) that never carries a credential, signed with
// HMAC-SHA256 over timestamp + "." + body, the way Stripe and GitHub sign
// theirs, so a receiver can check both origin and freshness (Verify,
// VerifyFresh). Deliveries are asynchronous: each webhook has its own
// bounded queue and worker, so a slow or failing receiver delays nobody
// else; failures on 5xx, 408, 429 and network errors are retried with the
// injected backoff up to the webhook's MaxAttempts, other 4xx answers are
// final. Close drains the queues within the caller's deadline.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/logging"
	"github.com/ecarotator/ecarotator/rotator"
)

// Event kinds a webhook can subscribe to. All but EventRotationUpcoming are
// the audit trail's names (rotator.EventType).
const (
	EventRotationSucceeded = string(rotator.EventRotationSucceeded)
	EventRotationFailed    = string(rotator.EventRotationFailed)
	EventRotationOrphaned  = string(rotator.EventRotationOrphaned)
	EventDriftDetected     = string(rotator.EventDriftDetected)
	EventPreviousRevoked   = string(rotator.EventPreviousRevoked)
	// EventRotationUpcoming is a reminder sent ReminderLead before a
	// scheduled rotation (see UpcomingReminders).
	EventRotationUpcoming = "rotation.upcoming"
)

// Events lists every event kind, for config validation and docs.
var Events = []string{
	EventRotationSucceeded, EventRotationFailed, EventRotationOrphaned,
	EventDriftDetected, EventPreviousRevoked, EventRotationUpcoming,
}

// Headers set on every delivery.
const (
	HeaderSignature = "X-Ecarotator-Signature" // "sha256=<hex>"
	HeaderTimestamp = "X-Ecarotator-Timestamp" // Unix seconds, part of the signed text
	HeaderEvent     = "X-Ecarotator-Event"
	HeaderDelivery  = "X-Ecarotator-Delivery" // the same on every retry of one delivery
)

// Message is the JSON body of a webhook. It holds no secret by design:
// every field is a plain identifier, time or sentence.
type Message struct {
	Event      string    `json:"event"`
	App        string    `json:"app,omitempty"`
	Org        string    `json:"org,omitempty"`
	RotationID string    `json:"rotation_id,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
	Time       time.Time `json:"time"`
	Message    string    `json:"message,omitempty"`
	// Due is the planned rotation time of a rotation.upcoming reminder.
	Due time.Time `json:"due,omitzero"`
	// Delivery is set by the Notifier per webhook (the X-Ecarotator-Delivery
	// header) so receivers can drop duplicates.
	Delivery string `json:"delivery,omitempty"`

	// To restricts the message to the named webhooks (an app's notify
	// list); empty means every webhook whose filter matches.
	To []string `json:"-"`
}

// Webhook is one configured receiver.
type Webhook struct {
	Name string
	// URL is never logged or put into errors: chat webhooks carry their
	// credential in the path.
	URL string
	// Secret is the HMAC key, loaded from Vault by the caller.
	Secret rotator.Secret
	// Events filters event kinds; empty or "*" means all.
	Events []string
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// MaxAttempts bounds attempts per delivery (default 5).
	MaxAttempts int
}

func (w Webhook) wants(m Message) bool {
	if len(m.To) > 0 && !slices.Contains(m.To, w.Name) {
		return false
	}
	return len(w.Events) == 0 || slices.Contains(w.Events, "*") || slices.Contains(w.Events, m.Event)
}

// Result reports one finished delivery (for logs and metrics).
type Result struct {
	Webhook  string
	Event    string
	Delivery string
	Attempts int
	Status   int   // last HTTP status, 0 when none
	Err      error // nil on a 2xx
}

// Options configure a Notifier.
type Options struct {
	Webhooks []Webhook
	// Client sends the requests (default: a client without a global
	// timeout; each attempt has the webhook's Timeout).
	Client *http.Client
	// Now stamps the signature timestamp (default time.Now).
	Now func() time.Time
	// Backoff gives the wait after the attempt-th failed attempt (default
	// DefaultBackoff; its retry answer is ignored, the webhook's
	// MaxAttempts decides). Tests pass rotator.NoRetry (no wait).
	Backoff rotator.BackoffFunc
	// QueueSize bounds each webhook's queue (default 100). A full queue
	// drops the message and Notify reports ErrQueueFull.
	QueueSize int
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Report is called once per finished delivery (optional, from worker
	// goroutines).
	Report func(Result)
}

// DefaultBackoff doubles from one second up to one minute.
func DefaultBackoff(attempt int) (bool, time.Duration) {
	return rotator.Backoff{Base: time.Second, Max: time.Minute, Attempts: rotator.Forever}.NextAttempt(attempt)
}

func (o *Options) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	// Never follow redirects (review L3): a receiver, or whoever controls
	// its DNS, could bounce signed deliveries to any host, plain http
	// included. A 3xx is a final failure. The caller's client is copied,
	// not changed.
	c := *o.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.Client = &c
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.QueueSize == 0 {
		o.QueueSize = 100
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	for i := range o.Webhooks {
		w := &o.Webhooks[i]
		if w.Timeout == 0 {
			w.Timeout = 10 * time.Second
		}
		if w.MaxAttempts == 0 {
			w.MaxAttempts = 5
		}
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.QueueSize < 0 {
		errs = append(errs, errors.New("queue size must not be negative"))
	}
	seen := map[string]bool{}
	for i, w := range o.Webhooks {
		if w.Name == "" {
			errs = append(errs, fmt.Errorf("webhooks[%d]: name is required", i))
		}
		if seen[w.Name] {
			errs = append(errs, fmt.Errorf("webhooks[%d]: duplicate name %q", i, w.Name))
		}
		seen[w.Name] = true
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhooks[%d] %s: url must be an absolute http(s) URL", i, w.Name))
		}
		if w.Secret.IsZero() {
			errs = append(errs, fmt.Errorf("webhooks[%d] %s: hmac secret is required", i, w.Name))
		}
		if w.Timeout < 0 || w.MaxAttempts < 0 {
			errs = append(errs, fmt.Errorf("webhooks[%d] %s: timeout and max attempts must not be negative", i, w.Name))
		}
		for _, e := range w.Events {
			if e != "*" && !slices.Contains(Events, e) {
				errs = append(errs, fmt.Errorf("webhooks[%d] %s: unknown event %q", i, w.Name, e))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("notify: invalid options: %w", err)
	}
	return nil
}

// Errors of the Notifier.
var (
	// ErrQueueFull: a webhook's queue was full and the message was dropped
	// for it.
	ErrQueueFull = errors.New("notify: queue full, message dropped")
	// ErrClosed: Notify after Close.
	ErrClosed = errors.New("notify: notifier closed")
	// ErrRejected: the receiver answered with a final 4xx.
	ErrRejected = errors.New("notify: receiver rejected the delivery")
	// ErrGaveUp: every attempt failed with a retryable error.
	ErrGaveUp = errors.New("notify: delivery failed after all attempts")
)

// StatusError is a non-2xx answer.
type StatusError struct {
	Status int
}

// Error implements error.
func (e *StatusError) Error() string {
	return "notify: receiver answered HTTP " + strconv.Itoa(e.Status)
}

// retryable decides, in one place, which answers are worth another try.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// delivery is one message bound for one webhook.
type delivery struct {
	msg  Message
	body []byte
}

// worker owns one webhook's queue.
type worker struct {
	hook  Webhook
	queue chan delivery
}

// Notifier sends webhooks asynchronously. Create it with New, call Notify
// from anywhere, and Close it once.
type Notifier struct {
	opts    Options
	workers []*worker

	mu     sync.RWMutex // guards closed against sends on closed queues
	closed bool

	ctx    context.Context // cancelled when Close gives up draining
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New validates opts and starts one worker per webhook. The workers run
// until Close.
func New(opts Options) (*Notifier, error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{opts: opts, ctx: ctx, cancel: cancel}
	for _, h := range opts.Webhooks {
		w := &worker{hook: h, queue: make(chan delivery, opts.QueueSize)}
		n.workers = append(n.workers, w)
		n.wg.Add(1)
		go n.work(w)
	}
	return n, nil
}

// Notify queues m for every webhook that wants it and returns at once. It
// returns ErrQueueFull (naming the webhooks) when a queue dropped it, and
// ErrClosed after Close. A zero m.Time is set to Now.
func (n *Notifier) Notify(m Message) error {
	if m.Time.IsZero() {
		m.Time = n.opts.Now()
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return ErrClosed
	}
	var full []string
	for _, w := range n.workers {
		if !w.hook.wants(m) {
			continue
		}
		d := m
		d.Delivery = newID()
		body, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("notify: encode %s: %w", m.Event, err)
		}
		select {
		case w.queue <- delivery{msg: d, body: body}:
		default:
			full = append(full, w.hook.Name)
		}
	}
	if len(full) > 0 {
		sort.Strings(full)
		return fmt.Errorf("%w for %v", ErrQueueFull, full)
	}
	return nil
}

// Close stops accepting messages and waits until the queues are drained.
// When ctx ends first, in-flight attempts are cancelled, what is left in
// the queues is dropped, and Close returns ctx's error. Close is
// idempotent.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, w := range n.workers {
			close(w.queue)
		}
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { // owned by Close: it waits for done on every path
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return fmt.Errorf("notify: close: queues not drained: %w", ctx.Err())
	}
}

func (n *Notifier) work(w *worker) {
	defer n.wg.Done()
	for d := range w.queue {
		if n.ctx.Err() != nil {
			continue // draining was abandoned: drop quickly
		}
		res := n.deliver(n.ctx, w.hook, d)
		log := n.opts.Logger.With(zap.String("webhook", w.hook.Name), zap.String(logging.KeyEvent, d.msg.Event),
			zap.String(logging.KeyApp, d.msg.App), zap.Int(logging.KeyAttempt, res.Attempts))
		if res.Err != nil {
			log.Error("webhook delivery failed", logging.Err(res.Err))
		} else {
			log.Debug("webhook delivered")
		}
		if n.opts.Report != nil {
			n.opts.Report(res)
		}
	}
}

// deliver makes up to MaxAttempts attempts.
func (n *Notifier) deliver(ctx context.Context, h Webhook, d delivery) Result {
	res := Result{Webhook: h.Name, Event: d.msg.Event, Delivery: d.msg.Delivery}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		status, err := n.attempt(ctx, h, d)
		res.Status = status
		if err == nil {
			res.Err = nil
			return res
		}
		if status != 0 && !retryable(status) {
			res.Err = fmt.Errorf("%w: %s: %w", ErrRejected, h.Name, err)
			return res
		}
		if attempt >= h.MaxAttempts || ctx.Err() != nil {
			res.Err = fmt.Errorf("%w: %s after %d attempts: %w", ErrGaveUp, h.Name, attempt, err)
			return res
		}
		n.opts.Logger.Warn("webhook attempt failed, retrying", zap.String("webhook", h.Name),
			zap.String(logging.KeyEvent, d.msg.Event), zap.Int(logging.KeyAttempt, attempt), logging.Err(err))
		if _, wait := n.opts.Backoff(attempt); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
}

// attempt sends one signed request. It returns the HTTP status (0 when
// none came back) and an error for anything but 2xx. Errors never contain
// the URL.
func (n *Notifier) attempt(ctx context.Context, h Webhook, d delivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(d.body))
	if err != nil {
		return 0, errors.New("notify: build request: invalid webhook URL")
	}
	ts := strconv.FormatInt(n.opts.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ecarotator-webhook/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(h.Secret, ts, d.body))
	req.Header.Set(HeaderEvent, d.msg.Event)
	req.Header.Set(HeaderDelivery, d.msg.Delivery)
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error prints the URL
		}
		return 0, fmt.Errorf("notify: post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, &StatusError{Status: resp.StatusCode}
	}
	return resp.StatusCode, nil
}

// Sign returns the X-Ecarotator-Signature value for body sent at timestamp
// (Unix seconds as a decimal string): "sha256=" + hex(HMAC-SHA256(secret,
// timestamp + "." + body)).
func Sign(secret rotator.Secret, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac([]byte(secret.Reveal()), timestamp, body))
}

func mac(key []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify reports whether signature (the X-Ecarotator-Signature header) is
// the HMAC of timestamp (the X-Ecarotator-Timestamp header) and body under
// secret. The comparison takes constant time. Receivers should also check
// freshness (VerifyFresh).
func Verify(secret []byte, timestamp string, body []byte, signature string) bool {
	const prefix = "sha256="
	if len(signature) <= len(prefix) || signature[:len(prefix)] != prefix {
		return false
	}
	got, err := hex.DecodeString(signature[len(prefix):])
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, timestamp, body))
}

// VerifyFresh is Verify plus a replay check: the timestamp must be within
// maxSkew of now.
func VerifyFresh(secret []byte, timestamp string, body []byte, signature string, now time.Time, maxSkew time.Duration) bool {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return false
	}
	return Verify(secret, timestamp, body, signature)
}

// newID returns a random delivery id.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// UpcomingReminders returns, sorted, the apps whose next run falls within
// (now, now+lead]. It is pure; Reminders adds the "only once per run"
// memory the daemon needs.
func UpcomingReminders(now time.Time, nextRuns map[string]time.Time, lead time.Duration) []string {
	if lead <= 0 {
		return nil
	}
	var out []string
	horizon := now.Add(lead)
	for app, next := range nextRuns {
		if next.After(now) && !next.After(horizon) {
			out = append(out, app)
		}
	}
	sort.Strings(out)
	return out
}

// Reminders remembers which planned runs were already announced, so each
// run gets one rotation.upcoming reminder even though the daemon asks on
// every tick. The zero value is ready to use; it is not safe for
// concurrent use.
type Reminders struct {
	sent map[string]time.Time
}

// Due returns the apps to remind now: UpcomingReminders minus the runs
// already reminded. Apps that left nextRuns are forgotten.
func (r *Reminders) Due(now time.Time, nextRuns map[string]time.Time, lead time.Duration) []string {
	if r.sent == nil {
		r.sent = map[string]time.Time{}
	}
	for app := range r.sent {
		if _, ok := nextRuns[app]; !ok {
			delete(r.sent, app)
		}
	}
	var out []string
	for _, app := range UpcomingReminders(now, nextRuns, lead) {
		if at, ok := r.sent[app]; ok && at.Equal(nextRuns[app]) {
			continue
		}
		r.sent[app] = nextRuns[app]
		out = append(out, app)
	}
	return out
}
