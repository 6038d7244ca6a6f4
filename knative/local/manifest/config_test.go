package manifest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"knative.dev/eventing/pkg/apis/feature"
	"knative.dev/eventing/pkg/reconciler/broker"
	netcfg "knative.dev/networking/pkg/config"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	routecfg "knative.dev/serving/pkg/reconciler/route/config"
	kindv1alpha4 "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	sigsyaml "sigs.k8s.io/yaml"
)

// platform is config/ decoded strictly into the Kubernetes API types.
type platform struct {
	namespaces   map[string]*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap // by namespace/name
	secrets      map[string]*corev1.Secret
	services     map[string]*corev1.Service
	claims       map[string]*corev1.PersistentVolumeClaim
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
}

func key(namespace, name string) string { return namespace + "/" + name }

// decodePlatform decodes every YAML document under dir by apiVersion and kind; an unknown
// field or kind fails, naming the file and document.
func decodePlatform(dir string) (*platform, error) {
	p := &platform{
		namespaces: map[string]*corev1.Namespace{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{},
		claims: map[string]*corev1.PersistentVolumeClaim{},
	}
	err := walkDocuments(dir, func(file string, index int, doc []byte) error {
		var tm typeMeta
		if err := json.Unmarshal(doc, &tm); err != nil {
			return fmt.Errorf("%s (document %d): %w", file, index, err)
		}
		var err error
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/Namespace":
			o := &corev1.Namespace{}
			if err = strict(doc, o); err == nil {
				p.namespaces[o.Name] = o
			}
		case "v1/ConfigMap":
			o := &corev1.ConfigMap{}
			if err = strict(doc, o); err == nil {
				p.configMaps[key(o.Namespace, o.Name)] = o
			}
		case "v1/Secret":
			o := &corev1.Secret{}
			if err = strict(doc, o); err == nil {
				p.secrets[key(o.Namespace, o.Name)] = o
			}
		case "v1/Service":
			o := &corev1.Service{}
			if err = strict(doc, o); err == nil {
				p.services[key(o.Namespace, o.Name)] = o
			}
		case "v1/PersistentVolumeClaim":
			o := &corev1.PersistentVolumeClaim{}
			if err = strict(doc, o); err == nil {
				p.claims[key(o.Namespace, o.Name)] = o
			}
		case "apps/v1/StatefulSet":
			o := &appsv1.StatefulSet{}
			if err = strict(doc, o); err == nil {
				p.statefulSets = append(p.statefulSets, o)
			}
		case "apps/v1/Deployment":
			o := &appsv1.Deployment{}
			if err = strict(doc, o); err == nil {
				p.deployments = append(p.deployments, o)
			}
		default:
			err = fmt.Errorf("unexpected object %s %s in config/", tm.APIVersion, tm.Kind)
		}
		if err != nil {
			return fmt.Errorf("%s (document %d): %w", file, index, err)
		}
		return nil
	})
	return p, err
}

func loadPlatform(t *testing.T) *platform {
	t.Helper()
	p, err := decodePlatform(filepath.Join(root(t), "config"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *platform) configMap(t *testing.T, namespace, name string) *corev1.ConfigMap {
	t.Helper()
	cm := p.configMaps[key(namespace, name)]
	if cm == nil {
		t.Fatalf("config/ has no ConfigMap %s/%s", namespace, name)
	}
	return cm
}

func TestPlatformDecodesStrictly(t *testing.T) {
	p := loadPlatform(t)
	if p.namespaces["tickit"] == nil {
		t.Error("no Namespace tickit")
	}
	if len(p.statefulSets) != 2 || len(p.deployments) != 3 {
		t.Errorf("%d StatefulSets (NATS, MongoDB) and %d Deployments (Redis, stripe-mock, Jaeger)", len(p.statefulSets), len(p.deployments))
	}

	// A typo'd field fails, naming the file.
	dir := t.TempDir()
	bad := "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n    - prot: 80\n"
	if err := os.WriteFile(filepath.Join(dir, "x.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := decodePlatform(dir); err == nil || !strings.Contains(err.Error(), "x.yaml (document 0)") {
		t.Errorf("a typo'd field: %v", err)
	}
}

func TestWorkloadsAreWiredTogether(t *testing.T) {
	p := loadPlatform(t)
	type workload struct {
		kind, namespace, name string
		selector              *metav1.LabelSelector
		template              corev1.PodTemplateSpec
		claimTemplates        []corev1.PersistentVolumeClaim
	}
	var workloads []workload
	for _, s := range p.statefulSets {
		workloads = append(workloads, workload{"StatefulSet", s.Namespace, s.Name, s.Spec.Selector, s.Spec.Template, s.Spec.VolumeClaimTemplates})
		if p.services[key(s.Namespace, s.Spec.ServiceName)] == nil {
			t.Errorf("StatefulSet %s: serviceName %s is not a Service", s.Name, s.Spec.ServiceName)
		}
	}
	for _, d := range p.deployments {
		workloads = append(workloads, workload{"Deployment", d.Namespace, d.Name, d.Spec.Selector, d.Spec.Template, nil})
	}
	for _, w := range workloads {
		// The API server rejects a selector that does not match the template.
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.template.Labels)) {
			t.Errorf("%s %s: selector %v does not match its pod labels %v", w.kind, w.name, w.selector, w.template.Labels)
		}
		// Every volume mount has a volume or a claim template; every claim exists.
		volumes := map[string]bool{}
		for _, v := range w.template.Spec.Volumes {
			volumes[v.Name] = true
			if c := v.PersistentVolumeClaim; c != nil && p.claims[key(w.namespace, c.ClaimName)] == nil {
				t.Errorf("%s %s: claim %s not in config/", w.kind, w.name, c.ClaimName)
			}
		}
		for _, c := range w.claimTemplates {
			volumes[c.Name] = true
		}
		for _, c := range w.template.Spec.Containers {
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("%s %s: mount %s has no volume", w.kind, w.name, m.Name)
				}
			}
			if c.Resources.Limits.Memory().IsZero() || c.ReadinessProbe == nil {
				t.Errorf("%s %s: container %s lacks a memory limit or a readiness probe", w.kind, w.name, c.Name)
			}
		}
	}
	// Every Service selects a workload and targets one of its named ports.
	for _, svc := range p.services {
		found := false
		for _, w := range workloads {
			if w.namespace != svc.Namespace || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.template.Labels)) {
				continue
			}
			found = true
			for _, port := range svc.Spec.Ports {
				if !hasPort(w.template.Spec.Containers, port.TargetPort) {
					t.Errorf("Service %s: targetPort %s is not a port of %s", svc.Name, port.TargetPort.String(), w.name)
				}
			}
		}
		if !found {
			t.Errorf("Service %s selects no workload", svc.Name)
		}
	}
}

