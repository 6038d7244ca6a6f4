package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// knativeSources finds the eventing and serving modules (the versions tools/knative pins)
// in the module cache: their config/ directories are the install manifests.
func knativeSources(tools string) (eventing, serving string, err error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "knative.dev/eventing", "knative.dev/serving")
	cmd.Dir = tools
	cmd.Env = append(cmd.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go list knative modules in %s: %w", tools, err)
	}
	dirs := strings.Fields(string(out))
	if len(dirs) != 2 {
		return "", "", fmt.Errorf("go list knative modules: %q", out)
	}
	return dirs[0], dirs[1], nil
}

// knativeInstall is what a release's YAML installs, minus what cannot run here: CRDs,
// RBAC, ConfigMaps, webhook configurations and Services of Eventing core, the
// in-memory channel and the MT channel-based Broker, and of Serving core. The
// Deployments are applied too (the reconcilers look at them), but nothing runs them:
// the processes below stand in for their pods.
func knativeInstall(eventing, serving string) ([]string, error) {
	files, err := yamlFiles(
		filepath.Join(eventing, "config/core"),
		filepath.Join(eventing, "config/channels/in-memory-channel"),
		filepath.Join(eventing, "config/brokers/mt-channel-broker"),
		filepath.Join(serving, "config/core"),
	)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		// An Image (caching.internal.knative.dev) and a Certificate
		// (networking.internal.knative.dev): their CRDs ship with Serving's caching and
		// networking releases, which serve pods and ingresses, neither of which runs here.
		if b := filepath.Base(f); b == "999-cache.yaml" || b == "300-knativecertificate.yaml" {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

// knativePorts are the host ports of one run's Knative processes.
type knativePorts struct {
	eventingWebhook, imcWebhook, servingWebhook, ingress, filter int
	dispatcher                                                   int // hard-coded by the dispatcher: 8080
}

// backends maps "<service>.<namespace>" to the target ports of the process behind it.
func (p knativePorts) backends() map[string]map[int32]int {
	return map[string]map[int32]int{
		"eventing-webhook.knative-eventing":        {8443: p.eventingWebhook},
		"inmemorychannel-webhook.knative-eventing": {8443: p.imcWebhook},
		"webhook.knative-serving":                  {8443: p.servingWebhook},
		"broker-ingress.knative-eventing":          {8080: p.ingress},
		"broker-filter.knative-eventing":           {8080: p.filter},
		"imc-dispatcher.knative-eventing":          {8080: p.dispatcher},
	}
}

// endpoints writes an EndpointSlice for each Knative Service whose pods are local
// processes (the API server and the Broker reconciler read them): the address is the
// host's (the API server refuses loopback), the ports the processes'.
func (c *cluster) endpoints(ctx context.Context, ip string, p knativePorts) error {
	for key, targets := range p.backends() {
		name, ns, _ := strings.Cut(key, ".")
		svc, err := c.kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("service %s: %w", key, err)
		}
		var slicePorts []discoveryv1.EndpointPort
		for _, sp := range svc.Spec.Ports {
			tp := sp.TargetPort
			if tp.Type != intstr.Int {
				continue
			}
			local, ok := targets[tp.IntVal]
			if !ok {
				continue
			}
			slicePorts = append(slicePorts, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(int32(local)), Protocol: ptr.To(corev1.ProtocolTCP)})
		}
		if len(slicePorts) == 0 {
			return fmt.Errorf("service %s: no port targets %v", key, targets)
		}
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-local", Namespace: ns, Labels: map[string]string{
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: fieldManager}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       slicePorts,
		}
		if _, err := c.kube.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("endpointslice %s: %w", key, err)
		}
	}
	return nil
}

