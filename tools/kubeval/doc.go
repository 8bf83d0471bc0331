// Package kubeval validates the Kubernetes manifests in deploy/kubernetes
// without a cluster: every document is decoded strictly (unknown or
// duplicate fields are errors) into its k8s.io/api type, then checked for
// what the deployment promises (replicas, probes, non-root, read-only root
// file system, selectors that match, ports that exist). It is its own Go
// module so that the main module does not carry the Kubernetes API types;
// `make test` runs it.
package kubeval
