package rotator

import "context"

// planStrategy fills the plan's strategy and, for the metadata strategy,
// its read-only preflight (it never retrieves: the global OAuth settings
// may need the Metadata setting open, which is a mutation). It returns true
// when the metadata strategy was planned and the staged preflight must be
// skipped (its endpoints refuse packaged ECAs).
func (e *Engine) planStrategy(ctx context.Context, iss Issuer, app App, j JournalEntry, p *PlanResult, problem func(string, ...any)) bool {
	var c StrategyChoice
	var err error
	if s := Strategy(j.Extra[ExtraStrategy]); s != "" {
		c = StrategyChoice{Strategy: s, Configured: app.strategy(), Why: j.Extra[ExtraStrategyWhy] + " (in-flight rotation)"}
	} else {
		c, err = e.chooseStrategy(ctx, app, iss, nil, false)
	}
	p.Strategy = c
	if err != nil {
		problem("strategy: %v", err)
		return c.Strategy == "" // unknown: nothing more to check
	}
	if c.Strategy != StrategyMetadata {
		return false
	}
	mi, ok := iss.(MetadataIssuer)
	if !ok {
		problem("strategy metadata: the issuer has no Metadata API")
		return true
	}
	p.DevHubOK = true
	on, err := mi.MetadataSecretAccess(ctx)
	if err != nil {
		problem("read metadata secret access setting: %v", err)
		return true
	}
	p.MetadataSecretAccess = &on
	p.SecretAccessOK = on || app.SecretAccessMode == SecretAccessToggle
	if !p.SecretAccessOK {
		problem("Allow access to OAuth consumer secrets via Metadata API is off and secret_access is always_on")
	}
	if app.secretRead() != SecretReadMetadata {
		rest, err := iss.SecretAccess(ctx)
		if err != nil {
			problem("read secret access setting: %v", err)
			return true
		}
		p.SecretAccess = &rest
		if !rest && app.SecretAccessMode == SecretAccessAlwaysOn && app.secretRead() == SecretReadREST {
			p.SecretAccessOK = false
			problem("secret access via REST API is off and secret_access is always_on")
		}
	}
	return true
}
