package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickit/tickit/functions/internal/store"
)

// Mongo returns the URL of a Mongo-wire server for the test, without a database:
// MONGO_TEST_URL when it is set (a server of the developer's, e.g. a MongoDB; each test then
// uses databases of its own), else a FerretDB server started for this test (one per test,
// however often it asks: knative/local/tools/ferretdb, built on first use) on a free loopback
// port, with its data in a temporary directory, stopped when the test ends.
func Mongo(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("MONGO_TEST_URL"); u != "" {
		return u
	}
	if u, ok := servers.Load(t); ok {
		return u.(string)
	}
	u := startFerretDB(t)
	servers.Store(t, u)
	t.Cleanup(func() { servers.Delete(t) })
	return u
}

// servers holds the URL of each running test's FerretDB.
var servers sync.Map

func startFerretDB(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(ferretdbPath(t), "-dir", t.TempDir(), "-listen", "127.0.0.1:0", "-stdin")
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Its standard input is a pipe that closes when this process ends, even killed: FerretDB
	// then stops. Closing it is also how the test stops it.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ferretdb: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("ferretdb output:\n%s", logs.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- u
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-ready:
		return u
	case <-time.After(60 * time.Second):
		t.Fatalf("ferretdb did not say it was ready within 60 s:\n%s", logs.String())
		return ""
	}
}

// WireStore returns a fresh database on a Mongo-wire server (Mongo) opened through the
// production store code: a database of its own, named name_<random>, dropped at the end.
func WireStore(t testing.TB, name string, setup store.Setup) *store.DB {
	t.Helper()
	u, err := url.Parse(Mongo(t))
	if err != nil {
		t.Fatalf("MONGO_TEST_URL: %v", err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	u.Path = "/" + name + "_" + hex.EncodeToString(suffix)
	db := store.New(u.String(), name, setup)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if d, err := db.Database(ctx); err == nil {
			_ = d.Drop(ctx)
		}
		_ = db.Close(ctx)
	})
	return db
}

// Stores returns a fresh database per engine, each through the production store code: "memory"
// (lungo, as Store) and "wire" (WireStore). A test that runs on each proves its queries,
// indexes and error handling on both paths production takes.
func Stores(t testing.TB, name string, setup store.Setup) map[string]*store.DB {
	t.Helper()
	return map[string]*store.DB{"memory": Store(t, name, setup), "wire": WireStore(t, name, setup)}
}

// engines holds the engine Store opens in a test run by OnEachStore, by test name.
var engines sync.Map

// OnEachStore runs test twice, as subtests "memory" and "wire"; inside the second, Store opens
// a database on the wire server (WireStore) instead of lungo's memory store. A function's
// store-level test wrapped in it shows its queries, indexes and error codes on the production
// path as well as on the embedded one.
func OnEachStore(t *testing.T, test func(t *testing.T)) {
	onEach(t, false, test)
}

// OnEachAtomicStore is OnEachStore for a test that needs conditional updates to be atomic:
// its "wire" subtest is skipped (RequireAtomic) unless the server, asked through its
// handshake, is one that applies them atomically (a MongoDB at MONGO_TEST_URL).
func OnEachAtomicStore(t *testing.T, test func(t *testing.T)) {
	onEach(t, true, test)
}

func onEach(t *testing.T, atomic bool, test func(t *testing.T)) {
	t.Helper()
	for _, engine := range []string{"memory", "wire"} {
		t.Run(engine, func(t *testing.T) {
			engines.Store(t.Name(), engine)
			t.Cleanup(func() { engines.Delete(t.Name()) })
			if engine == "wire" && atomic {
				RequireAtomic(t, WireStore(t, "probe", nil))
			}
			test(t)
		})
	}
}

// engineOf is the engine OnEachStore chose for t or the test it runs under ("" outside).
func engineOf(t testing.TB) string {
	for name := t.Name(); name != ""; {
		if e, ok := engines.Load(name); ok {
			return e.(string)
		}
		i := strings.LastIndex(name, "/")
		if i < 0 {
			break
		}
		name = name[:i]
	}
	return ""
}

// RequireAtomic skips the test unless db's engine applies a conditional single-document update
// atomically (store.Engine, from the server's own buildInfo reply): a FerretDB cannot show a
// race's single winner, a MongoDB (MONGO_TEST_URL) and lungo can.
func RequireAtomic(t testing.TB, db *store.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := db.Engine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Atomic {
		t.Skipf("%s applies a conditional update as a read then a write, not atomically: this test needs "+
			"lungo or a MongoDB (MONGO_TEST_URL=mongodb://...)", e)
	}
}

// lockedBuffer is a bytes.Buffer that a process writes while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var ferretdb struct {
	once sync.Once
	path string
	err  error
}

// ferretdbPath builds the FerretDB test server once per test process (build.sh keeps the binary
// in .tickit/tools, so later processes only look it up) and returns its path.
func ferretdbPath(t testing.TB) string {
	t.Helper()
	ferretdb.once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			ferretdb.err = err
			return
		}
		// The first build takes about a minute on 2 cores, more on a busy machine; test
		// processes that start together wait for the one that builds (build.sh's lock).
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "knative/local/tools/ferretdb/build.sh"))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			ferretdb.err = fmt.Errorf("build ferretdb: %v\n%s", err, stderr.String())
			return
		}
		ferretdb.path = strings.TrimSpace(string(out))
	})
	if ferretdb.err != nil {
		t.Fatal(ferretdb.err)
	}
	return ferretdb.path
}

// repoRoot is the nearest directory above the working directory (a test's package) that holds
// the tool module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "knative/local/tools/ferretdb/build.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no knative/local/tools/ferretdb above the working directory")
		}
		dir = parent
	}
}
