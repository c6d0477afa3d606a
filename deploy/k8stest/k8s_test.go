// Package k8stest decodes Warden's Kubernetes manifests (deploy/k8s) strictly with the
// Kubernetes API types and checks that what they refer to exists. It is a module of its
// own so that k8s.io/api and k8s.io/apimachinery stay out of the product's go.mod; the
// command lines and gate.yaml inside the manifests are checked against warden's own flag
// parser in the main module (internal/cli, TestKubernetesCommandsAndGateConfig).
// Run: cd deploy/k8stest && go test ./...
package k8stest

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// external are objects the manifests use that an operator creates with kubectl, as the
// comments in the manifests say (a join token, the signed policy bundle).
var external = map[string]bool{"Secret/vendor-portal-join-token": true, "ConfigMap/warden-policy": true}

type object struct {
	file, kind, name string
	obj              any
}

// load decodes every document of every manifest into its typed object, refusing unknown
// fields anywhere (sigs.k8s.io/yaml.UnmarshalStrict) and kinds this test does not know.
func load(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("../k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []object
	sep := regexp.MustCompile(`(?m)^---\s*$`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range sep.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s #%d: %v", f, i, err)
			}
			var obj any
			switch head.APIVersion + " " + head.Kind {
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "v1 PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "apps/v1 StatefulSet":
				obj = &appsv1.StatefulSet{}
			default:
				t.Fatalf("%s #%d: unexpected %s %s", f, i, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s #%d (%s): strict decoding: %v", f, i, head.Kind, err)
				continue
			}
			name := reflectName(obj)
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				t.Errorf("%s: %s name %q: %v", f, head.Kind, name, errs)
			}
			out = append(out, object{file: filepath.Base(f), kind: head.Kind, name: name, obj: obj})
		}
	}
	return out
}

func stripComments(doc string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func reflectName(obj any) string {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return o.Name
	case *corev1.Secret:
		return o.Name
	case *corev1.ConfigMap:
		return o.Name
	case *corev1.Service:
		return o.Name
	case *corev1.PersistentVolumeClaim:
		return o.Name
	case *appsv1.Deployment:
		return o.Name
	case *appsv1.StatefulSet:
		return o.Name
	}
	return ""
}

// workload is a pod template with where it came from.
type workload struct {
	name   string
	labels map[string]string
	pod    corev1.PodSpec
	claims []string // volumeClaimTemplates
}

func workloads(objs []object) []workload {
	var out []workload
	for _, o := range objs {
		switch w := o.obj.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{name: w.Name, labels: w.Spec.Template.Labels, pod: w.Spec.Template.Spec})
		case *appsv1.StatefulSet:
			wl := workload{name: w.Name, labels: w.Spec.Template.Labels, pod: w.Spec.Template.Spec}
			for _, c := range w.Spec.VolumeClaimTemplates {
				wl.claims = append(wl.claims, c.Name)
			}
			out = append(out, wl)
		}
	}
	return out
}

// TestManifestsDecodeStrictly: every document is a known kind and decodes with no unknown
// field; the set holds the server's Deployment and Service, PostgreSQL, and an agent pod
// with its gate and enroll sidecars.
func TestManifestsDecodeStrictly(t *testing.T) {
	objs := load(t)
	have := map[string]bool{}
	for _, o := range objs {
		have[o.kind+"/"+o.name] = true
	}
	for _, want := range []string{"Deployment/warden-server", "Service/warden-server", "StatefulSet/warden-postgres",
		"Service/warden-postgres", "StatefulSet/vendor-portal", "Service/vendor-portal", "ConfigMap/vendor-portal-gate"} {
		if !have[want] {
			t.Errorf("no %s", want)
		}
	}
}

