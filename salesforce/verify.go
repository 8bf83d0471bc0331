package salesforce

import (
	"context"
	"errors"
	"net/http"
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
// .../services/oauth2/token) through golang.org/x/oauth2/clientcredentials.
// It returns nil when Salesforce issued a token, an error matching
// rotator.ErrRejected for a refused pair (invalid_client,
// invalid_client_credentials, invalid_client_id, most invalid_grant texts),
// rotator.ErrMisconfigured when the org cannot issue a client-credentials
// token for this app at all (app_not_found, no run-as user,
// unsupported_grant_type), rotator.ErrUnreachable for network failures and
// 5xx, rotator.ErrRateLimited for rate_limit_exceeded.
func (v *Verifier) Verify(ctx context.Context, tokenURL string, c rotator.Credentials) error {
	u, err := checkBaseURL(tokenURL)
	if err != nil {
		return &APIError{Op: "POST " + tokenPath, Code: "BAD_TOKEN_URL", Message: err.Error(), Class: ClassFinal}
	}
	if c.Key == "" || c.Secret.IsZero() {
		return &APIError{Op: "POST " + tokenPath, Code: "EMPTY_CREDENTIALS", Message: "key and secret are required", Class: ClassFinal}
	}
	_, apiErr := clientCredentialsFetch(ctx, v.opts.HTTPClient, v.opts.RequestTimeout, u.String(), c.Key, c.Secret, v.opts.Basic)
	if apiErr != nil {
		return apiErr
	}
	return nil
}

// VerifyWithRetry calls Verify until it succeeds or policy gives up.
// Rejections are retried too, because new credentials take minutes to
// propagate; final errors that are neither a rejection nor transient end
// the loop at once. It returns the last error.
func (v *Verifier) VerifyWithRetry(ctx context.Context, tokenURL string, c rotator.Credentials, policy rotator.BackoffFunc) error {
	if policy == nil {
		policy = rotator.NoRetry
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
