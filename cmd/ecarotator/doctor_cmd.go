package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
)

// Doctor check outcomes.
const (
	checkOK   = "ok"
	checkFail = "FAIL"
	checkInfo = "info"
)

// doctorRow is one check of `ecarotator doctor`.
type doctorRow struct {
	DevHub      string `json:"devhub"`
	App         string `json:"app,omitempty"`
	Check       string `json:"check"`
	Status      string `json:"status"`
	Detail      string `json:"detail"`
	Remediation string `json:"remediation,omitempty"`
}

// doctorReport is the --json output.
type doctorReport struct {
	Ready    bool              `json:"ready"`
	Checks   []doctorRow       `json:"checks"`
	Observed map[string]string `json:"observed"`
}

// permissionsNeeded are the PermissionSet fields the integration user
// needs (Salesforce names "External Client App Developer" and "View Client
// Secret"; their API field names are assumed).
var permissionsNeeded = []struct{ field, label, why string }{
	{"PermissionsApiEnabled", "API Enabled", "every REST and SOAP call"},
	{"PermissionsExternalClientAppDeveloper", "External Client App Developer", "the OAuth credentials resources"},
	{"PermissionsViewClientSecret", "View Client Secret", "reading and staging secrets"},
	{"PermissionsModifyMetadata", "Modify Metadata Through Metadata API Functions", "toggling the secret-access setting"},
}

