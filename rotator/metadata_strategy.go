package rotator

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"
)

// Journal Extra keys of the metadata strategy (public facts only).
const (
	ExtraStrategy    = "strategy"     // the strategy this rotation runs (staged or metadata)
	ExtraStrategyWhy = "strategy_why" // why it was chosen
)

// ErrPackagedStaged: strategy staged was configured for a packaged ECA,
// which Salesforce serves only through the Metadata API.
var ErrPackagedStaged = errors.New("packaged ECA: the staged-credentials API serves only local ECAs; use strategy: metadata (or auto)")

// strategyMemo is what this engine last learnt of each app's distribution
// state (from the app's ECA cache in Vault, journal entry ECACacheKey in
// gate.go, or a read), for status and the API, which answer without
// calling Salesforce. It is not a second cache: a rotation always decides
// its strategy from the Vault entry, never from the memo.
type strategyMemo struct {
	mu    sync.Mutex
	dists map[string]string // app name → distributionState
}

func (c *strategyMemo) get(app string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dists[app]
	return d, ok
}

func (c *strategyMemo) put(app, dist string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dists == nil {
		c.dists = map[string]string{}
	}
	if dist == "" {
		delete(c.dists, app)
		return
	}
	c.dists[app] = dist
}

// StrategyChoice is the strategy an app rotates with and why (plan and
// status show it).
type StrategyChoice struct {
	Strategy     Strategy
	Configured   Strategy
	Distribution string // "" when not read
	Why          string
}

// distribution returns the ECA's distribution state from the app's ECA
// cache in Vault (the one issue 11 keeps app id and consumer id in), or
// reads it from Salesforce when the cache has none for this ECA. With a
// run, the cache is the run's (saved by saveCache once the lease allows);
// without one (plan, doctor) it is read only. fresh skips the cache: the
// re-validation after a mismatch.
func (e *Engine) distribution(ctx context.Context, app App, mi MetadataIssuer, r *run, fresh bool) (string, error) {
	var c JournalEntry
	if r != nil {
		e.loadCache(ctx, r)
		c = r.cache.entry
	} else if j, _, err := e.o.Journal.Load(ctx, ECACacheKey(app.Name)); err == nil {
		c = j
	}
	if d := c.Extra[cacheDistribution]; !fresh && d != "" && c.Extra[cacheDeveloperName] == app.ECA {
		if r != nil {
			r.cache.distHit = true
		}
		e.strat.put(app.Name, d)
		return d, nil
	}
	d, err := mi.DistributionState(ctx, app.ECA)
	if err != nil {
		return "", fmt.Errorf("read distributionState of %s: %w", app.ECA, err)
	}
	if r != nil {
		r.cache.distHit = false
	}
	e.strat.put(app.Name, d)
	return d, nil
}

// ChooseStrategy decides how app is rotated: the configured strategy, or
// for auto the ECA's distributionState (Local → staged, Packaged →
// metadata). It refuses staged for a packaged ECA, naming strategy
// metadata. An Issuer without the Metadata API serves only staged.
func (e *Engine) ChooseStrategy(ctx context.Context, app App) (StrategyChoice, error) {
	iss, ok := e.o.Issuers[app.DevHub]
	if !ok {
		return StrategyChoice{}, fmt.Errorf("rotator: app %s: no issuer for dev hub %q", app.Name, app.DevHub)
	}
	return e.chooseStrategy(ctx, app, iss, nil, false)
}

// chooseStrategy is ChooseStrategy for run r (nil outside a rotation);
// fresh re-reads the distribution state instead of using the cache.
func (e *Engine) chooseStrategy(ctx context.Context, app App, iss Issuer, r *run, fresh bool) (StrategyChoice, error) {
	c := StrategyChoice{Configured: app.strategy()}
	mi, hasMD := iss.(MetadataIssuer)
	switch c.Configured {
	case StrategyMetadata:
		if !hasMD {
			return c, fmt.Errorf("strategy metadata: the issuer of dev hub %s has no Metadata API", app.DevHub)
		}
		c.Strategy, c.Why = StrategyMetadata, "configured (strategy: metadata)"
		return c, nil
	case StrategyStaged:
		c.Strategy, c.Why = StrategyStaged, "configured (strategy: staged)"
		if !hasMD {
			return c, nil
		}
		d, err := e.distribution(ctx, app, mi, r, fresh)
		if err != nil {
			// The staged path does not need the state; say so and go on.
			c.Why += "; distributionState unreadable: " + err.Error()
			return c, nil
		}
		c.Distribution = d
		if d == DistributionPackaged {
			return c, fmt.Errorf("eca %s is %s: %w", app.ECA, d, ErrPackagedStaged)
		}
		return c, nil
	}
	if !hasMD {
		c.Strategy, c.Why = StrategyStaged, "auto: the issuer has no Metadata API, so local is assumed"
		return c, nil
	}
	d, err := e.distribution(ctx, app, mi, r, fresh)
	if err != nil {
		return c, fmt.Errorf("strategy auto: %w", err)
	}
	c.Distribution = d
	if d == DistributionPackaged {
		c.Strategy, c.Why = StrategyMetadata, "auto: distributionState is Packaged"
	} else {
		c.Strategy, c.Why = StrategyStaged, "auto: distributionState is "+d
	}
	return c, nil
}

