package kubeval

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Kustomization is the part of kustomize's file format the manifests use.
// Decoded strictly like the rest: a key kustomize would not know is an error.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// Set is every object of a kustomization, decoded into its API type.
type Set struct {
	Dir            string
	Kustomization  Kustomization
	Namespaces     []corev1.Namespace
	ServiceAccount []corev1.ServiceAccount
	ConfigMaps     []corev1.ConfigMap
	Services       []corev1.Service
	Deployments    []appsv1.Deployment
	PDBs           []policyv1.PodDisruptionBudget
	NetworkPolicy  []networkingv1.NetworkPolicy
}

// Load reads dir/kustomization.yaml and strictly decodes every document of
// every resource file it lists. Unknown kinds, unknown or duplicate fields,
// bad quantities and files in dir that the kustomization does not list are
// errors.
func Load(dir string) (*Set, error) {
	s := &Set{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(b, &s.Kustomization); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	var errs []error
	if k := s.Kustomization; k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		errs = append(errs, fmt.Errorf("kustomization.yaml: %s/%s is not a kustomize Kustomization", k.APIVersion, k.Kind))
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(s.Kustomization.Resources, base) {
			errs = append(errs, fmt.Errorf("%s is not listed in kustomization.yaml resources", base))
		}
	}
	for _, r := range s.Kustomization.Resources {
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i, doc := range splitDocs(b) {
			if err := s.decode(doc); err != nil {
				errs = append(errs, fmt.Errorf("%s document %d: %w", r, i+1, err))
			}
		}
	}
	return s, errors.Join(errs...)
}

// splitDocs splits a multi-document YAML stream, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---")) {
		trimmed := bytes.TrimSpace(d)
		empty := true
		for _, line := range bytes.Split(trimmed, []byte("\n")) {
			if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, d)
		}
	}
	return docs
}

// decode picks the API type from apiVersion and kind, then decodes strictly.
func (s *Set) decode(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	switch gvk {
	case "v1/Namespace":
		return decodeInto(doc, &s.Namespaces)
	case "v1/ServiceAccount":
		return decodeInto(doc, &s.ServiceAccount)
	case "v1/ConfigMap":
		return decodeInto(doc, &s.ConfigMaps)
	case "v1/Service":
		return decodeInto(doc, &s.Services)
	case "apps/v1/Deployment":
		return decodeInto(doc, &s.Deployments)
	case "policy/v1/PodDisruptionBudget":
		return decodeInto(doc, &s.PDBs)
	case "networking.k8s.io/v1/NetworkPolicy":
		return decodeInto(doc, &s.NetworkPolicy)
	}
	return fmt.Errorf("%s: not a kind these manifests use (or a wrong apiVersion)", gvk)
}

func decodeInto[T any](doc []byte, list *[]T) error {
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// External names the objects the manifests use but the operator creates
// (README.md says how): the TLS secret and the ConfigMap with Vault's CA.
type External struct {
	Secrets    []string
	ConfigMaps []string
}

// Check runs the semantic checks and returns every problem found.
func (s *Set) Check(ext External) []error {
	c := &checker{}
	s.checkMeta(c)
	if len(s.Deployments) != 1 {
		c.add("want exactly one Deployment, got %d", len(s.Deployments))
		return c.errs
	}
	d := s.Deployments[0]
	s.checkDeployment(c, d, ext)
	s.checkConfig(c, d)
	pod := labels.Set(d.Spec.Template.Labels)
	if len(s.Services) == 0 || len(s.PDBs) == 0 || len(s.NetworkPolicy) == 0 || len(s.ServiceAccount) == 0 || len(s.ConfigMaps) == 0 {
		c.add("want a Service, a PodDisruptionBudget, a NetworkPolicy, a ServiceAccount and a ConfigMap")
	}
	ports := containerPorts(d)
	for _, svc := range s.Services {
		p := "Service " + svc.Name
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(pod) {
			c.add("%s: selector %v does not select the Deployment's pods %v", p, svc.Spec.Selector, pod)
		}
		for _, sp := range svc.Spec.Ports {
			if !portExists(ports, sp.TargetPort) {
				c.add("%s: targetPort %s is no container port", p, sp.TargetPort.String())
			}
			if sp.AppProtocol == nil || *sp.AppProtocol != "https" {
				c.add("%s: port %s: want appProtocol https (the API is served with TLS)", p, sp.Name)
			}
		}
	}
	for _, pdb := range s.PDBs {
		p := "PodDisruptionBudget " + pdb.Name
		if !selects(c, p, pdb.Spec.Selector, pod) {
			continue
		}
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || int32(pdb.Spec.MinAvailable.IntValue()) >= replicas(d) {
			c.add("%s: minAvailable %v: want at least 1 and fewer than the %d replicas (else no node can drain)", p, pdb.Spec.MinAvailable, replicas(d))
		}
	}
	for _, np := range s.NetworkPolicy {
		p := "NetworkPolicy " + np.Name
		selects(c, p, &np.Spec.PodSelector, pod)
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			c.add("%s: policyTypes %v: want Ingress and Egress (default deny both ways)", p, np.Spec.PolicyTypes)
		}
		for _, in := range np.Spec.Ingress {
			for _, port := range in.Ports {
				if port.Port == nil || !portExists(ports, *port.Port) {
					c.add("%s: ingress port %v is no container port", p, port.Port)
				}
			}
		}
		dns := false
		for _, out := range np.Spec.Egress {
			for _, port := range out.Ports {
				dns = dns || (port.Port != nil && port.Port.IntValue() == 53)
			}
		}
		if !dns {
			c.add("%s: egress does not allow DNS (port 53): Vault and Salesforce would not resolve", p)
		}
	}
	return c.errs
}

