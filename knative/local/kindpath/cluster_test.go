package kindpath

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// standInBinary is the program the stand-ins run: this test binary, or under -race a copy
// built without the race detector (its start-up, paid by every one of a run's ~100 calls,
// takes about a second on this machine against a few milliseconds without it).
var standInBinary string

// TestMain makes this binary a stand-in when it runs under a tool's name (see standIns).
func TestMain(m *testing.M) {
	if tool := filepath.Base(os.Args[0]); slices.Contains(standIns, tool) && os.Getenv("STANDIN_LOG") != "" {
		os.Exit(standIn(tool, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	standInBinary = self
	if raceEnabled {
		dir, err := os.MkdirTemp("", "kindpath-standin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		standInBinary = filepath.Join(dir, "standin")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "go", "test", "-c", "-o", standInBinary, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building the stand-ins without -race: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// repoRoot is the repository root (the directory holding go.work).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err != nil {
		t.Fatalf("repository root not found from %s: %v", dir, err)
	}
	return dir
}

// copied is what hack/cluster.sh reads from the repository; the script runs on a copy, so
// that nothing it writes (.tickit/cluster) lands in the real tree.
var copied = []string{"hack", "config", "knative/eventing", "knative/services", "kind-config.yaml", "go.work",
	"functions/payments/testdata/stripe-fixtures.json"}

// world is one copy of the repository with the stand-ins on PATH; runs in one world share
// the stand-ins' cluster state (the Secrets).
type world struct {
	t                     *testing.T
	repo, bin, state, log string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, repo: t.TempDir(), bin: t.TempDir(), state: t.TempDir()}
	w.log = filepath.Join(t.TempDir(), "calls.jsonl")
	src := repoRoot(t)
	for _, p := range copied {
		if err := copyTree(filepath.Join(src, p), filepath.Join(w.repo, p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range standIns {
		if err := os.Symlink(standInBinary, filepath.Join(w.bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// result is one run of the script: the calls it made (in order), its output and exit error.
type result struct {
	calls          []call
	stdout, stderr string
	err            error
}

// runDeadline bounds one run of the script: each of its ~100 stand-in calls starts a process,
// which takes over a second on a loaded 2-core machine.
const runDeadline = 5 * time.Minute

// run runs hack/cluster.sh with args and env (NAME=VALUE) in the world, within runDeadline.
func (w *world) run(env []string, args ...string) result {
	w.t.Helper()
	return w.bash(env, append([]string{filepath.Join(w.repo, "hack", "cluster.sh")}, args...)...)
}

// bash runs bash with args in the world's repository, within runDeadline.
func (w *world) bash(env []string, args ...string) result {
	w.t.Helper()
	if err := os.Remove(w.log); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Dir = w.repo
	cmd.Env = append([]string{
		"PATH=" + w.bin + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + w.state,
		"STANDIN_LOG=" + w.log, "STANDIN_STATE=" + w.state,
	}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		w.t.Fatalf("bash %v did not finish within %v; stderr:\n%s", args, runDeadline, stderr.String())
	}
	calls, lerr := readLog(w.log)
	if lerr != nil {
		w.t.Fatal(lerr)
	}
	return result{calls, stdout.String(), stderr.String(), err}
}

// mustRun is run that fails the test when the script fails.
func (w *world) mustRun(env []string, args ...string) result {
	w.t.Helper()
	r := w.run(env, args...)
	if r.err != nil {
		w.t.Fatalf("hack/cluster.sh %v: %v\nstderr:\n%s\nstdout:\n%s", args, r.err, r.stderr, r.stdout)
	}
	return r
}

// first is the index of the first call that matches, or -1.
func (r result) first(match func(call) bool) int {
	return slices.IndexFunc(r.calls, match)
}

// last is the index of the last call that matches, or -1.
func (r result) last(match func(call) bool) int {
	for i := len(r.calls) - 1; i >= 0; i-- {
		if match(r.calls[i]) {
			return i
		}
	}
	return -1
}

func tool(name string, args ...string) func(call) bool {
	return func(c call) bool { return c.Tool == name && c.has(args...) }
}

// appliesService matches a kubectl apply whose input holds a Knative Service.
func appliesService(c call) bool {
	return c.Tool == "kubectl" && c.has("apply") && strings.Contains(c.Stdin, "apiVersion: serving.knative.dev/v1") &&
		strings.Contains(c.Stdin, "kind: Service")
}

// The releases the script installs, by the names their releases publish them under
// (serving and eventing: hack/generate-yamls.sh; net-kourier and eventing-natss: hack/release.sh).
var releaseFiles = []string{
	"https://github.com/knative/serving/releases/download/knative-v1.23.0/serving-crds.yaml",
	"https://github.com/knative/serving/releases/download/knative-v1.23.0/serving-core.yaml",
	"https://github.com/knative-extensions/net-kourier/releases/download/knative-v1.23.0/kourier.yaml",
	"https://github.com/knative/eventing/releases/download/knative-v1.23.0/eventing-crds.yaml",
	"https://github.com/knative/eventing/releases/download/knative-v1.23.0/eventing-core.yaml",
	"https://github.com/knative/eventing/releases/download/knative-v1.23.0/mt-channel-broker.yaml",
	"https://github.com/knative-extensions/eventing-natss/releases/download/knative-v1.22.0/eventing-jsm.yaml",
}

func TestCreate(t *testing.T) {
	t.Parallel()
	// Act: the user's current kubectl context is "work".
	r := newWorld(t).mustRun([]string{"STANDIN_CONTEXT=work"}, "create")

	t.Run("checks every release file before creating anything", func(t *testing.T) {
		var fetched []string
		for _, c := range r.calls {
			if c.Tool == "curl" {
				fetched = append(fetched, c.Args[len(c.Args)-1])
			}
		}
		if !slices.Equal(fetched, releaseFiles) {
			t.Errorf("fetched %v\nwant %v", fetched, releaseFiles)
		}
		lastFetch, created := r.last(tool("curl")), r.first(tool("kind", "create", "cluster"))
		firstApply := r.first(tool("kubectl", "apply"))
		if created < 0 || lastFetch > created || firstApply < created {
			t.Errorf("last fetch at call %d, kind create cluster at %d, first apply at %d: want every fetch first", lastFetch, created, firstApply)
		}
		// The applies read the downloaded files, not the network.
		for _, c := range r.calls {
			if c.Tool == "kubectl" && c.has("apply") && strings.Contains(strings.Join(c.Args, " "), "https://") {
				t.Errorf("applies from the network: %v", c)
			}
		}
	})

	t.Run("leaves the user's kubectl context alone", func(t *testing.T) {
		// kind create cluster makes kind-tickit current; the script gives "work" back.
		created, restored := r.first(tool("kind", "create", "cluster")), r.first(tool("kubectl", "config", "use-context", "work"))
		if created < 0 || restored != created+1 {
			t.Errorf("kind create cluster at call %d, use-context work at %d: want it right after", created, restored)
		}
		noGlobalContextSwitch(t, r, "work")
	})
}

func TestCreateStopsWithOneLineNamingAMissingReleaseFile(t *testing.T) {
	t.Parallel()
	// Arrange
	missing := releaseFiles[len(releaseFiles)-1]

	// Act
	r := newWorld(t).run([]string{"STANDIN_MISSING=" + missing}, "create")

	// Assert
	if r.err == nil {
		t.Fatal("create succeeded without a release file")
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], missing) || !strings.Contains(lines[0], "404") {
		t.Errorf("stderr %q: want one line naming %s and its 404", r.stderr, missing)
	}
	for _, c := range r.calls {
		if (c.Tool == "kind" && c.has("create")) || (c.Tool == "kubectl" && !c.has("config")) {
			t.Errorf("called %v after a missing release file", c)
		}
	}
}

func TestCreateRefusesAKindTooOldForTheNodeImage(t *testing.T) {
	t.Parallel()
	r := newWorld(t).run([]string{"STANDIN_KIND_VERSION=kind v0.29.0 go1.24.2 linux/amd64"}, "create")
	if r.err == nil || !strings.Contains(r.stderr, "v0.33.0") {
		t.Errorf("kind v0.29.0: err %v, stderr %q; want a stop naming v0.33.0", r.err, r.stderr)
	}
	if r.first(tool("kind", "create")) >= 0 {
		t.Error("created a cluster with an old kind")
	}
}

// noGlobalContextSwitch checks that every kubectl call names the tickit context, and that the
// only context change is giving the user's own back.
func noGlobalContextSwitch(t *testing.T, r result, users string) {
	t.Helper()
	for _, c := range r.calls {
		switch {
		case c.Tool == "kubectl" && c.has("config", "current-context"):
		case c.Tool == "kubectl" && c.has("config", "use-context"):
			if !c.has(users) {
				t.Errorf("switches the current context: %v", c)
			}
		case c.Tool == "kubectl" && (len(c.Args) < 2 || c.Args[0] != "--context" || c.Args[1] != "kind-tickit"):
			t.Errorf("kubectl without --context kind-tickit first: %v", c)
		case c.Tool == "kn" && !c.has("--context", "kind-tickit"):
			t.Errorf("kn without --context kind-tickit: %v", c)
		}
	}
}

// deploy runs make deploy's script in w with env added to the stand-ins' settings.
func deploy(w *world, env ...string) result {
	w.t.Helper()
	return w.mustRun(append([]string{"STANDIN_ARCH=arm64", "GOOS=linux", "GOARCH=amd64"}, env...), "deploy")
}

// TestDeploy runs make deploy three times on one cluster: without Stripe or SendGrid keys, with
// a new JWT_KEY, then with a STRIPE_KEY. The user's shell exports GOOS/GOARCH for amd64 and
// the node is arm64.
func TestDeploy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	first := deploy(w, "JWT_KEY=one")
	firstStripe, _ := readSecret(w.state, "tickit-stripe")
	newJWT := deploy(w, "JWT_KEY=two")
	realStripe := deploy(w, "JWT_KEY=two", "STRIPE_KEY=sk_test_real")
	realStripeSecret, _ := readSecret(w.state, "tickit-stripe")

	t.Run("builds the UI, then every image for the node's platform", func(t *testing.T) {
		r := first
		ui, firstKo := r.first(tool("make", "ui")), r.first(tool("ko"))
		if ui < 0 || firstKo < 0 || ui > firstKo {
			t.Errorf("make ui at call %d, first ko at %d: the UI the client embeds must be built first", ui, firstKo)
		}
		built := map[string]bool{}
		for _, c := range r.calls {
			if c.Tool != "ko" {
				continue
			}
			built[filepath.Base(valueOf(c.Args, "-f"))] = true
			if c.Env["KO_DEFAULTPLATFORMS"] != "linux/arm64" || c.Env["KO_DOCKER_REPO"] != "kind.local" || c.Env["KIND_CLUSTER_NAME"] != "tickit" {
				t.Errorf("ko ran with %v: want the node's platform linux/arm64, kind.local, cluster tickit", c.Env)
			}
			for _, v := range []string{"GOOS", "GOARCH", "GOARM"} {
				if _, set := c.Env[v]; set {
					t.Errorf("ko ran with %s set (ko refuses it beside KO_DEFAULTPLATFORMS): %v", v, c.Env)
				}
			}
		}
		services, _ := filepath.Glob(filepath.Join(repoRoot(t), "knative", "services", "*.yaml"))
		for _, f := range append(services, "20-dead-letters.yaml", "stripe-mock.yaml") {
			if !built[filepath.Base(f)] {
				t.Errorf("ko did not build %s (built %v)", filepath.Base(f), built)
			}
		}
		noGlobalContextSwitch(t, r, "none")
	})

	t.Run("has the Broker and the SinkBinding Ready before any Service, the Triggers last", func(t *testing.T) {
		r := first
		brokerReady := r.first(tool("kubectl", "wait", "broker", "default", "--for=condition=Ready"))
		bindingReady := r.first(tool("kubectl", "wait", "sinkbinding", "publishers", "--for=condition=Ready"))
		firstService, lastService := r.first(appliesService), r.last(appliesService)
		servicesReady := r.first(tool("kubectl", "wait", "ksvc", "--all", "--for=condition=Ready"))
		triggers := r.first(func(c call) bool {
			return c.Tool == "kubectl" && c.has("apply") && slices.ContainsFunc(c.Args, func(a string) bool { return strings.Contains(a, "triggers") })
		})
		if brokerReady < 0 || bindingReady < brokerReady || firstService < bindingReady {
			t.Errorf("Broker Ready at call %d, SinkBinding Ready at %d, first Service applied at %d: want that order", brokerReady, bindingReady, firstService)
		}
		if servicesReady < lastService || triggers < servicesReady {
			t.Errorf("last Service applied at %d, Services Ready at %d, Triggers applied at %d: want that order", lastService, servicesReady, triggers)
		}
	})

	t.Run("a changed Secret changes the templates of exactly the Services that read it", func(t *testing.T) {
		before := templates(t, first)
		if len(before) != 8 {
			t.Fatalf("applied %v: want 8 Services (7 functions and dead-letters)", before)
		}
		// A new JWT_KEY, the other Secrets the same: the Services that do not read tickit-jwt
		// keep their template (no new revision).
		after := templates(t, newJWT)
		readsJWT := map[string]bool{"auth": true, "tickets": true, "orders": true, "payments": true}
		for name, sum := range before {
			if (after[name] != sum) != readsJWT[name] {
				t.Errorf("after a new JWT_KEY, %s's template changed: %v; it reads tickit-jwt: %v", name, after[name] != sum, readsJWT[name])
			}
		}
		// STRIPE_KEY given: tickit-stripe changes, read by payments and client.
		jwt, stripe := templates(t, newJWT), templates(t, realStripe)
		for name, sum := range jwt {
			if reads := name == "payments" || name == "client"; (stripe[name] != sum) != reads {
				t.Errorf("after a STRIPE_KEY, %s's template changed: %v; it reads tickit-stripe: %v", name, stripe[name] != sum, reads)
			}
		}
	})

	t.Run("without keys payments uses stripe-mock in the cluster, with STRIPE_KEY Stripe", func(t *testing.T) {
		if got := decode(firstStripe["STRIPE_API_BASE"]); got != "http://stripe-mock.tickit.svc.cluster.local:12111" || decode(firstStripe["STRIPE_KEY"]) == "" {
			t.Errorf("without STRIPE_KEY the Secret holds %v: want a test key and stripe-mock's address", firstStripe)
		}
		buildsMock := func(c call) bool {
			return c.Tool == "ko" && strings.HasSuffix(valueOf(c.Args, "-f"), "stripe-mock.yaml")
		}
		if first.first(buildsMock) < 0 {
			t.Error("stripe-mock was not built and applied")
		}
		if decode(realStripeSecret["STRIPE_API_BASE"]) != "" || decode(realStripeSecret["STRIPE_KEY"]) != "sk_test_real" {
			t.Errorf("with STRIPE_KEY the Secret holds %v: want that key and api.stripe.com", realStripeSecret)
		}
		if realStripe.first(tool("kubectl", "delete", "--ignore-not-found", "config/stripe-mock/")) < 0 || realStripe.first(buildsMock) >= 0 {
			t.Error("with STRIPE_KEY stripe-mock was built or not removed")
		}
	})
}

// templates are the secrets annotations of the revision templates of the Services a run
// applied, by Service.
func templates(t *testing.T, r result) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range r.calls {
		if !appliesService(c) {
			continue
		}
		for _, d := range documents([]byte(c.Stdin)) {
			name := d["metadata"].(map[string]any)["name"].(string)
			spec, _ := d["spec"].(map[string]any)
			tmpl, _ := spec["template"].(map[string]any)
			meta, _ := tmpl["metadata"].(map[string]any)
			ann, _ := meta["annotations"].(map[string]any)
			sum, _ := ann["tickit.dev/secrets-sha256"].(string)
			if sum == "" {
				t.Errorf("Service %s was applied without the secrets annotation", name)
			}
			out[name] = sum
		}
	}
	return out
}

func decode(b64 string) string {
	out, _ := base64.StdEncoding.DecodeString(b64)
	return string(out)
}

func TestOneFunctionIsBuiltAndRolledAlone(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file string
		ui         bool
	}{
		{"orders", "12-orders.yaml", false},
		{"client", "16-client.yaml", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Arrange: a cluster make deploy filled the Secrets of.
			w := newWorld(t)
			for _, name := range []string{"tickit-jwt", "tickit-stripe", "tickit-sendgrid"} {
				if err := os.WriteFile(filepath.Join(w.state, "secret-"+name+".json"), []byte(`{"KEY":"a2V5"}`), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			// Act
			r := w.mustRun([]string{"STANDIN_ARCH=arm64"}, "function", c.name)

			// Assert
			var built []string
			for _, k := range r.calls {
				if k.Tool == "ko" {
					built = append(built, filepath.Base(valueOf(k.Args, "-f")))
					if k.Env["KO_DEFAULTPLATFORMS"] != "linux/arm64" {
						t.Errorf("ko env %v", k.Env)
					}
				}
			}
			if !slices.Equal(built, []string{c.file}) {
				t.Errorf("built %v, want only %s", built, c.file)
			}
			if ui := r.first(tool("make", "ui")); (ui >= 0) != c.ui || (c.ui && ui > r.first(tool("ko"))) {
				t.Errorf("make ui at call %d: want it before ko only for the client", ui)
			}
			if len(templates(t, r)) != 1 {
				t.Error("did not apply exactly one Service with its secrets annotation")
			}
			noGlobalContextSwitch(t, r, "none")
		})
	}
}

func TestEnvPrintsWhatKoNeedsForTheNode(t *testing.T) {
	t.Parallel()
	r := newWorld(t).mustRun([]string{"STANDIN_ARCH=arm64"}, "env")
	want := "export KO_DOCKER_REPO=kind.local KIND_CLUSTER_NAME=tickit KO_DEFAULTPLATFORMS=linux/arm64\n"
	if r.stdout != want {
		t.Errorf("env printed %q, want %q", r.stdout, want)
	}
}

func TestUnusedKoImagesAreRemovedFromTheNode(t *testing.T) {
	t.Parallel()
	// Act: the Revisions still use kind.local/kept-0abc:2222; stale-0abc is no one's.
	r := newWorld(t).mustRun([]string{"STANDIN_USED_IMAGES=kind.local/kept-0abc:2222 gcr.io/x:v1"}, "undeploy")

	// Assert
	var removed []string
	for _, c := range r.calls {
		if c.Tool == "docker" && c.has("crictl", "rmi") {
			removed = append(removed, c.Args[len(c.Args)-1])
		}
	}
	if !slices.Equal(removed, []string{"kind.local/stale-0abc:1111"}) {
		t.Errorf("removed %v, want only the unused kind.local/stale-0abc:1111", removed)
	}
	del := r.first(tool("kubectl", "delete", "--ignore-not-found", "-f", "knative/eventing"))
	if del < 0 || del > r.first(tool("docker", "crictl", "rmi")) {
		t.Errorf("undeploy deleted knative/ at call %d: want it before the images go", del)
	}
	noGlobalContextSwitch(t, r, "none")
}

func TestOneFunctionBeforeAnyDeploySaysWhatToRunFirst(t *testing.T) {
	t.Parallel()
	r := newWorld(t).run([]string{"STANDIN_ARCH=amd64"}, "function", "orders")
	if r.err == nil || !strings.Contains(r.stderr, "run make deploy first") {
		t.Errorf("function orders without the Secrets: err %v, stderr %q; want a stop saying to run make deploy first", r.err, r.stderr)
	}
	if r.first(appliesService) >= 0 {
		t.Error("applied a Service without its Secrets")
	}
}

func TestCreateStopsWhenDockerHasLessThanKnativeNeeds(t *testing.T) {
	t.Parallel()
	// 2 CPUs and 8 GiB: below Knative's quickstart minimum of 3 CPUs.
	r := newWorld(t).run([]string{"STANDIN_DOCKER_INFO=2 8589934592"}, "create")
	if r.err == nil || !strings.Contains(r.stderr, "2 CPUs") || !strings.Contains(r.stderr, "at least 4 CPUs and 6 GiB") {
		t.Errorf("err %v, stderr %q: want a stop naming docker's 2 CPUs and what to give it", r.err, r.stderr)
	}
	if r.first(tool("kind", "create")) >= 0 || r.first(tool("curl")) >= 0 {
		t.Error("went on with too small a docker")
	}
}

// The README's ways to change one function with kn and with ko apply ("4. Change one
// function"), pasted as they are, build for the node and name the cluster.
func TestTheREADMEsOneFunctionRecipesBuildForTheNodeAndNameTheCluster(t *testing.T) {
	t.Parallel()
	// Arrange: the lines from "# b)" to the end of the section's first sh block.
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### 4. Change one function")
	_, block, ok2 := strings.Cut(section, "```sh\n")
	block, _, ok3 := strings.Cut(block, "```")
	_, recipes, ok4 := strings.Cut(block, "# b)")
	if !ok || !ok2 || !ok3 || !ok4 {
		t.Fatal("README: no sh block with a \"# b)\" recipe under \"### 4. Change one function\"")
	}
	script := "set -euo pipefail\n" + recipes[strings.Index(recipes, "\n")+1:]

	// Act: in a shell that exports GOOS/GOARCH for amd64, against an arm64 node.
	r := newWorld(t).bash([]string{"STANDIN_ARCH=arm64", "GOOS=linux", "GOARCH=amd64"}, "-c", script)

	// Assert
	if r.err != nil {
		t.Fatalf("the README's recipes: %v\n%s", r.err, r.stderr)
	}
	for _, c := range r.calls {
		if c.Tool == "ko" && (c.Env["KO_DEFAULTPLATFORMS"] != "linux/arm64" || c.Env["KO_DOCKER_REPO"] != "kind.local" ||
			c.Env["KIND_CLUSTER_NAME"] != "tickit" || c.Env["GOOS"] != "" || c.Env["GOARCH"] != "") {
			t.Errorf("%v ran with %v: want the node's platform, kind.local, cluster tickit, no GOOS/GOARCH", c, c.Env)
		}
	}
	update := r.first(tool("kn", "--context", "kind-tickit", "service", "update", "orders", "--image", "kind.local/orders-0123:cafe"))
	if update < 0 || r.first(tool("ko", "build", "./functions/orders")) > update {
		t.Errorf("no kn service update of orders with the image ko built first: %v", r.calls)
	}
	if r.first(tool("ko", "apply", "-f", "knative/services/12-orders.yaml", "--", "--context", "kind-tickit")) < 0 {
		t.Errorf("no ko apply of orders' manifest naming the context: %v", r.calls)
	}
}