// runStrategy picks the strategy of a run: the journal's, when a rotation
// is in flight (it never changes strategy half way), else ChooseStrategy.
func (e *Engine) runStrategy(ctx context.Context, r *run) (Strategy, error) {
	if s := Strategy(r.j.Extra[ExtraStrategy]); s != "" && r.jv != 0 {
		return s, nil
	}
	c, err := e.chooseStrategy(ctx, r.app, r.iss, r, false)
	if err != nil {
		return "", err
	}
	r.strategy = c
	r.res.Strategy = c.Strategy
	return c.Strategy, nil
}

// KnownStrategy reports an app's strategy without calling Salesforce (for
// status): the strategy of the journal j (an in-flight rotation, may be
// nil), the configured one, or for auto the distributionState this engine
// has read; before that, auto says it decides at the first rotation.
func (e *Engine) KnownStrategy(app App, j *JournalEntry) StrategyChoice {
	c := StrategyChoice{Configured: app.strategy()}
	if j != nil && j.Extra[ExtraStrategy] != "" {
		c.Strategy, c.Why = Strategy(j.Extra[ExtraStrategy]), j.Extra[ExtraStrategyWhy]
		return c
	}
	if c.Configured != StrategyAuto {
		c.Strategy, c.Why = c.Configured, "configured (strategy: "+string(c.Configured)+")"
		return c
	}
	d, ok := e.strat.get(app.Name)
	switch {
	case !ok:
		c.Strategy, c.Why = StrategyAuto, "auto: distributionState is read at the first rotation"
	case d == DistributionPackaged:
		c.Strategy, c.Why, c.Distribution = StrategyMetadata, "auto: distributionState is Packaged", d
	default:
		c.Strategy, c.Why, c.Distribution = StrategyStaged, "auto: distributionState is "+d, d
	}
	return c
}

// StrategyOf is KnownStrategy for a caller that may read Vault (status,
// the daemon's API): when this engine has not learnt the app's
// distribution state yet, it reads the app's ECA cache in Vault once (a
// read of the same entry rotations decide from; Salesforce is not called).
func (e *Engine) StrategyOf(ctx context.Context, app App, j *JournalEntry) StrategyChoice {
	if _, ok := e.strat.get(app.Name); !ok && app.strategy() == StrategyAuto {
		if c, _, err := e.o.Journal.Load(ctx, ECACacheKey(app.Name)); err == nil && c.Extra[cacheDeveloperName] == app.ECA {
			e.strat.put(app.Name, c.Extra[cacheDistribution])
		}
	}
	return e.KnownStrategy(app, j)
}

// revalidateStrategy handles a staged preflight that Salesforce refused
// because the ECA is packaged while the cached distribution state said
// Local (the ECA was re-created or re-packaged): the cache is dropped, the
// state read again, and the run switches to the metadata strategy when
// auto allows. It returns false when the refusal is not such a mismatch.
func (e *Engine) revalidateStrategy(ctx context.Context, r *run, cause error) (bool, error) {
	if !errors.Is(cause, ErrPackagedStaged) || !r.cache.distHit || r.app.strategy() != StrategyAuto || (r.jv != 0 && r.j.Step != StepLock) {
		return false, nil
	}
	r.log.Info("the cached distribution state no longer matches the ECA; reading it again", zap.Error(cause))
	c, err := e.chooseStrategy(ctx, r.app, r.iss, r, true)
	if err != nil {
		return true, err
	}
	r.strategy, r.res.Strategy = c, c.Strategy
	e.strat.put(r.app.Name, c.Distribution)
	if c.Strategy != StrategyMetadata {
		return true, cause
	}
	return true, nil
}