type checker struct{ errs []error }

func (c *checker) add(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *checker) fields(what string, list field.ErrorList) {
	for _, e := range list {
		c.add("%s: %s", what, e.Error())
	}
}

// checkMeta checks names, labels and namespaces of every object.
func (s *Set) checkMeta(c *checker) {
	ns := s.Kustomization.Namespace
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		c.add("kustomization namespace %q: %s", ns, strings.Join(msgs, "; "))
	}
	type obj struct {
		kind string
		meta metav1.ObjectMeta
	}
	var objs []obj
	for _, o := range s.Namespaces {
		objs = append(objs, obj{"Namespace", o.ObjectMeta})
		if o.Name != ns {
			c.add("Namespace %s is not the kustomization's namespace %s", o.Name, ns)
		}
	}
	for _, o := range s.ServiceAccount {
		objs = append(objs, obj{"ServiceAccount", o.ObjectMeta})
	}
	for _, o := range s.ConfigMaps {
		objs = append(objs, obj{"ConfigMap", o.ObjectMeta})
		for k := range o.Data {
			if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
				c.add("ConfigMap %s: key %q: %s", o.Name, k, strings.Join(msgs, "; "))
			}
		}
	}
	for _, o := range s.Services {
		objs = append(objs, obj{"Service", o.ObjectMeta})
		if msgs := validation.IsDNS1035Label(o.Name); len(msgs) > 0 {
			c.add("Service %s: %s", o.Name, strings.Join(msgs, "; "))
		}
	}
	for _, o := range s.Deployments {
		objs = append(objs, obj{"Deployment", o.ObjectMeta})
	}
	for _, o := range s.PDBs {
		objs = append(objs, obj{"PodDisruptionBudget", o.ObjectMeta})
	}
	for _, o := range s.NetworkPolicy {
		objs = append(objs, obj{"NetworkPolicy", o.ObjectMeta})
	}
	seen := map[string]bool{}
	for _, o := range objs {
		what := o.kind + " " + o.meta.Name
		if msgs := validation.IsDNS1123Subdomain(o.meta.Name); len(msgs) > 0 {
			c.add("%s: name: %s", what, strings.Join(msgs, "; "))
		}
		if seen[what] {
			c.add("%s is defined twice", what)
		}
		seen[what] = true
		c.fields(what, metavalidation.ValidateLabels(o.meta.Labels, field.NewPath("metadata", "labels")))
		if o.kind != "Namespace" && o.meta.Namespace != "" && o.meta.Namespace != ns {
			c.add("%s: namespace %s, the kustomization sets %s", what, o.meta.Namespace, ns)
		}
	}
}

