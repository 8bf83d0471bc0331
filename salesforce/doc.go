// Package salesforce is ecarotator's adapter to Salesforce: OAuth (JWT
// bearer and client credentials) against the Dev Hub, the Connect REST
// staged-credentials resources that rotate an External Client App's consumer
// key and secret, the Metadata API (SOAP) setting that gates secret access
// over REST, and a Verifier that proves a pair with a real token request.
//
// Every failure is an *APIError whose Class decides, in one place, whether a
// call is retried and which rotator sentinel it matches. Idempotent calls
// retry transient failures with an injected backoff; POST staged, PATCH
// rotate and DELETE staged never retry once they may have reached
// Salesforce and report rotator.ErrAmbiguous instead, so the engine re-reads
// state. Tokens, assertions and secrets never appear in errors or logs.
package salesforce
