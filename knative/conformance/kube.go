package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const fieldManager = "tickit-conformance"

// cluster is etcd plus kube-apiserver, and the clients of the run.
type cluster struct {
	kubeconfig string
	server     string
	certs      *pki
	rest       *rest.Config
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper
}

func startEtcd(ctx context.Context, s *supervisor, bin, dir string) (string, error) {
	p, err := ports(2)
	if err != nil {
		return "", err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", p[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", p[1])
	_, err = s.start("etcd", bin, []string{
		"--name=conformance", "--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=conformance=" + peer,
		"--unsafe-no-fsync", "--log-level=warn",
	}, nil)
	if err != nil {
		return "", err
	}
	return client, poll(ctx, "etcd healthy", time.Minute, func() error {
		res, err := http.Get(client + "/health")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if !bytes.Contains(b, []byte(`"true"`)) {
			return fmt.Errorf("health %s", b)
		}
		return nil
	})
}

func startAPIServer(ctx context.Context, s *supervisor, bin, dir, etcd, ip string, certs *pki) (*cluster, error) {
	p, err := freePort()
	if err != nil {
		return nil, err
	}
	crt, key, err := certs.issue("apiserver", "kube-apiserver", nil,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(ip), net.ParseIP("10.96.0.1")}, false)
	if err != nil {
		return nil, err
	}
	saPub, saKey, err := certs.serviceAccountKey()
	if err != nil {
		return nil, err
	}
	adminCrt, adminKey, err := certs.issue("admin", "admin", []string{"system:masters"}, nil, nil, true)
	if err != nil {
		return nil, err
	}
	_, err = s.start("kube-apiserver", bin, []string{
		"--etcd-servers=" + etcd,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(p), "--advertise-address=" + ip,
		"--cert-dir=" + filepath.Join(dir, "apiserver"),
		"--tls-cert-file=" + crt, "--tls-private-key-file=" + key, "--client-ca-file=" + certs.CAFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		// Resolve webhook Services to their endpoints (the local processes), not to a ClusterIP.
		"--enable-aggregator-routing=true",
		"--profiling=false", "--v=0",
	}, nil)
	if err != nil {
		return nil, err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", p)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["conformance"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: certs.CAFile}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: adminCrt, ClientKey: adminKey}
	kc.Contexts["conformance"] = &clientcmdapi.Context{Cluster: "conformance", AuthInfo: "admin"}
	kc.CurrentContext = "conformance"
	c := &cluster{kubeconfig: filepath.Join(dir, "kubeconfig"), server: server, certs: certs}
	if err := clientcmd.WriteToFile(*kc, c.kubeconfig); err != nil {
		return nil, err
	}
	if c.rest, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig); err != nil {
		return nil, err
	}
	c.rest.QPS, c.rest.Burst = 200, 400
	c.rest.WarningHandler = rest.NoWarnings{}
	if c.kube, err = kubernetes.NewForConfig(c.rest); err != nil {
		return nil, err
	}
	if c.dyn, err = dynamic.NewForConfig(c.rest); err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.rest)
	if err != nil {
		return nil, err
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return c, poll(ctx, "kube-apiserver ready", 2*time.Minute, func() error {
		b, err := c.kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%v %s", err, b)
		}
		return nil
	})
}

// serviceAccountConfig writes a kubeconfig whose client certificate names a
// ServiceAccount, as its token would in a pod: the user
// system:serviceaccount:<ns>:<name> in the ServiceAccount groups. Each Knative process
// gets its Deployment's ServiceAccount, so RBAC (Knative's own roles) applies, and so
// do the webhooks' checks of who changed what.
func (c *cluster) serviceAccountConfig(ns, name string) (string, error) {
	user := "system:serviceaccount:" + ns + ":" + name
	crt, key, err := c.certs.issue("sa-"+ns+"-"+name, user, []string{"system:serviceaccounts", "system:serviceaccounts:" + ns}, nil, nil, true)
	if err != nil {
		return "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["conformance"] = &clientcmdapi.Cluster{Server: c.server, CertificateAuthority: c.certs.CAFile}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: crt, ClientKey: key}
	kc.Contexts["conformance"] = &clientcmdapi.Context{Cluster: "conformance", AuthInfo: name}
	kc.CurrentContext = "conformance"
	path := filepath.Join(c.certs.dir, "kubeconfig-"+ns+"-"+name)
	return path, clientcmd.WriteToFile(*kc, path)
}

// readObjects reads every YAML document of the files (in order), skipping empty ones.
func readObjects(files ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for i := 0; ; i++ {
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s document %d: %w", f, i, err)
			}
			if len(m) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			u.SetAnnotations(withAnnotation(u.GetAnnotations(), "tickit.dev/source", fmt.Sprintf("%s#%d", f, i)))
			out = append(out, u)
		}
	}
	return out, nil
}

func withAnnotation(a map[string]string, k, v string) map[string]string {
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	return a
}

// yamlFiles lists the *.yaml files under dirs, recursively, in lexical order per dir.
func yamlFiles(dirs ...string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				out = append(out, path)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *cluster) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), nil
	}
	return c.dyn.Resource(m.Resource), nil
}

// apply server-side applies one object, as kubectl apply --server-side --force-conflicts
// (whose field validation is Strict: an unknown field is an error, not silently dropped).
func (c *cluster) apply(ctx context.Context, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	r, err := c.resource(u)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	return r.Patch(ctx, u.GetName(), types.ApplyPatchType, b, metav1.PatchOptions{
		FieldManager: fieldManager, Force: ptrTo(true), FieldValidation: "Strict"})
}

// applyAll applies objects in order: Namespaces and CRDs first (waiting until every CRD
// is established), then the rest. Errors name the object and its source file.
func (c *cluster) applyAll(ctx context.Context, objs []*unstructured.Unstructured) error {
	first := func(u *unstructured.Unstructured) bool {
		return u.GetKind() == "Namespace" || u.GetKind() == "CustomResourceDefinition"
	}
	var crds []string
	for _, u := range objs {
		if !first(u) {
			continue
		}
		if _, err := c.apply(ctx, u); err != nil {
			return fmt.Errorf("apply %s: %w", describe(u), err)
		}
		if u.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, u.GetName())
		}
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, name := range crds {
		err := poll(ctx, "CRD "+name+" established", time.Minute, func() error {
			u, err := c.dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			return condition(u, "Established")
		})
		if err != nil {
			return err
		}
	}
	c.mapper.Reset()
	for _, u := range objs {
		if first(u) {
			continue
		}
		if _, err := c.apply(ctx, u); err != nil {
			return fmt.Errorf("apply %s: %w", describe(u), err)
		}
	}
	return nil
}

func describe(u *unstructured.Unstructured) string {
	s := u.GetKind() + " " + u.GetName()
	if ns := u.GetNamespace(); ns != "" {
		s = u.GetKind() + " " + ns + "/" + u.GetName()
	}
	if src := u.GetAnnotations()["tickit.dev/source"]; src != "" {
		s += " (" + src + ")"
	}
	return s
}

// condition returns nil when status.conditions has typ with status True, else why not.
func condition(u *unstructured.Unstructured, typ string) error {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			if m["status"] == "True" {
				return nil
			}
			return fmt.Errorf("%s %s: %s=%v %v: %v", u.GetKind(), u.GetName(), typ, m["status"], m["reason"], m["message"])
		}
	}
	return fmt.Errorf("%s %s: no %s condition yet", u.GetKind(), u.GetName(), typ)
}

// isNotFound reports a missing object.
func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
