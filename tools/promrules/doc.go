// Package promrules checks examples/monitoring/ecarotator-rules.yml with
// Prometheus's own rule parser (model/rulefmt: the YAML shape, every PromQL
// expression, the templates of labels and annotations). It is its own Go
// module so that the main module does not carry Prometheus's server code;
// `make test-deploy` runs it. The main module's
// internal/metrics test checks that the rules name only exported metrics.
package promrules
