// Package k8s_test builds every overlay of the sidecar's Kubernetes
// manifests with the kustomize API and holds the result to the sidecar:
// each object decodes strictly into its Kubernetes type, every SIDECAR_
// variable is one the sidecar reads, the settings pass the sidecar's own
// validation, the probes ask the health listener, and each pod's grace
// period covers the sidecar's shutdown budget and the app's.
//
// It is a module of its own so that the Kubernetes libraries stay out of
// the sidecar's go.mod; `make test-deploy` runs it.
package k8s_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/eventsidecar/sidecar/internal/sidecar"
)

// kafkaTopic is the part of Strimzi's KafkaTopic (kafka.strimzi.io/v1beta2)
// the manifests use; there are no Go types for it here. Decoding into it is
// strict, so a field Strimzi does not know fails as it would in the cluster.
type kafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		TopicName  string         `json:"topicName"`
		Partitions int32          `json:"partitions"`
		Replicas   int32          `json:"replicas"`
		Config     map[string]any `json:"config"`
	} `json:"spec"`
}

// manifests are the decoded objects of one overlay.
type manifests struct {
	deployments []*appsv1.Deployment
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
	topics      []*kafkaTopic
}

func overlays(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("overlays/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no overlays: %v", err)
	}
	return dirs
}

// build runs kustomize on dir and decodes every object strictly.
func build(t *testing.T, dir string) manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m := manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, res := range rm.Resources() {
		raw, err := res.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		switch gvk := res.GetGvk(); gvk.ApiVersion() + " " + gvk.Kind {
		case "apps/v1 Deployment":
			m.deployments = append(m.deployments, decode[appsv1.Deployment](t, raw))
		case "v1 ConfigMap":
			cm := decode[corev1.ConfigMap](t, raw)
			m.configMaps[cm.Name] = cm
		case "v1 Secret":
			s := decode[corev1.Secret](t, raw)
			m.secrets[s.Name] = s
		case "policy/v1 PodDisruptionBudget":
			m.pdbs = append(m.pdbs, decode[policyv1.PodDisruptionBudget](t, raw))
		case "kafka.strimzi.io/v1beta2 KafkaTopic":
			m.topics = append(m.topics, decode[kafkaTopic](t, raw))
		default:
			t.Fatalf("%s: %s %s/%s has no check here", dir, gvk.ApiVersion(), gvk.Kind, res.GetName())
		}
	}
	return m
}

// decode unmarshals raw into a T and fails on any field T does not have.
func decode[T any](t *testing.T, raw []byte) *T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, raw)
	}
	return &v
}

// knownVariables are the SIDECAR_ variables the sidecar reads, from the env
// tags of sidecar.Config, with their defaults.
func knownVariables(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{}
	typ := reflect.TypeFor[sidecar.Config]()
	for i := range typ.NumField() {
		tag, ok := typ.Field(i).Tag.Lookup("env")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		def := ""
		for o := range strings.SplitSeq(opts, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(o), "default="); ok {
				def = v
			}
		}
		vars["SIDECAR_"+strings.TrimSpace(name)] = def
	}
	if len(vars) < 10 {
		t.Fatalf("only %d variables found in sidecar.Config", len(vars))
	}
	return vars
}

// sidecarOf returns the native sidecar container of d.
func sidecarOf(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.InitContainers {
		if c.Name == "sidecar" {
			if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				t.Fatalf("%s: the sidecar is an init container without restartPolicy Always", d.Name)
			}
			return c
		}
	}
	t.Fatalf("%s: no sidecar init container", d.Name)
	return corev1.Container{}
}

