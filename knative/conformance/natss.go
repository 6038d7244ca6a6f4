package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// The NatsJetStreamChannel: eventing-natss's webhook, JetStream channel controller and
// dispatcher, built by build.sh from the source snapshot into bin/eventing-natss/ (a link
// to eventing-natss-<commit>-<sha256 prefix>/, which also holds the snapshot's
// config/webhook and config/jetstream, the two directories its release publishes as
// eventing-jsm.yaml, and a SNAPSHOT file naming the archive).

const (
	natsVersion = "v2.15.2"
	// dispatcherPort is the channel dispatcher's HTTP port, hard-coded by
	// knative.dev/eventing/pkg/channel's receiver (the dispatcher Service targets it).
	dispatcherPort = 8080
	// dispatcherName is the Deployment and Service the JetStream channel controller creates.
	dispatcherName = "jetstream-ch-dispatcher"
)

// natssRelease is one build of the snapshot: where its binaries and config are, and what it is.
type natssRelease struct {
	dir      string
	snapshot map[string]string // "snapshot", "commit", "sha256" from the SNAPSHOT file
}

func loadNatss(bin string) (*natssRelease, error) {
	dir, err := filepath.EvalSymlinks(filepath.Join(bin, "eventing-natss"))
	if err != nil {
		return nil, fmt.Errorf("eventing-natss is not built: run knative/conformance/build.sh (make conformance does): %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "SNAPSHOT"))
	if err != nil {
		return nil, err
	}
	r := &natssRelease{dir: dir, snapshot: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok {
			r.snapshot[k] = v
		}
	}
	for _, f := range []string{"webhook", "controller", "dispatcher"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, fmt.Errorf("%s is missing: run knative/conformance/build.sh", filepath.Join(dir, f))
		}
	}
	return r, nil
}

// install is eventing-jsm.yaml as the snapshot's hack/release.sh builds it: config/webhook
// then config/jetstream.
func (r *natssRelease) install() ([]string, error) {
	return yamlFiles(filepath.Join(r.dir, "config/webhook"), filepath.Join(r.dir, "config/jetstream"))
}

func (r *natssRelease) String() string {
	return fmt.Sprintf("eventing-natss %s (snapshot %s, sha256 %.12s)", r.snapshot["commit"], r.snapshot["snapshot"], r.snapshot["sha256"])
}

// natsServer is config/10-nats.yaml's StatefulSet as a process: nats-server with
// JetStream, its file store under the run directory (the PVC), the monitoring port for
// the readiness probe and for reading the streams.
type natsServer struct {
	s             *supervisor
	bin, store    string
	port, monitor int
	proc          *proc
}

func startNATS(ctx context.Context, s *supervisor, bin, dir string) (*natsServer, error) {
	p, err := ports(2)
	if err != nil {
		return nil, err
	}
	n := &natsServer{s: s, bin: bin, store: filepath.Join(dir, "nats"), port: p[0], monitor: p[1]}
	return n, n.start(ctx)
}

// start runs nats-server on its store and waits until JetStream is up (the StatefulSet's
// readiness probe: /healthz?js-enabled-only=true).
func (n *natsServer) start(ctx context.Context) error {
	p, err := n.s.start("nats-server", n.bin, []string{
		"--jetstream", "--store_dir", n.store, "--addr", "127.0.0.1", "--port", strconv.Itoa(n.port),
		"--http_port", strconv.Itoa(n.monitor), "--server_name", "conformance",
	}, nil)
	if err != nil {
		return err
	}
	n.proc = p
	return poll(ctx, "nats-server JetStream ready", time.Minute, func() error {
		res, err := http.Get(n.monitorURL("/healthz?js-enabled-only=true"))
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz %d", res.StatusCode)
		}
		return nil
	})
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) monitorURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", n.monitor, path)
}

