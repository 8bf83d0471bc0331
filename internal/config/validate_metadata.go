package config

import "time"

// Strategies and secret read modes of an app (packaged ECAs).
const (
	StrategyAuto     = "auto"
	StrategyStaged   = "staged"
	StrategyMetadata = "metadata"

	SecretReadAuto     = "auto"
	SecretReadREST     = "rest"
	SecretReadMetadata = "metadata"
)

// appMetadata checks the metadata-strategy keys of one app.
func (v *validator) appMetadata(p string, a App) {
	switch a.Strategy {
	case StrategyAuto, StrategyStaged, StrategyMetadata:
	default:
		v.add(p+".strategy", "must be auto, staged or metadata, not %q", a.Strategy)
	}
	switch a.SecretRead {
	case SecretReadAuto, SecretReadREST, SecretReadMetadata:
	default:
		v.add(p+".secret_read", "must be auto, rest or metadata, not %q", a.SecretRead)
	}
	if a.MetadataOverlap < 0 {
		v.add(p+".metadata_overlap", "must not be negative")
	} else if a.MetadataOverlap.D() > 30*24*time.Hour {
		v.add(p+".metadata_overlap", "must not exceed 30 days")
	}
	v.positive(p+".deploy_timeout", a.DeployTimeout)
	if a.Strategy == StrategyStaged && (a.RotateKey || a.MetadataOverlap != 0) {
		v.add(p+".strategy", "rotate_key and metadata_overlap apply only to strategy metadata (or auto)")
	}
}
