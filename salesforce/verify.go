package salesforce

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// VerifierOptions configure a Verifier. Zero values take defaults.
type VerifierOptions struct {
	// HTTPClient is used for token requests (default: RequestTimeout).
	HTTPClient *http.Client
	// Logger receives structured logs (default: zap.NewNop()).
	Logger *zap.Logger
	// Basic sends the pair in an Authorization: Basic header instead of
	// the form body.
	Basic bool
	// MaxBodyBytes bounds the response (default 1 MiB).
	MaxBodyBytes int64
	// RequestTimeout bounds one token request (default 30s).
	RequestTimeout time.Duration
	// Sleep waits between VerifyWithRetry attempts (default: a
	// context-aware timer).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Verifier proves a consumer key/secret pair with a real client-credentials
// token request. The token obtained is discarded.
type Verifier struct {
	opts VerifierOptions
	log  *zap.Logger
}

var _ rotator.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier with defaults filled in.
func NewVerifier(opts VerifierOptions) *Verifier {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.RequestTimeout, CheckRedirect: noRedirects}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	return &Verifier{opts: opts, log: opts.Logger}
}

// Verify requests a token with c at tokenURL (the org's My Domain
// .../services/oauth2/token). It returns nil when Salesforce issued a token,
// an error matching rotator.ErrRejected for invalid_client,
// invalid_client_id or invalid_grant, rotator.ErrUnreachable for network
// failures and 5xx, rotator.ErrRateLimited for rate_limit_exceeded. Other
// answers (unsupported_grant_type …) match no sentinel.
func (v *Verifier) Verify(ctx context.Context, tokenURL string, c rotator.Credentials) error {
	u, err := checkBaseURL(tokenURL)
	if err != nil {
		return &APIError{Op: "POST " + tokenPath, Code: "BAD_TOKEN_URL", Message: err.Error(), Class: ClassFinal}
	}
	if c.Key == "" || c.Secret.IsZero() {
		return &APIError{Op: "POST " + tokenPath, Code: "EMPTY_CREDENTIALS", Message: "key and secret are required", Class: ClassFinal}
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	user, pass := "", ""
	if v.opts.Basic {
		user, pass = c.Key, c.Secret.Reveal()
	} else {
		form.Set("client_id", c.Key)
		form.Set("client_secret", c.Secret.Reveal())
	}
	_, apiErr := tokenRequest(ctx, v.opts.HTTPClient, u.String(), form, user, pass, v.opts.MaxBodyBytes, v.opts.RequestTimeout)
	if apiErr != nil {
		return apiErr
	}
	return nil
}

// VerifyWithRetry calls Verify until it succeeds or policy gives up.
// Rejections are retried too, because new credentials take minutes to
// propagate; final errors that are neither a rejection nor transient end
// the loop at once. It returns the last error.
func (v *Verifier) VerifyWithRetry(ctx context.Context, tokenURL string, c rotator.Credentials, policy BackoffFunc) error {
	if policy == nil {
		policy = NoRetry
	}
	for attempt := 1; ; attempt++ {
		err := v.Verify(ctx, tokenURL, c)
		if err == nil {
			return nil
		}
		if !errors.Is(err, rotator.ErrRejected) && !errors.Is(err, rotator.ErrUnreachable) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		retry, wait := policy(attempt)
		if !retry {
			return err
		}
		v.log.Info("verification failed, retrying", zap.String(logKeyRoute, tokenPath), zap.Int(logKeyAttempt, attempt), zap.Duration(logKeyWait, wait), zap.NamedError(logKeyErr, err))
		if serr := v.opts.Sleep(ctx, wait); serr != nil {
			return err
		}
	}
}