// environment returns the SIDECAR_ settings c receives: its envFrom
// ConfigMaps and Secrets, then its own env, which wins.
func environment(t *testing.T, m manifests, d *appsv1.Deployment, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := m.configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("%s: ConfigMap %s is not in the build", d.Name, from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			s, ok := m.secrets[from.SecretRef.Name]
			if !ok {
				t.Fatalf("%s: Secret %s is not in the build", d.Name, from.SecretRef.Name)
			}
			for k, v := range s.StringData {
				env[from.Prefix+k] = v
			}
			for k, v := range s.Data {
				env[from.Prefix+k] = string(v)
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			// Set in the cluster; a stand-in for the checks.
			env[e.Name] = "from-" + e.Name
		}
	}
	return env
}

func TestOverlaysBuildAndDecodeStrictly(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := build(t, dir)
			if len(m.deployments) != 2 || len(m.pdbs) != 2 || len(m.topics) != 1 {
				t.Fatalf("%d deployments, %d PDBs, %d topics; want 2, 2, 1",
					len(m.deployments), len(m.pdbs), len(m.topics))
			}
		})
	}
}

func TestSidecarSettingsAreOnesItReads(t *testing.T) {
	known := knownVariables(t)
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := build(t, dir)
			for _, d := range m.deployments {
				env := environment(t, m, d, sidecarOf(t, d))
				for name := range env {
					if _, ok := known[name]; strings.HasPrefix(name, "SIDECAR_") && !ok {
						t.Errorf("%s: the manifests set %s, which the sidecar does not read", d.Name, name)
					}
				}
				if env["SIDECAR_KAFKA_BROKERS"] == "" || env["SIDECAR_REDIS_URL"] == "" {
					t.Errorf("%s: the sidecar would run embedded: set SIDECAR_KAFKA_BROKERS and SIDECAR_REDIS_URL", d.Name)
				}
				validate(t, d.Name, env)
			}
		})
	}
}

// validate runs the sidecar's own validation over env. Files named by
// *_FILE settings exist only in the cluster: stand-ins take their place.
func validate(t *testing.T, name string, env map[string]string) {
	t.Helper()
	env = maps(env)
	for k := range env {
		if strings.HasSuffix(k, "_CA_FILE") {
			env[k] = testCA(t)
		}
	}
	if _, _, err := sidecar.LoadConfig(t.Context(), env); err != nil {
		t.Errorf("%s: the sidecar would refuse its settings: %v", name, err)
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestGracePeriodCoversShutdown(t *testing.T) {
	known := knownVariables(t)
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := build(t, dir)
			for _, d := range m.deployments {
				env := environment(t, m, d, sidecarOf(t, d))
				budget, ok := env["SIDECAR_SHUTDOWN_TIMEOUT"]
				if !ok {
					budget = known["SIDECAR_SHUTDOWN_TIMEOUT"]
				}
				sidecarBudget, err := time.ParseDuration(budget)
				if err != nil {
					t.Fatalf("%s: SIDECAR_SHUTDOWN_TIMEOUT %q: %v", d.Name, budget, err)
				}
				appSeconds, err := strconv.Atoi(d.Spec.Template.Annotations["eventsidecar.io/app-shutdown-seconds"])
				if err != nil {
					t.Fatalf("%s: the pod does not state its app's shutdown in eventsidecar.io/app-shutdown-seconds: %v", d.Name, err)
				}
				grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
				if grace == nil {
					t.Fatalf("%s: no terminationGracePeriodSeconds", d.Name)
				}
				// The sidecar is stopped after the app exited.
				need := sidecarBudget + time.Duration(appSeconds)*time.Second
				if have := time.Duration(*grace) * time.Second; have < need {
					t.Errorf("%s: grace period %s is shorter than the sidecar's budget %s plus the app's %ds",
						d.Name, have, sidecarBudget, appSeconds)
				}
			}
		})
	}
}

