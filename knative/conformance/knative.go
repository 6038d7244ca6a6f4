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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
// RBAC, ConfigMaps, webhook configurations and Services of Eventing core and the MT
// channel-based Broker, and of Serving core. The Deployments are applied too (the
// reconcilers look at them), but nothing runs them: the processes below stand in for
// their pods. The channel is eventing-natss's (natssRelease.install).
func knativeInstall(eventing, serving string) ([]string, error) {
	files, err := yamlFiles(
		filepath.Join(eventing, "config/core"),
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

// knativePorts are the host ports of one run's Knative and eventing-natss processes.
type knativePorts struct {
	eventingWebhook, natsWebhook, servingWebhook, ingress, filter int
}

// backends maps "<service>.<namespace>" to the process behind it: target port (a number or
// a port name, as the Service's targetPort says) to local port.
func (p knativePorts) backends() map[string]map[string]int {
	return map[string]map[string]int{
		"eventing-webhook.knative-eventing": {"8443": p.eventingWebhook},
		"nats-webhook.knative-eventing":     {"https-webhook": p.natsWebhook},
		"webhook.knative-serving":           {"8443": p.servingWebhook},
		"broker-ingress.knative-eventing":   {"8080": p.ingress},
		"broker-filter.knative-eventing":    {"8080": p.filter},
	}
}

// endpoints writes an EndpointSlice for each Service whose pods are local processes
// (the API server, the Broker reconciler and the channel controller read them): the
// address is the host's (the API server refuses loopback), the ports the processes'.
func (c *cluster) endpoints(ctx context.Context, ip string, backends map[string]map[string]int) error {
	for key, targets := range backends {
		name, ns, _ := strings.Cut(key, ".")
		svc, err := c.kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("service %s: %w", key, err)
		}
		var slicePorts []discoveryv1.EndpointPort
		for _, sp := range svc.Spec.Ports {
			local, ok := targets[sp.TargetPort.String()]
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
		if _, err := c.kube.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
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

// procEnv is the environment every Knative process gets as its pod would, plus what one
// host needs: its own probe, profiling and metrics ports (all pods use the same ones), and
// the forward proxy for cluster DNS names.
type procEnv struct {
	proxy, ip string
}

func (e *procEnv) common(pod, ns string) ([]string, error) {
	p, err := ports(3)
	if err != nil {
		return nil, err
	}
	return []string{
		"SYSTEM_NAMESPACE=" + ns, "POD_NAME=" + pod,
		"CONFIG_LOGGING_NAME=config-logging", "CONFIG_OBSERVABILITY_NAME=config-observability",
		"METRICS_DOMAIN=knative.dev/eventing",
		"PROFILING_PORT=" + strconv.Itoa(p[0]), "KNATIVE_HEALTH_PROBES_PORT=" + strconv.Itoa(p[1]), "METRICS_PROMETHEUS_PORT=" + strconv.Itoa(p[2]),
		// Cluster DNS names reach the local processes through the forward proxy.
		"HTTP_PROXY=" + e.proxy, "NO_PROXY=127.0.0.1,localhost," + e.ip,
	}, nil
}

// startKnative starts Knative's and eventing-natss's processes. The webhooks first (the
// API server calls them on every later write), then the control plane, then the data
// plane. The JetStream dispatcher comes later (playDispatcher): the channel controller
// creates its Deployment.
func (c *cluster) startKnative(s *supervisor, pe *procEnv, bin string, natss *natssRelease, p knativePorts) error {
	extra, err := ports(2)
	if err != nil {
		return err
	}
	type process struct {
		name, bin, ns, pod, serviceAccount string
		env                                []string
	}
	nb := func(name string) string { return filepath.Join(natss.dir, name) }
	kb := func(name string) string { return filepath.Join(bin, name) }
	procs := []process{
		{"eventing-webhook", kb("eventing-webhook"), "knative-eventing", "eventing-webhook-0", "eventing-webhook", []string{
			"WEBHOOK_NAME=eventing-webhook", "WEBHOOK_PORT=" + strconv.Itoa(p.eventingWebhook), "SINK_BINDING_SELECTION_MODE=exclusion"}},
		{"nats-webhook", nb("webhook"), "knative-eventing", "nats-webhook-0", "nats-webhook", []string{
			"WEBHOOK_NAME=nats-webhook", "WEBHOOK_PORT=" + strconv.Itoa(p.natsWebhook), "METRICS_DOMAIN=knative.dev/channels"}},
		{"serving-webhook", kb("serving-webhook"), "knative-serving", "webhook-0", "controller", []string{
			"WEBHOOK_NAME=webhook", "WEBHOOK_PORT=" + strconv.Itoa(p.servingWebhook)}},
		{"eventing-controller", kb("controller"), "knative-eventing", "eventing-controller-0", "eventing-controller", []string{
			"APISERVER_RA_IMAGE=local-process", "AUTH_PROXY_IMAGE=local-process"}},
		{"mt-broker-controller", kb("mtchannel_broker"), "knative-eventing", "mt-broker-controller-0", "eventing-controller", nil},
		// eventing-natss's 501-jsm-controller.yaml: the dispatcher "image" is what its
		// Deployment will name; the harness runs the dispatcher binary as that pod.
		{"jetstream-controller", nb("controller"), "knative-eventing", "jetstream-ch-controller-0", "jetstream-ch-controller", []string{
			"DISPATCHER_IMAGE=local-process:eventing-natss/cmd/jetstream/dispatcher", "DISPATCHER_SERVICE_ACCOUNT=jetstream-ch-dispatcher"}},
		{"broker-ingress", kb("ingress"), "knative-eventing", "mt-broker-ingress-0", "mt-broker-ingress", []string{
			"NAMESPACE=knative-eventing", "CONTAINER_NAME=ingress",
			"INGRESS_PORT=" + strconv.Itoa(p.ingress), "INGRESS_PORT_HTTPS=" + strconv.Itoa(extra[0])}},
		{"broker-filter", kb("filter"), "knative-eventing", "mt-broker-filter-0", "mt-broker-filter", []string{
			"NAMESPACE=knative-eventing", "CONTAINER_NAME=filter",
			"FILTER_PORT=" + strconv.Itoa(p.filter), "FILTER_PORT_HTTPS=" + strconv.Itoa(extra[1])}},
		{"pingsource-mt-adapter", kb("mtping"), "knative-eventing", "pingsource-mt-adapter-0", "pingsource-mt-adapter", []string{
			"NAMESPACE=knative-eventing", "K_SINK_TIMEOUT=-1"}},
	}
	for _, pr := range procs {
		kubeconfig, err := c.serviceAccountConfig(pr.ns, pr.serviceAccount)
		if err != nil {
			return err
		}
		common, err := pe.common(pr.pod, pr.ns)
		if err != nil {
			return err
		}
		// The process's own env last: METRICS_DOMAIN of the NATS webhook wins over the common one.
		if _, err := s.start(pr.name, pr.bin, nil, append(append(common, pr.env...), "KUBECONFIG="+kubeconfig)); err != nil {
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
