package salesforce_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// uncertainty is one Salesforce behaviour the public sources leave open
// (or that only field reports describe): what is known, what the strict
// simulator assumes, which sfsim switch covers it, and what ecarotator does
// about it. It is rendered into FAULTS.md.
type uncertainty struct {
	behaviour, known, strict, lenient, sw, ecarotator string
}

var uncertainties = []uncertainty{
	{"JWT `aud` as a JSON array", "unconfirmed; every Salesforce reference shows a string", "refused (`audience is invalid`)", "accepted", "`arrayAudience`",
		"sends a single string (golang.org/x/oauth2/jwt)"},
	{"JWT `aud` value: login URL vs My Domain", "2026 reports: some orgs refuse the login URL for ECAs (`app_not_found`)", "login URL and the org's My Domain accepted", "same", "`jwtAudiences` (list)",
		"`auth.audience: auto` tries My Domain, then the login URL, remembers the one that worked and logs it; `login`, `mydomain` or a URL pin it"},
	{"JWT `exp` bounds", "doc: \"within 3 minutes\"; not known to be enforced", "any future `exp` (seconds, milliseconds, huge) accepted; a past one refused with `expired authorization code`", "same", "`jwtMaxLifetime` (0 = no bound)",
		"`exp` = now + 2m50s"},
	{"`/apps/oauth/usage` lists only apps with OAuth usage data", "doc wording (\"apps that have OAuth usage data\"); UI: active tokens", "only ECAs with an unexpired token in the org", "every ECA", "`usageListsAll`",
		"falls back to SOQL on `ExternalClientApplication` by `DeveloperName`; caches app id, consumer id and distribution state in the app's state in Vault; `eca_id` pins the id"},
	{"The secret-access setting gates usage, consumers and `part=key`", "unconfirmed (documented for secrets only; sfdx-hardis says usage needs it)", "gated (403 while off)", "served", "`readsUngated`",
		"toggle mode opens the setting on a gated read (journaled first) and reads again; always_on stops with the 403"},
	{"An opened setting applies late: 200 without `secret`", "integrator reports", "configurable delay (`settingDelay`; the integration harness runs 2s)", "same", "`settingDelay`",
		"waits (bounded, backoff) for the primary secret before POST; a secret-less POST is settled by GET staged, else the entry is deleted and the attempt fails (`ErrSecretNotReturned`) — never a second POST"},
	{"POST staged without a body", "doc: POST takes no body; one report of a reset", "accepted", "accepted", "fault `reset-empty-body` (opt-in)",
		"sends `{}`"},
	{"ECA not installed in the org at the token endpoint", "field report: `app_not_found`", "`app_not_found`", "same", "—",
		"class config (`rotator.ErrMisconfigured`): preflight refuses to rotate, verify stops at once"},
	{"Error for an occupied staged slot", "unconfirmed", "400 `INVALID_INPUT`", "same", "`occupiedSlotStatus/Code/Message`",
		"409, a configured code, or any 4xx while GET staged shows an entry = slot occupied"},
	{"GET staged on an empty slot", "unconfirmed (404 or `[]`)", "200 `[]`", "same", "`emptyStagedNotFound`", "both read as empty"},
	{"Active staged pair authenticates before rotate", "unconfirmed", "no", "same", "`stagedAuthenticates`", "not relied on"},
	{"Life of the Rotated (previous) pair", "30 days per sfdx-hardis and Infisical", "30 days", "same", "`rotatedValidity`", "`salesforce-expiry` overlap uses the entry's expirationDate"},
	{"Life of an Active staged entry", "doc: 30 days", "30 days, then `Expired`", "same", "`stagedValidity`", "non-Active leftovers are deleted"},
	{"Consumer collection carries secrets", "unconfirmed", "no", "same", "`collectionIncludesSecrets`", "reads secrets by consumer only"},
	{"`Retry-After` on 503", "unconfirmed", "absent", "same", "`retryAfter`", "honoured, capped"},
	{"Error when the setting is off", "unconfirmed code and text", "403 `FUNCTIONALITY_NOT_ENABLED`", "same", "`secretAccessStatus/Code/Message`", "403 or the known wordings = permission"},
	{"PATCH rotate response", "doc: \"App Oauth Staged Credentials\"; which entry it shows is unconfirmed", "the Rotated entry (previous pair, new id)", "same", "`patchOmitsRotated`",
		"uses the answer's Rotated entry (its key must be the old key) for the overlap's id and expiry, else lists the slot"},
	{"Meaning of the staged object's `url`", "doc: primary credentials URL; Infisical: the item", "primary URL", "same", "`stagedURLIsItem`", "builds the item URL from `id`"},
	{"Newest API version served", "65.0+ needed for staged credentials", "67.0", "same", "`maxAPIVersion`", "`doctor` fails below 65.0"},
	{"Packaged ECAs through the staged API", "newest Help (pt_BR): local ECAs only", "sfsim `distributionState`", "same", "`ECAConfig.DistributionState`", "`doctor` fails the ECA row and names `strategy: metadata` (issue 12)"},
	{"API names of the ECA permissions", "assumed: `PermissionsExternalClientAppDeveloper`, `PermissionsViewClientSecret`", "those names", "same", "—", "`doctor` reports it cannot read them (INVALID_FIELD) instead of guessing"},
}