func TestProbesAskTheHealthListener(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := build(t, dir)
			for _, d := range m.deployments {
				c := sidecarOf(t, d)
				env := environment(t, m, d, c)
				_, port, err := net.SplitHostPort(env["SIDECAR_HEALTH_ADDR"])
				if err != nil {
					t.Fatalf("%s: SIDECAR_HEALTH_ADDR %q: %v", d.Name, env["SIDECAR_HEALTH_ADDR"], err)
				}
				if host, _, _ := net.SplitHostPort(env["SIDECAR_GRPC_ADDR"]); host != "127.0.0.1" {
					t.Errorf("%s: the contract listens on %q, not the pod's loopback", d.Name, env["SIDECAR_GRPC_ADDR"])
				}
				for _, p := range []struct {
					name    string
					probe   *corev1.Probe
					service string
				}{
					{"startup", c.StartupProbe, sidecar.ReadyService},
					{"readiness", c.ReadinessProbe, sidecar.ReadyService},
					{"liveness", c.LivenessProbe, sidecar.LiveService},
				} {
					if p.probe == nil || p.probe.GRPC == nil {
						t.Errorf("%s: the sidecar's %s probe is not a gRPC probe", d.Name, p.name)
						continue
					}
					if strconv.Itoa(int(p.probe.GRPC.Port)) != port {
						t.Errorf("%s: %s probe on port %d, the health listener is on %s", d.Name, p.name, p.probe.GRPC.Port, port)
					}
					if got := p.probe.GRPC.Service; (got == nil && p.service != "") || (got != nil && *got != p.service) {
						t.Errorf("%s: %s probe asks for service %v, want %q", d.Name, p.name, got, p.service)
					}
				}
				if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("%s: the sidecar has no CPU request or memory limit", d.Name)
				}
			}
		})
	}
}

func TestDisruptionBudgetsCoverTheApps(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := build(t, dir)
			for _, d := range m.deployments {
				covered := false
				for _, pdb := range m.pdbs {
					sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
					if err != nil {
						t.Fatal(err)
					}
					covered = covered || pdb.Namespace == d.Namespace && sel.Matches(labels.Set(d.Spec.Template.Labels))
				}
				if !covered {
					t.Errorf("%s: no PodDisruptionBudget selects its pods", d.Name)
				}
			}
		})
	}
}

func TestEventTopicKeepsEverything(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := build(t, dir)
			topic := m.topics[0]
			if topic.Labels["strimzi.io/cluster"] == "" {
				t.Error("the KafkaTopic names no Strimzi cluster (label strimzi.io/cluster)")
			}
			for key, want := range map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"} {
				if got := configValue(topic, key); got != want {
					t.Errorf("topic config %s = %q, want %q", key, got, want)
				}
			}
			for _, d := range m.deployments {
				env := environment(t, m, d, sidecarOf(t, d))
				if env["SIDECAR_KAFKA_TOPIC"] != topic.Spec.TopicName {
					t.Errorf("%s: SIDECAR_KAFKA_TOPIC %q, the KafkaTopic is %q", d.Name, env["SIDECAR_KAFKA_TOPIC"], topic.Spec.TopicName)
				}
				if env["SIDECAR_KAFKA_PARTITIONS"] != strconv.Itoa(int(topic.Spec.Partitions)) {
					t.Errorf("%s: SIDECAR_KAFKA_PARTITIONS %q, the KafkaTopic has %d", d.Name, env["SIDECAR_KAFKA_PARTITIONS"], topic.Spec.Partitions)
				}
			}
			if filepath.Base(dir) == "production" {
				minISR, _ := strconv.Atoi(configValue(topic, "min.insync.replicas"))
				if topic.Spec.Replicas != 3 || minISR != 2 {
					t.Errorf("production topic: replicas %d, min.insync.replicas %d; want 3 and 2", topic.Spec.Replicas, minISR)
				}
			}
		})
	}
}

func configValue(topic *kafkaTopic, key string) string {
	v, ok := topic.Spec.Config[key]
	if !ok {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// testCA writes a self-signed PEM certificate, a stand-in for settings
// that name a CA file.
func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stand-in ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