func (s *Set) checkDeployment(c *checker, d appsv1.Deployment, ext External) {
	p := "Deployment " + d.Name
	if replicas(d) != 2 {
		c.add("%s: replicas %d, want 2 (they coordinate through Vault leases)", p, replicas(d))
	}
	pod := labels.Set(d.Spec.Template.Labels)
	selects(c, p, d.Spec.Selector, pod)
	spec := d.Spec.Template.Spec
	if spec.ServiceAccountName == "" || !slices.ContainsFunc(s.ServiceAccount, func(sa corev1.ServiceAccount) bool { return sa.Name == spec.ServiceAccountName }) {
		c.add("%s: serviceAccountName %q is not a ServiceAccount of these manifests", p, spec.ServiceAccountName)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		c.add("%s: automountServiceAccountToken must be false (the pod gets a projected token for Vault only)", p)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		c.add("%s: pod securityContext must set runAsNonRoot and a non-zero runAsUser", p)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		c.add("%s: pod securityContext: want seccompProfile RuntimeDefault", p)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			if !slices.ContainsFunc(s.ConfigMaps, func(cm corev1.ConfigMap) bool { return cm.Name == v.ConfigMap.Name }) && !slices.Contains(ext.ConfigMaps, v.ConfigMap.Name) {
				c.add("%s: volume %s: ConfigMap %s is neither in the manifests nor documented", p, v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if !slices.Contains(ext.Secrets, v.Secret.SecretName) {
				c.add("%s: volume %s: Secret %s is not documented", p, v.Name, v.Secret.SecretName)
			}
		}
	}
	if len(spec.Containers) != 1 {
		c.add("%s: want one container, got %d", p, len(spec.Containers))
		return
	}
	ctr := spec.Containers[0]
	p += " container " + ctr.Name
	sc := ctr.SecurityContext
	switch {
	case sc == nil:
		c.add("%s: no securityContext", p)
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			c.add("%s: readOnlyRootFilesystem must be true", p)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.add("%s: allowPrivilegeEscalation must be false", p)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			c.add("%s: capabilities must drop ALL and add none", p)
		}
	}
	for _, port := range ctr.Ports {
		if port.Name == "" {
			c.add("%s: port %d has no name (probes and the Service refer to it by name)", p, port.ContainerPort)
		} else if msgs := validation.IsValidPortName(port.Name); len(msgs) > 0 {
			c.add("%s: port name %q: %s", p, port.Name, strings.Join(msgs, "; "))
		}
	}
	ports := containerPorts(d)
	for name, want := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"livenessProbe": {ctr.LivenessProbe, "/healthz"}, "readinessProbe": {ctr.ReadinessProbe, "/readyz"}} {
		pr := want.probe
		if pr == nil || pr.HTTPGet == nil {
			c.add("%s: %s: want an httpGet probe on %s", p, name, want.path)
			continue
		}
		if pr.HTTPGet.Path != want.path {
			c.add("%s: %s: path %s, want %s", p, name, pr.HTTPGet.Path, want.path)
		}
		if !portExists(ports, pr.HTTPGet.Port) {
			c.add("%s: %s: port %s is no container port", p, name, pr.HTTPGet.Port.String())
		}
		if pr.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			c.add("%s: %s: scheme %q, want HTTPS (the daemon serves TLS)", p, name, pr.HTTPGet.Scheme)
		}
	}
	req, lim := ctr.Resources.Requests, ctr.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
		c.add("%s: resources: want cpu and memory requests and a memory limit", p)
	}
	// ~50 MiB RSS measured with 10,000 apps (14 MiB idle with 10 apps).
	if req.Memory().Cmp(resource.MustParse("50Mi")) < 0 {
		c.add("%s: memory request %s is below the measured RSS (~50Mi with 10,000 apps)", p, req.Memory())
	}
	if lim.Memory().Cmp(*req.Memory()) < 0 {
		c.add("%s: memory limit %s below the request %s", p, lim.Memory(), req.Memory())
	}
	for _, m := range ctr.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			c.add("%s: volumeMount %s has no volume", p, m.Name)
			continue
		}
		writable := v.EmptyDir != nil
		if !writable && !m.ReadOnly {
			c.add("%s: volumeMount %s: mount it readOnly", p, m.Name)
		}
	}
}

// selects checks that sel is valid and selects the pod labels.
func selects(c *checker, what string, sel *metav1.LabelSelector, pod labels.Set) bool {
	if sel == nil {
		c.add("%s: no selector", what)
		return false
	}
	c.fields(what, metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, field.NewPath("selector")))
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		c.add("%s: selector: %v", what, err)
		return false
	}
	if s.Empty() || !s.Matches(pod) {
		c.add("%s: selector %s does not select the Deployment's pods %v", what, s, pod)
		return false
	}
	return true
}

func replicas(d appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func containerPorts(d appsv1.Deployment) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, ctr := range d.Spec.Template.Spec.Containers {
		out = append(out, ctr.Ports...)
	}
	return out
}

func portExists(ports []corev1.ContainerPort, p intstr.IntOrString) bool {
	return slices.ContainsFunc(ports, func(cp corev1.ContainerPort) bool {
		if p.Type == intstr.String {
			return cp.Name == p.StrVal
		}
		return cp.ContainerPort == p.IntVal
	})
}

