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
//   - ClassPermission (403, INSUFFICIENT_ACCESS, the secret-access gate
//     closed): rotator.ErrPermission.
//   - ClassNotFound (404): rotator.ErrNotFound.
//   - ClassSlotOccupied (POST staged on a taken slot): rotator.ErrSlotOccupied.
//   - ClassAmbiguous (reset, timeout or 5xx on POST staged, PATCH rotate or
//     DELETE staged): never retried; rotator.ErrAmbiguous and
//     rotator.ErrUnreachable. The caller re-reads with Staged/Credentials.
//   - ClassFinal (any other answer): not retried, no sentinel.
//
// FAULTS.md lists every injected fault the simulator can produce and what the
// client does with it. Tokens, assertions and secrets never appear in errors
// or logs: errors carry only the status, Salesforce's errorCode and message.
package salesforce