func hasPort(containers []corev1.Container, target intstr.IntOrString) bool {
	for _, c := range containers {
		for _, p := range c.Ports {
			if (target.Type == intstr.String && p.Name == target.StrVal) || (target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
				return true
			}
		}
	}
	return false
}

// serviceAt reports whether host:port is a Service of config/ (name.namespace.svc.cluster.local).
func (p *platform) serviceAt(t *testing.T, hostport string) bool {
	t.Helper()
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%q: %v", hostport, err)
		return false
	}
	parts := strings.Split(host, ".")
	if len(parts) != 5 || strings.Join(parts[2:], ".") != "svc.cluster.local" {
		t.Errorf("%q is not a cluster Service name", host)
		return false
	}
	svc := p.services[key(parts[1], parts[0])]
	port, _ := strconv.Atoi(portText)
	if svc == nil {
		return false
	}
	for _, sp := range svc.Spec.Ports {
		if int(sp.Port) == port {
			return true
		}
	}
	return false
}

func TestFunctionEnvironmentExistsInConfig(t *testing.T) {
	p := loadPlatform(t)
	for _, s := range loadApp(t).Services {
		for _, c := range s.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				where := s.Name + " env " + e.Name
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref := e.ValueFrom.SecretKeyRef
					secret := p.secrets[key(s.Namespace, ref.Name)]
					if secret == nil {
						t.Errorf("%s: Secret %s not in config/", where, ref.Name)
					} else if _, ok := secret.StringData[ref.Key]; !ok {
						t.Errorf("%s: Secret %s has no key %s", where, ref.Name, ref.Key)
					}
				}
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					ref := e.ValueFrom.ConfigMapKeyRef
					cm := p.configMaps[key(s.Namespace, ref.Name)]
					if cm == nil {
						t.Errorf("%s: ConfigMap %s not in config/", where, ref.Name)
					} else if _, ok := cm.Data[ref.Key]; !ok {
						t.Errorf("%s: ConfigMap %s has no key %s", where, ref.Name, ref.Key)
					}
				}
				// MONGO_URL and REDIS_URL name Services of config/.
				if e.Name == "MONGO_URL" || e.Name == "REDIS_URL" {
					u, err := url.Parse(e.Value)
					if err != nil || !p.serviceAt(t, u.Host) {
						t.Errorf("%s = %q is not a Service of config/", where, e.Value)
					}
				}
			}
		}
	}
}

func TestSecretTemplatesHoldNoKeys(t *testing.T) {
	for name, s := range loadPlatform(t).secrets {
		if len(s.Data) != 0 {
			t.Errorf("Secret %s has data: templates keep stringData empty", name)
		}
		for k, v := range s.StringData {
			if v != "" {
				t.Errorf("Secret %s: %s is set in git", name, k)
			}
		}
	}
}