// stream is what nats-server's /jsz reports of one stream and its consumers.
type stream struct {
	Name   string `json:"name"`
	Config struct {
		Subjects        []string `json:"subjects"`
		MaxAge          int64    `json:"max_age"` // ns
		MaxBytes        int64    `json:"max_bytes"`
		MaxMsgs         int64    `json:"max_msgs"`
		Discard         string   `json:"discard"`
		Storage         string   `json:"storage"`
		DuplicateWindow int64    `json:"duplicate_window"` // ns
	} `json:"config"`
	State struct {
		Messages  uint64 `json:"messages"`
		Bytes     uint64 `json:"bytes"`
		Consumers int    `json:"consumer_count"`
	} `json:"state"`
	Consumers []struct {
		Name   string `json:"name"`
		Config struct {
			AckWait    int64   `json:"ack_wait"` // ns
			MaxDeliver int     `json:"max_deliver"`
			BackOff    []int64 `json:"backoff"`
			AckPolicy  string  `json:"ack_policy"`
		} `json:"config"`
		NumAckPending  int    `json:"num_ack_pending"`
		NumRedelivered int    `json:"num_redelivered"`
		NumPending     uint64 `json:"num_pending"`
	} `json:"consumer_detail"`
}

// streams reads every stream of the server, with its configuration and consumers.
func (n *natsServer) streams(ctx context.Context) ([]stream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.monitorURL("/jsz?streams=true&config=true&consumers=true"), nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var jsz struct {
		Accounts []struct {
			Streams []stream `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(res.Body).Decode(&jsz); err != nil {
		return nil, fmt.Errorf("jsz: %w", err)
	}
	var out []stream
	for _, a := range jsz.Accounts {
		out = append(out, a.Streams...)
	}
	return out, nil
}

// streamOf returns the stream eventing-natss made for a channel (KN_<NS>__<NAME>).
func (n *natsServer) streamOf(ctx context.Context, ns, channel string) (stream, error) {
	want := strings.ToUpper(strings.ReplaceAll("KN_"+ns+"__"+channel, "-", "_"))
	all, err := n.streams(ctx)
	if err != nil {
		return stream{}, err
	}
	var names []string
	for _, st := range all {
		if st.Name == want {
			return st, nil
		}
		names = append(names, st.Name)
	}
	return stream{}, fmt.Errorf("no stream %s (streams: %v)", want, names)
}

// mountConfigMap plays the kubelet's ConfigMap volume: each key of the ConfigMap, as stored
// in the API server, becomes a file of dir.
func (c *cluster) mountConfigMap(ctx context.Context, ns, name, dir string) error {
	cm, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("configmap %s/%s: %w", ns, name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for k, v := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// dispatcher is the JetStream channel dispatcher, run as the pod of the Deployment the
// channel controller created: that Deployment's env, ServiceAccount and config-nats
// volume (a directory the dispatcher is pointed at with CONFIG_NATS_DIR, the build's patch).
type dispatcher struct {
	c   *cluster
	s   *supervisor
	bin string
	env []string

	mu      sync.Mutex
	proc    *proc
	crashes []string // why each exit on its own happened (the log's panic or last line)
}

// playDispatcher waits for the channel controller's dispatcher Deployment and Service,
// starts the dispatcher as its pod and publishes its endpoint.
func (c *cluster) playDispatcher(ctx context.Context, s *supervisor, pe *procEnv, bin, ip, configDir string) (*dispatcher, error) {
	var env []string
	var sa string
	err := poll(ctx, "Deployment knative-eventing/"+dispatcherName+" created by the JetStream channel controller", 2*time.Minute, func() error {
		d, err := c.kube.AppsV1().Deployments("knative-eventing").Get(ctx, dispatcherName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sa = d.Spec.Template.Spec.ServiceAccountName
		env = nil
		for _, ct := range d.Spec.Template.Spec.Containers {
			if ct.Name != "dispatcher" {
				continue
			}
			for _, e := range ct.Env {
				if e.ValueFrom == nil {
					env = append(env, e.Name+"="+e.Value)
				}
			}
		}
		if len(env) == 0 {
			return fmt.Errorf("deployment %s has no dispatcher container env", dispatcherName)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.mountConfigMap(ctx, "knative-eventing", "config-nats", configDir); err != nil {
		return nil, err
	}
	kubeconfig, err := c.serviceAccountConfig("knative-eventing", sa)
	if err != nil {
		return nil, err
	}
	common, err := pe.common(dispatcherName+"-0", "knative-eventing")
	if err != nil {
		return nil, err
	}
	d := &dispatcher{c: c, s: s, bin: bin,
		env: append(append(env, common...), "KUBECONFIG="+kubeconfig, "CONFIG_NATS_DIR="+configDir)}
	if err := d.start(ctx); err != nil {
		return nil, err
	}
	err = poll(ctx, "Service knative-eventing/"+dispatcherName, time.Minute, func() error {
		_, err := c.kube.CoreV1().Services("knative-eventing").Get(ctx, dispatcherName, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, c.endpoints(ctx, ip, map[string]map[string]int{dispatcherName + ".knative-eventing": {"8080": dispatcherPort}})
}

// start runs the dispatcher process and waits until it listens.
func (d *dispatcher) start(ctx context.Context) error {
	if err := d.run(ctx); err != nil {
		return err
	}
	return poll(ctx, "JetStream dispatcher listening on :8080", time.Minute, func() error {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", dispatcherPort))
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil
	})
}

// run starts the process. When it exits on its own the harness does what the kubelet does
// for a Deployment's pod (restartPolicy Always): it notes why and starts it again, after
// the kubelet's first back-off, 10 s.
func (d *dispatcher) run(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.s.startWith("jetstream-dispatcher", d.bin, nil, d.env, func(err error) {
		d.mu.Lock()
		d.crashes = append(d.crashes, crashReason(d.proc.log, err))
		d.mu.Unlock()
		fmt.Printf("   jetstream-dispatcher exited (%v): restarted in 10 s, as the kubelet would\n", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
		if err := d.run(ctx); err != nil && ctx.Err() == nil {
			fmt.Printf("   jetstream-dispatcher: restart failed: %v\n", err)
		}
	})
	if err != nil {
		return err
	}
	d.proc = p
	return nil
}

// crashes returns why the dispatcher exited on its own, in order.
func (d *dispatcher) crashLog() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.crashes)
}

// crashReason is the panic (and the function it happened in), the last fatal log entry,
// or the last line of a log.
func crashReason(log string, err error) string {
	b, _ := os.ReadFile(log)
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var entry struct{ Level, Caller, Msg string }
		if json.Unmarshal([]byte(lines[i]), &entry) == nil && entry.Level == "fatal" {
			return fmt.Sprintf("%v: fatal %q at %s", err, entry.Msg, entry.Caller)
		}
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") {
			at := ""
			for _, f := range lines[i+1:] {
				if strings.HasPrefix(f, "knative.dev/eventing-natss/") {
					at = " in " + strings.TrimPrefix(f[:strings.LastIndex(f, "(")], "knative.dev/eventing-natss/")
					break
				}
			}
			return strings.TrimPrefix(l, "panic: ") + at
		}
	}
	return fmt.Sprintf("%v: %s", err, strings.TrimSpace(tail(log, 1)))
}

// kill ends the dispatcher with SIGKILL, as a node failure would.
func (d *dispatcher) kill() error {
	d.mu.Lock()
	p := d.proc
	d.mu.Unlock()
	return d.s.stop(p, syscall.SIGKILL, 10*time.Second)
}

// streamLimits are the limits config/11-nats-channel.yaml's channel template gives every
// stream eventing-natss creates for the Broker.
type streamLimits struct {
	MaxAge   time.Duration
	MaxBytes int64
	Discard  string // "Old" or "New", as the NatsJetStreamChannel spells it
}

func (l streamLimits) String() string {
	return fmt.Sprintf("max age %s, max bytes %d MiB, discard %s", l.MaxAge, l.MaxBytes>>20, l.Discard)
}

// templateLimits reads the stream limits of the channel template in config/ (the
// nats-jetstream-channel ConfigMap the Broker points to).
func templateLimits(root string) (streamLimits, error) {
	file := filepath.Join(root, "config/11-nats-channel.yaml")
	objs, err := readObjects(file)
	if err != nil {
		return streamLimits{}, err
	}
	for _, u := range objs {
		if u.GetKind() != "ConfigMap" || u.GetName() != "nats-jetstream-channel" {
			continue
		}
		tmpl, _, _ := unstructured.NestedString(u.Object, "data", "channel-template-spec")
		var t struct {
			Kind string `json:"kind"`
			Spec struct {
				Stream struct {
					Config struct {
						MaxAge   string `json:"maxAge"`
						MaxBytes int64  `json:"maxBytes"`
						Discard  string `json:"discard"`
					} `json:"config"`
				} `json:"stream"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(tmpl), &t); err != nil {
			return streamLimits{}, fmt.Errorf("%s: channel-template-spec: %w", file, err)
		}
		if t.Kind != "NatsJetStreamChannel" {
			return streamLimits{}, fmt.Errorf("%s: the channel template is a %q, want NatsJetStreamChannel", file, t.Kind)
		}
		c := t.Spec.Stream.Config
		age, err := time.ParseDuration(c.MaxAge)
		if err != nil || age <= 0 || c.MaxBytes <= 0 {
			return streamLimits{}, fmt.Errorf("%s: spec.stream.config needs maxAge and maxBytes (got %q, %d)", file, c.MaxAge, c.MaxBytes)
		}
		return streamLimits{MaxAge: age, MaxBytes: c.MaxBytes, Discard: c.Discard}, nil
	}
	return streamLimits{}, fmt.Errorf("%s: no ConfigMap nats-jetstream-channel", file)
}

