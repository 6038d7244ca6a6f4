package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	servicesGVR = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}
	sinkBindGVR = schema.GroupVersionResource{Group: "sources.knative.dev", Version: "v1", Resource: "sinkbindings"}
)

// buildFunctions builds every function the manifests name, from the workspace root (the
// main module's go.work), into dir.
func buildFunctions(root, dir string, names []string) error {
	args := []string{"build", "-o", dir + "/"}
	for _, n := range names {
		args = append(args, "./functions/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=") // the workspace's, not this module's GOWORK=off
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build functions: %w", err)
	}
	return nil
}

// functionEnv is a function's environment as Serving would give its container: the
// Service's env (as stored, so after the SinkBinding injected K_SINK), secretKeyRefs read
// from the API server's Secrets. Data stores become local ones: overrides replaces
// MONGO_URL and REDIS_URL (and adds STRIPE_API_BASE), saying so.
func (c *cluster) functionEnv(ctx context.Context, svc *unstructured.Unstructured, overrides map[string]string) ([]string, error) {
	containers, _, _ := unstructured.NestedSlice(svc.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		return nil, fmt.Errorf("service %s: %d containers, want 1", svc.GetName(), len(containers))
	}
	env, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
	var out []string
	seen := map[string]bool{}
	for _, e := range env {
		m := e.(map[string]any)
		name, _ := m["name"].(string)
		value, _ := m["value"].(string)
		if ref, ok, _ := unstructured.NestedMap(m, "valueFrom", "secretKeyRef"); ok {
			sec, err := c.kube.CoreV1().Secrets(svc.GetNamespace()).Get(ctx, ref["name"].(string), metav1.GetOptions{})
			optional, _ := ref["optional"].(bool)
			switch {
			case err != nil && !(optional && isNotFound(err)):
				return nil, fmt.Errorf("service %s env %s: %w", svc.GetName(), name, err)
			case err == nil:
				value = string(sec.Data[ref["key"].(string)])
			}
		}
		if v, ok := overrides[name]; ok {
			value = v
		}
		seen[name] = true
		out = append(out, name+"="+value)
	}
	for k, v := range overrides {
		if !seen[k] && k == "STRIPE_API_BASE" && seen["STRIPE_KEY"] {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}

// serviceReady plays Serving's part for one Knative Service: its status says Ready, with
// the cluster-local address a real Route would publish, so that Triggers, SinkBindings
// and PingSources resolve it exactly as in a cluster.
func (c *cluster) serviceReady(ctx context.Context, name, ns string) error {
	return poll(ctx, "status of service "+name, 30*time.Second, func() error {
		u, err := c.dyn.Resource(servicesGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		url := fmt.Sprintf("http://%s.%s.svc.cluster.local", name, ns)
		now := time.Now().UTC().Format(time.RFC3339)
		cond := func(t string) map[string]any {
			return map[string]any{"type": t, "status": "True", "lastTransitionTime": now, "reason": "LocalProcess",
				"message": "run by make conformance as a local process (no pods here)"}
		}
		rev := name + "-00001"
		u.Object["status"] = map[string]any{
			"observedGeneration":        u.GetGeneration(),
			"conditions":                []any{cond("ConfigurationsReady"), cond("Ready"), cond("RoutesReady")},
			"url":                       url,
			"address":                   map[string]any{"url": url},
			"latestCreatedRevisionName": rev,
			"latestReadyRevisionName":   rev,
			"traffic":                   []any{map[string]any{"revisionName": rev, "latestRevision": true, "percent": int64(100)}},
		}
		_, err = c.dyn.Resource(servicesGVR).Namespace(ns).UpdateStatus(ctx, u, metav1.UpdateOptions{})
		return err
	})
}

// startFunction runs one function as Serving would run its container, on a free port.
func startFunction(ctx context.Context, s *supervisor, bin, name string, env []string) (int, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	env = append(env, "PORT="+strconv.Itoa(port))
	if _, err := s.start("fn-"+name, filepath.Join(bin, name), nil, env); err != nil {
		return 0, err
	}
	return port, poll(ctx, name+" healthy", 30*time.Second, func() error {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
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