// TestManifestReferences: mounts, config maps, secrets, service selectors and probe ports
// refer to things that exist; the gate and the agent share the agent's socket; enroll is
// a native sidecar that keeps the identity the gate reads (read-only); pods run as
// non-root.
func TestManifestReferences(t *testing.T) {
	objs := load(t)
	exists := func(kind, name string) bool {
		if external[kind+"/"+name] {
			return true
		}
		return slices.ContainsFunc(objs, func(o object) bool { return o.kind == kind && o.name == name })
	}
	wls := workloads(objs)
	for _, w := range wls {
		vols := map[string]bool{}
		for _, v := range w.pod.Volumes {
			vols[v.Name] = true
			if v.ConfigMap != nil && !exists("ConfigMap", v.ConfigMap.Name) {
				t.Errorf("%s: volume %s: no ConfigMap %s", w.name, v.Name, v.ConfigMap.Name)
			}
			if v.Secret != nil && !exists("Secret", v.Secret.SecretName) {
				t.Errorf("%s: volume %s: no Secret %s", w.name, v.Name, v.Secret.SecretName)
			}
			if v.PersistentVolumeClaim != nil && !exists("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName) {
				t.Errorf("%s: volume %s: no PersistentVolumeClaim %s", w.name, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
		for _, c := range w.claims {
			vols[c] = true
		}
		all := append(append([]corev1.Container(nil), w.pod.InitContainers...), w.pod.Containers...)
		for _, c := range all {
			if c.Image == "" {
				t.Errorf("%s/%s: no image", w.name, c.Name)
			}
			for _, m := range c.VolumeMounts {
				if !vols[m.Name] {
					t.Errorf("%s/%s: mounts unknown volume %s", w.name, c.Name, m.Name)
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil && !exists("Secret", e.SecretRef.Name) {
					t.Errorf("%s/%s: envFrom: no Secret %s", w.name, c.Name, e.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !exists("Secret", e.ValueFrom.SecretKeyRef.Name) {
					t.Errorf("%s/%s: env %s: no Secret %s", w.name, c.Name, e.Name, e.ValueFrom.SecretKeyRef.Name)
				}
			}
			ports := map[string]bool{}
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && !ports[p.HTTPGet.Port.StrVal] {
					t.Errorf("%s/%s: probe on unknown port %s", w.name, c.Name, p.HTTPGet.Port.StrVal)
				}
			}
		}
	}
	// Every Service selects a workload and its named target ports exist there.
	for _, o := range objs {
		svc, ok := o.obj.(*corev1.Service)
		if !ok {
			continue
		}
		var match *workload
		for i, w := range wls {
			ok := len(svc.Spec.Selector) > 0
			for k, v := range svc.Spec.Selector {
				ok = ok && w.labels[k] == v
			}
			if ok {
				match = &wls[i]
			}
		}
		if match == nil {
			t.Errorf("Service %s selects no workload", svc.Name)
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.StrVal == "" {
				continue
			}
			found := false
			for _, c := range match.pod.Containers {
				for _, cp := range c.Ports {
					found = found || cp.Name == p.TargetPort.StrVal
				}
			}
			if !found {
				t.Errorf("Service %s: target port %s is no container port of %s", svc.Name, p.TargetPort.StrVal, match.name)
			}
		}
	}
	// The agent pod: enroll native sidecar writes the identity, the gate reads it
	// read-only and shares the agent's socket volume.
	for _, w := range wls {
		if w.name != "vendor-portal" {
			continue
		}
		var enroll, gate, agent *corev1.Container
		for i, c := range w.pod.InitContainers {
			if c.Name == "enroll" {
				enroll = &w.pod.InitContainers[i]
			}
		}
		for i, c := range w.pod.Containers {
			switch c.Name {
			case "gate":
				gate = &w.pod.Containers[i]
			case "agent":
				agent = &w.pod.Containers[i]
			}
		}
		if enroll == nil || gate == nil || agent == nil {
			t.Fatalf("vendor-portal: enroll %v gate %v agent %v", enroll != nil, gate != nil, agent != nil)
		}
		if enroll.RestartPolicy == nil || *enroll.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Error("enroll is not a native sidecar (restartPolicy: Always): it would block the pod as an init container")
		}
		mount := func(c *corev1.Container, vol string) *corev1.VolumeMount {
			for i, m := range c.VolumeMounts {
				if m.Name == vol {
					return &c.VolumeMounts[i]
				}
			}
			return nil
		}
		if m := mount(enroll, "identity"); m == nil || m.ReadOnly {
			t.Error("enroll does not write the identity volume")
		}
		if m := mount(gate, "identity"); m == nil || !m.ReadOnly {
			t.Error("the gate must read the identity volume read-only (it never renews)")
		}
		if mount(gate, "agent-socket") == nil || mount(agent, "agent-socket") == nil {
			t.Error("the gate and the agent do not share the socket volume")
		}
		if len(agent.Ports) != 0 {
			t.Error("the agent exposes a port: it must be reachable only through the gate's socket")
		}
	}
	for _, w := range wls {
		if sc := w.pod.SecurityContext; w.name != "warden-postgres" && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			t.Errorf("%s: pod does not run as non-root", w.name)
		}
	}
}