// deploymentsAvailable plays the Deployment controller and kubelet for Knative's
// Deployments (their pods are the local processes): every second, each one's status
// says Available with its desired replicas, which the reconcilers check.
func (c *cluster) deploymentsAvailable(ctx context.Context) {
	for {
		for _, ns := range []string{"knative-eventing", "knative-serving"} {
			list, err := c.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			for i := range list.Items {
				d := &list.Items[i]
				want := int32(1)
				if d.Spec.Replicas != nil {
					want = *d.Spec.Replicas
				}
				st := d.Status
				if st.ObservedGeneration == d.Generation && st.AvailableReplicas == want && len(st.Conditions) > 0 {
					continue
				}
				d.Status.ObservedGeneration = d.Generation
				d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.UpdatedReplicas = want, want, want, want
				now := metav1.Now()
				d.Status.Conditions = []appsv1.DeploymentCondition{{Type: "Available", Status: corev1.ConditionTrue, Reason: "LocalProcess", LastUpdateTime: now, LastTransitionTime: now}}
				_, _ = c.kube.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// startKnative starts Knative's processes. The webhooks first (the API server calls them
// on every later write), then the control plane, then the data plane.
func (c *cluster) startKnative(s *supervisor, bin, proxy, ip string, p knativePorts) error {
	extra, err := ports(40)
	if err != nil {
		return err
	}
	next := func() string { v := extra[0]; extra = extra[1:]; return strconv.Itoa(v) }
	common := func(pod, ns string) []string {
		return []string{
			"SYSTEM_NAMESPACE=" + ns, "POD_NAME=" + pod,
			"CONFIG_LOGGING_NAME=config-logging", "CONFIG_OBSERVABILITY_NAME=config-observability",
			"METRICS_DOMAIN=knative.dev/eventing",
			"PROFILING_PORT=" + next(), "KNATIVE_HEALTH_PROBES_PORT=" + next(), "METRICS_PROMETHEUS_PORT=" + next(),
			// Cluster DNS names reach the local processes through the forward proxy.
			"HTTP_PROXY=" + proxy, "NO_PROXY=127.0.0.1,localhost," + ip,
		}
	}
	type process struct {
		name, bin, serviceAccount string
		env                       []string
	}
	procs := []process{
		{"eventing-webhook", "eventing-webhook", "eventing-webhook", append(common("eventing-webhook-0", "knative-eventing"),
			"WEBHOOK_NAME=eventing-webhook", "WEBHOOK_PORT="+strconv.Itoa(p.eventingWebhook), "SINK_BINDING_SELECTION_MODE=exclusion")},
		{"serving-webhook", "serving-webhook", "controller", append(common("webhook-0", "knative-serving"),
			"WEBHOOK_NAME=webhook", "WEBHOOK_PORT="+strconv.Itoa(p.servingWebhook))},
		{"imc-controller", "channel_controller", "imc-controller", append(common("imc-controller-0", "knative-eventing"),
			"WEBHOOK_NAME=inmemorychannel-webhook", "WEBHOOK_PORT="+strconv.Itoa(p.imcWebhook),
			"DISPATCHER_IMAGE=local-process")},
		{"eventing-controller", "controller", "eventing-controller", append(common("eventing-controller-0", "knative-eventing"),
			"APISERVER_RA_IMAGE=local-process", "AUTH_PROXY_IMAGE=local-process")},
		{"mt-broker-controller", "mtchannel_broker", "eventing-controller", common("mt-broker-controller-0", "knative-eventing")},
		{"imc-dispatcher", "channel_dispatcher", "imc-dispatcher", append(common("imc-dispatcher-0", "knative-eventing"),
			"CONTAINER_NAME=dispatcher", "MAX_IDLE_CONNS=1000", "MAX_IDLE_CONNS_PER_HOST=1000")},
		{"broker-ingress", "ingress", "mt-broker-ingress", append(common("mt-broker-ingress-0", "knative-eventing"),
			"NAMESPACE=knative-eventing", "CONTAINER_NAME=ingress",
			"INGRESS_PORT="+strconv.Itoa(p.ingress), "INGRESS_PORT_HTTPS="+next())},
		{"broker-filter", "filter", "mt-broker-filter", append(common("mt-broker-filter-0", "knative-eventing"),
			"NAMESPACE=knative-eventing", "CONTAINER_NAME=filter",
			"FILTER_PORT="+strconv.Itoa(p.filter), "FILTER_PORT_HTTPS="+next())},
		{"pingsource-mt-adapter", "mtping", "pingsource-mt-adapter", append(common("pingsource-mt-adapter-0", "knative-eventing"),
			"NAMESPACE=knative-eventing", "K_SINK_TIMEOUT=-1")},
	}
	for _, pr := range procs {
		ns := "knative-eventing"
		if pr.name == "serving-webhook" {
			ns = "knative-serving"
		}
		kubeconfig, err := c.serviceAccountConfig(ns, pr.serviceAccount)
		if err != nil {
			return err
		}
		if _, err := s.start(pr.name, filepath.Join(bin, pr.bin), nil, append(pr.env, "KUBECONFIG="+kubeconfig)); err != nil {
			return err
		}
	}
	return nil
}

// serviceAccount creates a namespace's default ServiceAccount (the controller-manager,
// which would, does not run); the serving webhook's dry-run of a Service's pod needs it.
func (c *cluster) serviceAccount(ctx context.Context, ns string) error {
	_, err := c.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	return err
}

// aggregateClusterRoles does the controller-manager's ClusterRole aggregation (which
// does not run here): Knative's roles such as knative-serving-admin and the
// addressable resolvers are aggregated from labelled ClusterRoles.
func (c *cluster) aggregateClusterRoles(ctx context.Context) error {
	roles, err := c.kube.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range roles.Items {
		r := &roles.Items[i]
		if r.AggregationRule == nil {
			continue
		}
		var rules []rbacv1.PolicyRule
		for _, sel := range r.AggregationRule.ClusterRoleSelectors {
			s, err := metav1.LabelSelectorAsSelector(&sel)
			if err != nil {
				return err
			}
			for _, src := range roles.Items {
				if src.Name != r.Name && s.Matches(labels.Set(src.Labels)) {
					rules = append(rules, src.Rules...)
				}
			}
		}
		r.Rules = rules
		if _, err := c.kube.RbacV1().ClusterRoles().Update(ctx, r, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("aggregate ClusterRole %s: %w", r.Name, err)
		}
	}
	return nil
}