// channelInfo names the channel that carries the Broker's events.
type channelInfo struct {
	kind, namespace, name, stream string
	limits                        streamLimits
}

// checkChannel finds the Broker's channel (its status annotations), checks it is a Ready
// NatsJetStreamChannel, and that the JetStream stream eventing-natss created for it has
// the limits of config/'s template, as nats-server reports them.
func (c *cluster) checkChannel(ctx context.Context, root string, nats *natsServer) (channelInfo, error) {
	want, err := templateLimits(root)
	if err != nil {
		return channelInfo{}, err
	}
	b, err := c.dyn.Resource(schema.GroupVersionResource{Group: "eventing.knative.dev", Version: "v1", Resource: "brokers"}).
		Namespace("tickit").Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		return channelInfo{}, err
	}
	ann, _, _ := unstructured.NestedStringMap(b.Object, "status", "annotations")
	ch := channelInfo{kind: ann["knative.dev/channelKind"], namespace: "tickit", name: ann["knative.dev/channelName"]}
	if ch.kind != "NatsJetStreamChannel" || ch.name == "" {
		return ch, fmt.Errorf("broker tickit/default: channel %q %q, want a NatsJetStreamChannel (status annotations %v)", ch.kind, ch.name, ann)
	}
	u, err := c.dyn.Resource(schema.GroupVersionResource{Group: "messaging.knative.dev", Version: "v1alpha1", Resource: "natsjetstreamchannels"}).
		Namespace(ch.namespace).Get(ctx, ch.name, metav1.GetOptions{})
	if err != nil {
		return ch, err
	}
	if err := condition(u, "Ready"); err != nil {
		return ch, err
	}
	st, err := nats.streamOf(ctx, ch.namespace, ch.name)
	if err != nil {
		return ch, err
	}
	ch.stream = st.Name
	got := streamLimits{MaxAge: time.Duration(st.Config.MaxAge), MaxBytes: st.Config.MaxBytes, Discard: st.Config.Discard}
	ch.limits = got
	if got.MaxAge != want.MaxAge || got.MaxBytes != want.MaxBytes || !strings.EqualFold(got.Discard, want.Discard) {
		return ch, fmt.Errorf("stream %s has %s; config/11-nats-channel.yaml says %s", st.Name, got, want)
	}
	addr, _, _ := unstructured.NestedString(u.Object, "status", "address", "url")
	fmt.Printf("   %s %s/%s Ready at %s; stream %s: %s, %s storage, subjects %v, %d consumers (one per Trigger)\n",
		ch.kind, ch.namespace, ch.name, addr, st.Name, got, st.Config.Storage, st.Config.Subjects, st.State.Consumers)
	for _, cs := range st.Consumers {
		fmt.Printf("   consumer %s: ack wait %s, max deliver %d, backoff %v\n", cs.Name, time.Duration(cs.Config.AckWait), cs.Config.MaxDeliver, cs.Config.BackOff)
		break
	}
	return ch, nil
}
