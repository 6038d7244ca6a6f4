package kindpath

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// snapshotFiles reads the named files (paths inside the archive) from the eventing-natss source
// snapshot that make conformance builds (knative/conformance/build.sh: TICKIT_THIRD_PARTY,
// default ../shared/third_party).
func snapshotFiles(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := os.Getenv("TICKIT_THIRD_PARTY")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "..", "shared", "third_party")
	}
	archives, _ := filepath.Glob(filepath.Join(dir, "eventing-natss-*.tar.gz"))
	if len(archives) != 1 {
		t.Skipf("no eventing-natss snapshot in %s (make conformance needs it too)", dir)
	}
	f, err := os.Open(archives[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	tr := tar.NewReader(gz)
	for len(out) < len(names) {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if h.Name == n || strings.TrimPrefix(h.Name, "./") == n {
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				out[n] = string(b)
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			t.Fatalf("%s: no %s", archives[0], n)
		}
	}
	return out
}

// Issue 15 item 6: the release file, CRD and dispatcher labels hack/cluster.sh relies on are
// what eventing-natss's own release script and code (the snapshot make conformance runs) say.
func TestTheNatssPartsOfTheScriptMatchTheSnapshot(t *testing.T) {
	// Arrange
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "hack", "cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	src := snapshotFiles(t,
		"eventing-natss/hack/release.sh",
		"eventing-natss/config/jetstream/302-jsm-channel.yaml",
		"eventing-natss/pkg/channel/jetstream/controller/resources/constants.go",
	)

	// Act: what the script installs and waits for.
	asset := regexp.MustCompile(`"\$NATSS_URL/([^"]+)"`).FindStringSubmatch(string(script))
	crd := regexp.MustCompile(`crd/(natsjetstreamchannels\.[a-z.]+)`).FindStringSubmatch(string(script))
	selector := regexp.MustCompile(`--selector (messaging\.knative\.dev/channel=[a-z-]+),(messaging\.knative\.dev/role=[a-z]+)`).FindStringSubmatch(string(script))
	if asset == nil || crd == nil || selector == nil {
		t.Fatalf("hack/cluster.sh: release file %v, CRD %v, dispatcher selector %v not found", asset, crd, selector)
	}

	// Assert: the release publishes that file from config/jetstream (the NatsJetStreamChannel)...
	component := regexp.MustCompile(`\["` + regexp.QuoteMeta(asset[1]) + `"\]="([^"]+)"`).FindStringSubmatch(src["eventing-natss/hack/release.sh"])
	if component == nil || !strings.Contains(component[1], "./config/jetstream") {
		t.Errorf("eventing-natss's hack/release.sh does not publish %s from ./config/jetstream: %v", asset[1], component)
	}
	// ... which holds the CRD the script waits for ...
	if !strings.Contains(src["eventing-natss/config/jetstream/302-jsm-channel.yaml"], "name: "+crd[1]) {
		t.Errorf("config/jetstream does not define %s", crd[1])
	}
	// ... and the dispatcher carries the labels the script restarts it by.
	constants := src["eventing-natss/pkg/channel/jetstream/controller/resources/constants.go"]
	for _, label := range selector[1:] {
		k, v, _ := strings.Cut(label, "=")
		if !regexp.MustCompile(`= "`+regexp.QuoteMeta(k)+`"`).MatchString(constants) || !strings.Contains(constants, `"`+v+`"`) {
			t.Errorf("the dispatcher's labels in eventing-natss do not include %s", label)
		}
	}
}