func (c *cli) doctorCommand() *cobra.Command {
	var (
		devhub, app string
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check, read-only, whether the Dev Hubs and apps are ready for a first rotation",
		Long: `Runs read-only checks against each Dev Hub and app: which JWT audience logs in,
the API versions served (65.0 or later is needed), the integration user and its
permissions, each ECA (found by OAuth usage and/or SOQL, and its distribution
state), the secret-access setting, whether credential reads work in its current
state, whether Vault's current pair gets a client-credentials token at every
verify URL, and the API budget left. Nothing is changed in Salesforce or Vault.

It also lists the uncertain Salesforce behaviours it observed (e.g. "reads gated
by the setting: yes"). Exit 0 when ready, 4 when a check failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := c.setup(false)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if devhub != "" {
				if _, ok := cfg.DevHubByName(devhub); !ok {
					return usageError{fmt.Errorf("unknown dev hub %q", devhub)}
				}
			}
			if app != "" {
				if _, ok := cfg.AppByName(app); !ok {
					return usageError{fmt.Errorf("unknown app %q", app)}
				}
			}
			rt, err := wire.New(cmd.Context(), cfg, log, wire.RuntimeOptions{NoAudit: true})
			if err != nil {
				return err
			}
			defer rt.Close()
			rep := runDoctor(cmd.Context(), rt, cfg, devhub, app)
			if asJSON {
				if err := writeJSON(c.stdout, rep); err != nil {
					return err
				}
			} else {
				printDoctor(c.stdout, rep)
			}
			if !rep.Ready {
				return verifyError{errSilent}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&devhub, "devhub", "", "check only this Dev Hub")
	cmd.Flags().StringVar(&app, "app", "", "check only this app (and its Dev Hub)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// runDoctor performs every check. It only reads: token requests, GETs,
// SOAP readMetadata, Vault reads.
func runDoctor(ctx context.Context, rt *wire.Runtime, cfg *config.Config, onlyHub, onlyApp string) doctorReport {
	rep := doctorReport{Ready: true, Observed: map[string]string{}}
	add := func(r doctorRow) {
		if r.Status == checkFail {
			rep.Ready = false
		}
		rep.Checks = append(rep.Checks, r)
	}
	if onlyApp != "" {
		a, _ := cfg.AppByName(onlyApp)
		onlyHub = a.DevHub
	}
	for _, hub := range cfg.DevHubs {
		if onlyHub != "" && hub.Name != onlyHub {
			continue
		}
		c := rt.Issuers[hub.Name]
		row := func(check, status, detail, fix string) {
			add(doctorRow{DevHub: hub.Name, Check: check, Status: status, Detail: detail, Remediation: fix})
		}
		inst, err := c.InstanceURL(ctx)
		if err != nil {
			row("login", checkFail, err.Error(), loginFix(hub, err))
			continue
		}
		aud, mode := c.Audience()
		detail := "logged in with " + hub.Auth.Method + " at " + inst
		if hub.Auth.Method == "jwt" {
			detail += "; audience " + aud + " (" + mode + ")"
			rep.Observed[hub.Name+": jwt audience that logged in"] = aud
		}
		row("login", checkOK, detail, "")

		versions, err := c.Versions(ctx)
		switch {
		case err != nil:
			row("api versions", checkFail, err.Error(), "GET /services/data/ failed; check network access to the org's My Domain")
		default:
			newest := 0.0
			for _, v := range versions {
				if f, perr := strconv.ParseFloat(v.Version, 64); perr == nil && f > newest {
					newest = f
				}
			}
			rep.Observed[hub.Name+": newest API version served"] = fmt.Sprintf("%.1f", newest)
			if newest < 65 {
				row("api versions", checkFail, fmt.Sprintf("newest version served is %.1f", newest),
					"the staged-credentials resources need API 65.0 (Winter '26) or later; wait for the org's upgrade or use an org on 65.0+")
			} else {
				row("api versions", checkOK, fmt.Sprintf("%d versions, newest %.1f (configured %s)", len(versions), newest, c.APIVersion()), "")
			}
		}

		userID := ""
		if id, err := c.Identity(ctx); err != nil {
			row("user", checkFail, err.Error(), "the identity URL from the token response could not be read; check the user is active")
		} else {
			userID = id.UserID
			row("user", checkOK, id.Username+" ("+id.UserID+") in org "+id.OrganizationID, "")
			fields := make([]string, len(permissionsNeeded))
			for i, p := range permissionsNeeded {
				fields[i] = p.field
			}
			perms, err := c.UserPermissions(ctx, id.UserID, fields)
			var apiErr *salesforce.APIError
			if errors.As(err, &apiErr) && apiErr.Code == "INVALID_FIELD" {
				// The permission field names are assumed; an org that does
				// not know them is not a failure of the org.
				row("permissions", checkInfo, "this org does not know the assumed permission fields ("+apiErr.Message+"); check the permissions by hand", "")
				rep.Observed[hub.Name+": ECA permission field names"] = "unknown to the org"
			} else if err != nil {
				row("permissions", checkFail, "cannot read the user's permission sets: "+err.Error(), "grant the integration user read access to its permission set assignments, or check the permissions by hand")
			} else {
				var missing, have []string
				for _, p := range permissionsNeeded {
					if perms[p.field] {
						have = append(have, p.label)
					} else {
						missing = append(missing, p.label+" (for "+p.why+")")
					}
				}
				if len(missing) > 0 {
					row("permissions", checkFail, "missing: "+strings.Join(missing, ", "), "assign "+hub.Auth.Username+" a permission set granting: "+strings.Join(missing, ", "))
				} else {
					row("permissions", checkOK, strings.Join(have, ", "), "")
				}
			}
		}

		access, meta, metaKnown, accessErr := c.SecretAccessSettings(ctx)
		switch {
		case accessErr != nil:
			row("secret access (REST)", checkFail, accessErr.Error(), "reading ExternalClientAppSettings needs Modify Metadata; grant it to the integration user")
		case !access && hub.SecretAccess == string(rotator.SecretAccessAlwaysOn):
			row("secret access (REST)", checkFail, "enableClientSecretInRestApiAccess is off and secret_access is always_on",
				"turn on Setup > External Client App Settings > Allow access to External Client App consumer secrets via REST API, or set secret_access: toggle")
		default:
			row("secret access (REST)", checkOK, fmt.Sprintf("enableClientSecretInRestApiAccess = %t (mode %s)", access, hub.SecretAccess), "")
		}
		switch {
		case accessErr != nil:
		case metaKnown:
			row("secret access (Metadata)", checkInfo, fmt.Sprintf("enableConsumerSecretApiAccess = %t (used only by the metadata strategy of packaged ECAs; checked per app)", meta), "")
		default:
			row("secret access (Metadata)", checkInfo, "enableConsumerSecretApiAccess not returned (absent = off; used only by the metadata strategy of packaged ECAs; checked per app)", "")
		}
		hs := hubState{access: access, meta: meta, settingsRead: accessErr == nil, userID: userID}

		for _, a := range cfg.Apps {
			if a.DevHub != hub.Name || a.Disabled || (onlyApp != "" && a.Name != onlyApp) {
				continue
			}
			doctorApp(ctx, rt, cfg, c, a, hs, &rep, add)
		}

		if lims, err := c.Limits(ctx); err != nil {
			row("api budget", checkFail, err.Error(), "GET /limits failed; the user needs API Enabled")
		} else if l, ok := lims["DailyApiRequests"]; ok && l.Max > 0 {
			used := float64(l.Max-l.Remaining) / float64(l.Max)
			detail := fmt.Sprintf("%d of %d daily API requests left (%.0f%% used, threshold %.0f%%)", l.Remaining, l.Max, used*100, hub.APIBudget*100)
			if used >= hub.APIBudget {
				row("api budget", checkFail, detail, "rotations are deferred above api_budget_threshold; wait for the rolling 24h window or raise the threshold")
			} else {
				row("api budget", checkOK, detail, "")
			}
		} else {
			row("api budget", checkInfo, "DailyApiRequests not reported", "")
		}
		if _, ok := c.Usage(); ok {
			rep.Observed[hub.Name+": Sforce-Limit-Info on REST answers"] = "yes"
		} else {
			rep.Observed[hub.Name+": Sforce-Limit-Info on REST answers"] = "no"
		}
	}
	return rep
}

// hubState is what the Dev Hub checks read that the app checks need.
type hubState struct {
	access       bool   // REST secret-access setting
	meta         bool   // Metadata secret-access setting (absent = off)
	settingsRead bool   // both were read
	userID       string // the integration user ("" when unreadable)
}

// doctorApp checks one app: the ECA lookup and the strategy it rotates
// with (for the metadata strategy, that path's own gates), credential
// reads in the setting's current state, and the current pair at every
// verify URL.
func doctorApp(ctx context.Context, rt *wire.Runtime, cfg *config.Config, c *salesforce.Client, a config.App, hs hubState, rep *doctorReport, add func(doctorRow)) {
	access := hs.access
	hub, _ := cfg.DevHubByName(a.DevHub)
	row := func(check, status, detail, fix string) {
		add(doctorRow{DevHub: a.DevHub, App: a.Name, Check: check, Status: status, Detail: detail, Remediation: fix})
	}
	obs := func(k, v string) { rep.Observed[a.DevHub+"/"+a.ECA+": "+k] = v }

	byUsage, usageErr := c.FindAppByUsage(ctx, a.ECA)
	switch {
	case usageErr == nil:
		obs("listed by OAuth usage", "yes")
	case errors.Is(usageErr, rotator.ErrPermission):
		obs("listed by OAuth usage", "unknown (usage refused while the setting is off)")
		obs("reads gated by the setting", "yes")
	case errors.Is(usageErr, rotator.ErrNotFound):
		obs("listed by OAuth usage", "no (no active token; found by SOQL instead)")
	default:
		obs("listed by OAuth usage", "error: "+usageErr.Error())
	}
	rec, soqlErr := c.FindECA(ctx, a.ECA)
	appID := a.ECAID
	switch {
	case soqlErr != nil && usageErr != nil && appID == "":
		row("eca", checkFail, "not found by OAuth usage ("+usageErr.Error()+") nor SOQL ("+soqlErr.Error()+")",
			"check apps[].eca is the ECA's developer name in "+a.DevHub+", or pin apps[].eca_id")
		return
	case soqlErr == nil:
		if appID == "" {
			appID = rec.ID
		}
		how := "SOQL"
		if usageErr == nil {
			how = "OAuth usage and SOQL"
		}
		found := fmt.Sprintf("%s (%s) found by %s; distribution state %s", rec.DeveloperName, rec.ID, how, rec.DistributionState)
		strategy, why, ok := doctorStrategy(a.Strategy, rec.DistributionState)
		if !ok {
			row("eca", checkFail, found+"; "+why,
				"the staged-credentials REST API serves only local ECAs: set strategy: auto (or strategy: metadata) for this app, which rotates a packaged ECA through the Metadata API")
			break
		}
		row("eca", checkOK, found+"; "+strategy+" strategy ("+why+")", "")
		if strategy == config.StrategyMetadata {
			doctorMetadata(ctx, c, a, hub, hs, row, obs)
		}
	default:
		if appID == "" {
			appID = byUsage.ID
		}
		row("eca", checkOK, fmt.Sprintf("%s (%s) found by OAuth usage; distribution state unknown (SOQL: %v); strategy %s", a.ECA, appID, soqlErr, a.Strategy), "")
	}

	_, err := c.Consumers(ctx, appID)
	switch {
	case err == nil:
		if !access {
			obs("reads gated by the setting", "no")
		}
		row("credential reads", checkOK, fmt.Sprintf("consumers readable with the setting %s", onOff(access)), "")
	case errors.Is(err, rotator.ErrPermission) && !access && hub.SecretAccess == string(rotator.SecretAccessToggle):
		obs("reads gated by the setting", "yes")
		row("credential reads", checkOK, "refused while the setting is off (gated); toggle mode opens the setting before reading, and doctor never changes it", "")
	case errors.Is(err, rotator.ErrPermission) && !access:
		obs("reads gated by the setting", "yes")
		row("credential reads", checkFail, "refused with the setting off: "+err.Error(),
			"Salesforce refuses credential reads while the secret-access setting is off and secret_access is always_on: turn the setting on, or use secret_access: toggle")
	default:
		row("credential reads", checkFail, err.Error(), "grant the integration user External Client App Developer and View Client Secret")
	}

	st, _, err := rt.Vault.ReadCredentials(ctx, a.VaultPath)
	if err != nil || st.Current.IsZero() {
		row("current pair", checkFail, fmt.Sprintf("no current pair at vault path %s (%v)", a.VaultPath, err),
			"write the app's current consumer_key and consumer_secret to the path (and set adopt: true) before the first rotation")
		return
	}
	for _, u := range a.Verify.TokenURLs {
		err := rt.Verifier.Verify(ctx, u, st.Current)
		switch {
		case err == nil:
			row("verify "+u, checkOK, "the current pair (key "+st.Current.Key+") gets a client-credentials token", "")
		case errors.Is(err, rotator.ErrMisconfigured):
			row("verify "+u, checkFail, err.Error(), "enable the client-credentials flow for the ECA with a run-as (API only) user in that org, and make sure the ECA is installed there")
		case errors.Is(err, rotator.ErrRejected):
			row("verify "+u, checkFail, err.Error(), "Salesforce refuses Vault's current pair: drift (rotated outside ecarotator?) — put the pair Salesforce holds into Vault")
		default:
			row("verify "+u, checkFail, err.Error(), "the token endpoint could not be reached or answered an error; check the URL and network")
		}
	}
}

// doctorStrategy is the strategy an app rotates with given the ECA's
// distribution state, and why; ok is false for strategy staged on a
// packaged ECA (the engine refuses it with ErrPackagedStaged).
func doctorStrategy(configured, dist string) (strategy, why string, ok bool) {
	packaged := strings.EqualFold(dist, rotator.DistributionPackaged)
	switch configured {
	case config.StrategyStaged:
		if packaged {
			return config.StrategyStaged, "strategy: staged, but the staged-credentials API refuses packaged ECAs", false
		}
		return config.StrategyStaged, "configured (strategy: staged)", true
	case config.StrategyMetadata:
		return config.StrategyMetadata, "configured (strategy: metadata)", true
	}
	if packaged {
		return config.StrategyMetadata, "strategy auto: distribution state is Packaged", true
	}
	return config.StrategyStaged, "strategy auto: distribution state is " + dist, true
}

// permViewSecretsInMetadata is the PermissionSet field of the user
// permission "View External Client Apps Consumer Secrets in Metadata"
// (the API field name is assumed, like permissionsNeeded).
const permViewSecretsInMetadata = "PermissionsViewExternalClientAppConsumerSecretsInMetadata"

// doctorMetadata checks, read-only, the metadata strategy's own gates: the
// Metadata secret-access setting, the user permission a retrieve needs to
// carry the secret, and whether a retrieve of the ECA's global OAuth
// settings carries consumerSecret now. Which of them must pass depends on
// secret_read: metadata needs the retrieve, rest needs neither, auto reads
// by REST when the retrieve cannot.
func doctorMetadata(ctx context.Context, c *salesforce.Client, a config.App, hub config.DevHub, hs hubState, row func(check, status, detail, fix string), obs func(k, v string)) {
	needRetrieve := a.SecretRead == config.SecretReadMetadata
	soft := checkInfo // a gap the auto read works around
	if needRetrieve {
		soft = checkFail
	}
	const settingFix = "turn on Setup > External Client App Settings > Allow access to OAuth consumer secrets via Metadata API, or set secret_access: toggle"
	switch {
	case !hs.settingsRead:
		row("metadata secret access", checkFail, "the setting could not be read (see secret access (REST))", settingFix)
	case !hs.meta && hub.SecretAccess == string(rotator.SecretAccessAlwaysOn):
		row("metadata secret access", checkFail, "enableConsumerSecretApiAccess is off and secret_access is always_on", settingFix)
	case !hs.meta:
		row("metadata secret access", checkOK, "enableConsumerSecretApiAccess = false; toggle mode opens it during the rotation (journaled, restored after)", "")
	default:
		row("metadata secret access", checkOK, "enableConsumerSecretApiAccess = true (mode "+hub.SecretAccess+")", "")
	}

	const permFix = "assign the integration user a permission set granting View External Client Apps Consumer Secrets in Metadata"
	permOK := false
	if a.SecretRead != config.SecretReadREST && hs.userID != "" {
		perms, err := c.UserPermissions(ctx, hs.userID, []string{permViewSecretsInMetadata})
		var apiErr *salesforce.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Code == "INVALID_FIELD":
			row("metadata permission", checkInfo, "this org does not know the assumed field "+permViewSecretsInMetadata+"; check View External Client Apps Consumer Secrets in Metadata by hand", "")
			permOK = true // unknown: the retrieve below tells
		case err != nil:
			row("metadata permission", soft, "cannot read the user's permission sets: "+err.Error(), permFix)
		case perms[permViewSecretsInMetadata]:
			permOK = true
			row("metadata permission", checkOK, "View External Client Apps Consumer Secrets in Metadata", "")
		default:
			row("metadata permission", soft, "missing View External Client Apps Consumer Secrets in Metadata: a retrieve will not carry the consumer secret (secret_read "+a.SecretRead+")", permFix)
		}
	}

	// A retrieve only reads (an async read job); it changes nothing. With
	// the setting off it is refused (strict assumption) or carries no
	// secret, so it is tried only when the setting is on.
	const retrieveFix = "the Metadata setting must be on (or secret_access: toggle) and the user needs View External Client Apps Consumer Secrets in Metadata; or use secret_read: auto so the new secret is read by REST"
	switch {
	case !hs.settingsRead || (!hs.meta && hub.SecretAccess != string(rotator.SecretAccessToggle)):
		// The setting row failed already.
		return
	case !hs.meta:
		obs("retrieve carries consumerSecret", "not tried (setting off)")
		row("metadata retrieve", checkOK, "not tried while the Metadata setting is off; toggle mode opens it before the rotation's retrieve", "")
		return
	}
	s, err := c.GlobalOAuth(ctx, a.ECA)
	switch {
	case err != nil && errors.Is(err, rotator.ErrNotFound):
		row("metadata retrieve", checkFail, "no ExtlClntAppGlobalOauthSettings for the ECA: "+err.Error(), "check apps[].eca is the packaged ECA's developer name in "+a.DevHub)
	case err != nil && !permOK:
		obs("retrieve carries consumerSecret", "no (refused)")
		row("metadata retrieve", soft, "retrieve refused: "+err.Error(), retrieveFix)
	case err != nil:
		row("metadata retrieve", checkFail, "retrieve of the ECA's ExtlClntAppGlobalOauthSettings failed: "+err.Error(),
			"the integration user needs Modify Metadata Through Metadata API Functions and View External Client Apps Consumer Secrets in Metadata")
	case !s.Secret.IsZero():
		obs("retrieve carries consumerSecret", "yes")
		row("metadata retrieve", checkOK, s.FullName+" retrieved (key "+s.Key+"); it carries the consumer secret", "")
	case a.SecretRead == config.SecretReadREST:
		obs("retrieve carries consumerSecret", "no")
		row("metadata retrieve", checkOK, s.FullName+" retrieved (key "+s.Key+"); secret_read rest does not need the secret in it", "")
	default:
		obs("retrieve carries consumerSecret", "no")
		row("metadata retrieve", soft, s.FullName+" retrieved (key "+s.Key+") without the consumer secret (secret_read "+a.SecretRead+")", retrieveFix)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// loginFix is the remediation for a failed Dev Hub login.
func loginFix(hub config.DevHub, err error) string {
	var apiErr *salesforce.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.Code == "app_not_found":
			return "ecarotator's own ECA is not usable at this login host/audience; set auth.audience: mydomain (or auto) and my_domain_url"
		case strings.Contains(apiErr.Message, "audience"):
			return "the JWT audience is refused; set auth.audience to auto, mydomain or login (now " + hub.Auth.Audience + ")"
		case strings.Contains(apiErr.Message, "approved"):
			return "pre-authorize " + hub.Auth.Username + " for ecarotator's own ECA (admin-approved users, permission set)"
		case apiErr.Code == "invalid_client_id":
			return "auth.client_id is not the consumer key of ecarotator's own ECA in this org"
		}
	}
	return "check login_url, auth.client_id, auth.username and the key material in Vault"
}

// printDoctor writes the table and the observed behaviours.
func printDoctor(w io.Writer, rep doctorReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tDEVHUB\tAPP\tCHECK\tDETAIL")
	for _, r := range rep.Checks {
		app := r.App
		if app == "" {
			app = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Status, r.DevHub, app, r.Check, r.Detail)
	}
	_ = tw.Flush()
	var fixes []string
	for _, r := range rep.Checks {
		if r.Status == checkFail && r.Remediation != "" {
			fixes = append(fixes, fmt.Sprintf("  - %s %s: %s", r.Check, r.App, r.Remediation))
		}
	}
	if len(fixes) > 0 {
		fmt.Fprintln(w, "\nTo fix:")
		fmt.Fprintln(w, strings.Join(fixes, "\n"))
	}
	if len(rep.Observed) > 0 {
		fmt.Fprintln(w, "\nObserved Salesforce behaviours (please report them: they settle open questions):")
		keys := make([]string, 0, len(rep.Observed))
		for k := range rep.Observed {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %s\n", k, rep.Observed[k])
		}
	}
	if rep.Ready {
		fmt.Fprintln(w, "\nready")
	} else {
		fmt.Fprintln(w, "\nnot ready")
	}
}
