package salesforce

// ClassifyTokenError exposes the token endpoint's classification to the
// external tests that generate FAULTS.md.
var ClassifyTokenError = classifyOAuthError