// tokenErrors is the token endpoint's error vocabulary and its class.
var tokenErrors = []struct{ code, desc, source string }{
	{"invalid_client", "invalid client credentials", "wrong secret"},
	{"invalid_client_credentials", "", "older docs; same as invalid_client"},
	{"invalid_client_id", "client identifier invalid", "unknown key, or not propagated yet"},
	{"invalid_grant", "user hasn't approved this consumer", "JWT user not pre-authorized"},
	{"invalid_grant", "expired authorization code", "a JWT past its exp"},
	{"invalid_grant", "invalid assertion", "bad signature or claims"},
	{"invalid_grant", "audience is invalid", "wrong JWT aud"},
	{"invalid_grant", "no client credentials user enabled", "no run-as user for the flow"},
	{"invalid_grant", "request not supported on this domain", "client credentials on login/test"},
	{"app_not_found", "External client app is not installed in this org", "ECA not installed / not usable with that audience"},
	{"unsupported_grant_type", "grant type not supported", "flow not enabled"},
	{"inactive_user", "", "user deactivated"},
	{"rate_limit_exceeded", "", "token endpoint rate limit"},
}

func uncertaintyMarkdown() string {
	var b strings.Builder
	b.WriteString("\n## Uncertain Salesforce behaviours\n\n")
	b.WriteString("What is confirmed, what the strict simulator (`profile: strict`, the default for tests and the demo)\n")
	b.WriteString("assumes, which `sfsim` switch covers it, and what ecarotator does. `profile: lenient` turns on every\n")
	b.WriteString("lenient switch (" + strings.Join(sfsim.LenientSwitches, ", ") + "). `ecarotator doctor` reports the ones it can observe.\n\n")
	b.WriteString("| behaviour | known | strict sfsim | lenient sfsim | switch | ecarotator |\n|---|---|---|---|---|---|\n")
	for _, u := range uncertainties {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", u.behaviour, u.known, u.strict, u.lenient, u.sw, u.ecarotator)
	}
	b.WriteString("\n## Token endpoint errors\n\n| error | description | meaning | class | sentinel |\n|---|---|---|---|---|\n")
	for _, e := range tokenErrors {
		c := salesforce.ClassifyTokenError(400, e.code, e.desc)
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", e.code, e.desc, e.source, c, classSentinel(c))
	}
	return b.String()
}

func classSentinel(c salesforce.Class) string {
	switch c {
	case salesforce.ClassAuth:
		return "`rotator.ErrRejected`"
	case salesforce.ClassConfig:
		return "`rotator.ErrMisconfigured`"
	case salesforce.ClassRateLimited:
		return "`rotator.ErrRateLimited`"
	case salesforce.ClassTransient:
		return "`rotator.ErrUnreachable`"
	}
	return "—"
}

// TestUncertaintySwitchesExist keeps the table honest: every switch it
// names is a field of sfsim.Behavior (by its YAML name).
func TestUncertaintySwitchesExist(t *testing.T) {
	fields := map[string]bool{}
	rt := reflect.TypeOf(sfsim.Behavior{})
	for i := range rt.NumField() {
		fields[strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]] = true
	}
	for _, u := range uncertainties {
		if !strings.HasPrefix(u.sw, "`") || strings.HasPrefix(u.sw, "`ECAConfig") {
			continue
		}
		name := strings.Trim(strings.Fields(u.sw)[0], "`")
		for _, part := range strings.Split(name, "/") {
			if part == "Code" || part == "Message" {
				continue
			}
			if !fields[part] {
				t.Errorf("%q names switch %q, which sfsim.Behavior lacks", u.behaviour, part)
			}
		}
	}
	for _, s := range sfsim.LenientSwitches {
		if !fields[s] {
			t.Errorf("lenient switch %q is no Behavior field", s)
		}
	}
}
