// Package salesforce is ecarotator's adapter to Salesforce: OAuth (JWT
// bearer and client credentials) against the Dev Hub, the Connect REST
// staged-credentials resources that rotate an External Client App's consumer
// key and secret, the Metadata API (SOAP) setting that gates secret access
// over REST, and a Verifier that proves a pair with a real token request.
//
// # Errors and retries
//
// Every failure is an *APIError whose Class decides, in one place
// (errors.go), whether a call is retried and which rotator sentinel it
// matches:
//
//   - ClassTransient (5xx, 429, reset, timeout on an idempotent call):
//     retried with Options.Backoff, honouring Retry-After; rotator.ErrUnreachable.
//   - ClassRateLimited (REQUEST_LIMIT_EXCEEDED, rate_limit_exceeded): never
//     hot-retried; rotator.ErrRateLimited.
//   - ClassAuth (invalid_client, invalid_client_id, invalid_grant, a 401 that
//     survives one re-authentication): rotator.ErrRejected.
//   - ClassPermission (403, INSUFFICIENT_ACCESS, the secret-access setting
//     off): rotator.ErrPermission.
//   - ClassNotFound (404): rotator.ErrNotFound.
//   - ClassSlotOccupied (POST staged on a taken slot): rotator.ErrSlotOccupied.
//   - ClassAmbiguous (reset, timeout or 5xx on POST staged, PATCH rotate or
//     DELETE staged): never retried; rotator.ErrAmbiguous and
//     rotator.ErrUnreachable. The caller re-reads with Staged/Credentials.
//   - ClassConfig (app_not_found, unsupported_grant_type, invalid_grant
//     "no client credentials user enabled" / "request not supported on
//     this domain"): the org is set up so the request cannot work; not
//     retried; rotator.ErrMisconfigured.
//   - ClassFinal (any other answer): not retried, no sentinel.
//
// # OAuth
//
// Token requests go through golang.org/x/oauth2: x/oauth2/jwt for the JWT
// bearer grant (aud is a single JSON string, exp is now + 2m50s) and
// x/oauth2/clientcredentials for client credentials (Dev Hub login and the
// Verifier). Our classification sits on top: x/oauth2's RetrieveError (whose
// text embeds the raw body) never reaches an error. Two x/oauth2 quirks are
// handled here: x/oauth2/jwt flattens transport errors into text, so a
// recording transport keeps the cause (dial failure, reset, timeout); and it
// signs with the wall clock (no injectable clock), so a test that moves a
// simulator's clock ahead must not expect a later JWT to be valid there.
// x/oauth2 bounds token response bodies at 1 MiB itself, so
// Options.MaxBodyBytes applies to the REST and SOAP calls only.
// Options.Audience is auto (My Domain, then the login URL; the one that
// logs in is remembered for the Client's life and logged), login, mydomain
// or a URL.
//
// # Uncertain behaviours
//
// Where Salesforce's behaviour is undocumented the client is tolerant, and
// sfsim's strict profile takes the strict side so tests notice: FAULTS.md
// lists each uncertainty, what is confirmed, what strict assumes and which
// sfsim switch covers it. FindApp falls back from OAuth usage (which lists
// only apps with active tokens) to SOQL on ExternalClientApplication;
// Versions, Limits, Identity, Query, FindECA and UserPermissions serve
// `ecarotator doctor`.
//
// FAULTS.md lists every injected fault the simulator can produce and what the
// client does with it. Tokens, assertions and secrets never appear in errors
// or logs: errors carry only the status, Salesforce's errorCode and message.
package salesforce