// daemonConfig is the part of ecarotator's config that must agree with the
// Deployment (the whole file is validated by ecarotator's own loader in the
// main module: deploy/kubernetes/config_test.go).
type daemonConfig struct {
	Vault struct {
		TLS struct {
			CACert string `json:"ca_cert"`
		} `json:"tls"`
		Auth struct {
			Method     string `json:"method"`
			Kubernetes struct {
				Role    string `json:"role"`
				JWTFile string `json:"jwt_file"`
			} `json:"kubernetes"`
		} `json:"auth"`
	} `json:"vault"`
	Audit struct {
		File      string `json:"file"`
		VaultSink struct {
			Enabled bool `json:"enabled"`
		} `json:"vault_sink"`
	} `json:"audit"`
	Server struct {
		Listen  string `json:"listen"`
		TLSCert string `json:"tls_cert"`
		TLSKey  string `json:"tls_key"`
	} `json:"server"`
}

// checkConfig relates the daemon's config to the Deployment: every path it
// names is under a mount of the right kind, and the port is the container's.
func (s *Set) checkConfig(c *checker, d appsv1.Deployment) {
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return
	}
	ctr := spec.Containers[0]
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	// mountOf returns the volume mounted at the folder holding path.
	mountOf := func(path string) (corev1.Volume, corev1.VolumeMount, bool) {
		for _, m := range ctr.VolumeMounts {
			if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
				return vols[m.Name], m, true
			}
		}
		return corev1.Volume{}, corev1.VolumeMount{}, false
	}
	i := slices.Index(ctr.Args, "-c")
	if i < 0 || i+1 >= len(ctr.Args) {
		c.add("container args %v: want -c <config file>", ctr.Args)
		return
	}
	cfgPath := ctr.Args[i+1]
	v, m, ok := mountOf(cfgPath)
	if !ok || v.ConfigMap == nil {
		c.add("config file %s is not under a ConfigMap mount", cfgPath)
		return
	}
	var cm *corev1.ConfigMap
	for k := range s.ConfigMaps {
		if s.ConfigMaps[k].Name == v.ConfigMap.Name {
			cm = &s.ConfigMaps[k]
		}
	}
	key := strings.TrimPrefix(cfgPath, strings.TrimSuffix(m.MountPath, "/")+"/")
	if cm == nil || cm.Data[key] == "" {
		c.add("config file %s: ConfigMap %s has no key %q", cfgPath, v.ConfigMap.Name, key)
		return
	}
	var cfg daemonConfig
	if err := yaml.Unmarshal([]byte(cm.Data[key]), &cfg); err != nil {
		c.add("ConfigMap %s key %s: %v", cm.Name, key, err)
		return
	}
	if cfg.Vault.Auth.Method != "kubernetes" || cfg.Vault.Auth.Kubernetes.Role == "" {
		c.add("config: vault.auth must be the kubernetes method with a role (the ServiceAccount is the identity)")
	}
	if v, _, ok := mountOf(cfg.Vault.Auth.Kubernetes.JWTFile); !ok || v.Projected == nil ||
		!slices.ContainsFunc(v.Projected.Sources, func(p corev1.VolumeProjection) bool {
			return p.ServiceAccountToken != nil && p.ServiceAccountToken.Audience != "" &&
				strings.HasSuffix(cfg.Vault.Auth.Kubernetes.JWTFile, "/"+p.ServiceAccountToken.Path)
		}) {
		c.add("config: vault.auth.kubernetes.jwt_file %s is not a projected service account token with an audience", cfg.Vault.Auth.Kubernetes.JWTFile)
	}
	for name, path := range map[string]string{"vault.tls.ca_cert": cfg.Vault.TLS.CACert, "server.tls_cert": cfg.Server.TLSCert, "server.tls_key": cfg.Server.TLSKey} {
		if path == "" {
			c.add("config: %s is empty (Vault and the API are served with TLS)", name)
		} else if v, m, ok := mountOf(path); !ok || !m.ReadOnly || (v.Secret == nil && v.ConfigMap == nil) {
			c.add("config: %s %s is not under a read-only Secret or ConfigMap mount", name, path)
		}
	}
	if v, _, ok := mountOf(cfg.Audit.File); !ok || v.EmptyDir == nil {
		c.add("config: audit.file %s is not on a writable emptyDir (the root file system is read-only)", cfg.Audit.File)
	}
	if !cfg.Audit.VaultSink.Enabled {
		c.add("config: audit.vault_sink.enabled must be true with several replicas (one chain in Vault)")
	}
	_, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil || !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return strconv.Itoa(int(p.ContainerPort)) == port }) {
		c.add("config: server.listen %q is not on a container port", cfg.Server.Listen)
	}
}