func TestTheBrokerChannelIsNatsJetStream(t *testing.T) {
	// Arrange: the ConfigMap the Broker points to.
	p := loadPlatform(t)
	ref := loadApp(t).Brokers[0].Spec.Config
	cm := p.configMap(t, ref.Namespace, ref.Name)

	// Act: parse it with the MTChannelBasedBroker's own config parser.
	cfg, err := broker.NewConfigFromConfigMapFunc(context.Background())(cm)

	// Assert
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Data["channel-template-spec"]; !ok {
		t.Error("the template is not under channel-template-spec")
	}
	tmpl := cfg.DefaultChannelTemplate
	if tmpl.APIVersion != "messaging.knative.dev/v1alpha1" || tmpl.Kind != "NatsJetStreamChannel" {
		t.Errorf("channel template %s %s, want messaging.knative.dev/v1alpha1 NatsJetStreamChannel", tmpl.APIVersion, tmpl.Kind)
	}

	// The channel's dispatcher finds NATS at a Service of config/ that runs JetStream.
	var nats struct {
		URL string `json:"url"`
	}
	natsCM := p.configMap(t, "knative-eventing", "config-nats")
	if err := sigsyaml.Unmarshal([]byte(natsCM.Data["eventing-nats"]), &nats); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(nats.URL)
	if err != nil || u.Scheme != "nats" || !p.serviceAt(t, u.Host) {
		t.Errorf("config-nats url %q is not a Service of config/", nats.URL)
	}
	jetstream := false
	for _, s := range p.statefulSets {
		for _, c := range s.Spec.Template.Spec.Containers {
			for _, a := range c.Args {
				jetstream = jetstream || (s.Name == "nats" && a == "--jetstream")
			}
		}
	}
	if !jetstream {
		t.Error("the nats StatefulSet does not run JetStream")
	}
}

func TestKnativeSettingsParseWithKnativesCode(t *testing.T) {
	p := loadPlatform(t)

	// config-domain: Services answer under 127.0.0.1.sslip.io.
	domain, err := routecfg.NewDomainFromConfigMap(p.configMap(t, "knative-serving", "config-domain"))
	if err != nil {
		t.Fatal(err)
	}
	if got := domain.LookupDomainForLabels(nil); got != "127.0.0.1.sslip.io" {
		t.Errorf("domain %q", got)
	}

	// config-network: Kourier is the ingress.
	network, err := netcfg.NewConfigFromConfigMap(p.configMap(t, "knative-serving", "config-network"))
	if err != nil {
		t.Fatal(err)
	}
	if network.DefaultIngressClass != "kourier.ingress.networking.knative.dev" {
		t.Errorf("ingress class %q", network.DefaultIngressClass)
	}

	// config-autoscaler: scale to zero, with the values the comments describe.
	as, err := asconfig.NewConfigFromConfigMap(p.configMap(t, "knative-serving", "config-autoscaler"))
	if err != nil {
		t.Fatal(err)
	}
	if !as.EnableScaleToZero || as.StableWindow != time.Minute || as.ScaleToZeroGracePeriod != 30*time.Second {
		t.Errorf("autoscaler %+v", as)
	}

	// config-features: exactly the flags Load validates the Triggers with.
	cm := p.configMap(t, "knative-eventing", "config-features")
	cluster, err := feature.NewFlagsConfigFromConfigMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	assumed, err := feature.NewFlagsConfigFromMap(clusterFeatures)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cluster) != fmt.Sprint(assumed) {
		t.Errorf("config-features gives %v, the loader assumes %v", cluster, assumed)
	}
	if !cluster.IsEnabled(feature.DeliveryTimeout) {
		t.Error("delivery-timeout is not enabled: every Trigger sets a timeout")
	}
}

func TestSinkBindingsCanInjectIntoTheNamespace(t *testing.T) {
	ns := loadPlatform(t).namespaces["tickit"]
	if ns == nil || ns.Labels["bindings.knative.dev/include"] != "true" {
		t.Fatal("namespace tickit is not labelled bindings.knative.dev/include=true")
	}
}

func TestKindConfigPublishesKourierOnPort80(t *testing.T) {
	// Arrange
	dir := root(t)
	data, err := os.ReadFile(filepath.Join(dir, "kind-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := sigsyaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}

	// Act: strictly into kind's own v1alpha4 types, then kind's defaults.
	cluster := &kindv1alpha4.Cluster{}
	if err := strict(doc, cluster); err != nil {
		t.Fatal(err)
	}
	kindv1alpha4.SetDefaultsCluster(cluster)

	// Assert
	if cluster.Kind != "Cluster" || cluster.APIVersion != "kind.x-k8s.io/v1alpha4" || cluster.Name != "tickit" {
		t.Errorf("cluster %s %s %q", cluster.APIVersion, cluster.Kind, cluster.Name)
	}
	mapped := false
	for _, n := range cluster.Nodes {
		for _, m := range n.ExtraPortMappings {
			mapped = mapped || (n.Role == kindv1alpha4.ControlPlaneRole && m.ContainerPort == 31080 && m.HostPort == 80 &&
				m.Protocol == kindv1alpha4.PortMappingProtocolTCP)
		}
	}
	if !mapped {
		t.Errorf("no control-plane mapping of container port 31080 to host port 80: %+v", cluster.Nodes)
	}

	// hack/cluster.sh puts Kourier on that NodePort and creates that cluster.
	script, err := os.ReadFile(filepath.Join(dir, "hack", "cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"KOURIER_NODE_PORT=31080", "CLUSTER=tickit", "--config kind-config.yaml"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("hack/cluster.sh lacks %q", want)
		}
	}
}
