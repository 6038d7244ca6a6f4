package backing

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickit/tickit/knative/local/proc"
)

// FerretDB is a Mongo-wire server (knative/local/tools/ferretdb: FerretDB with its SQLite
// backend) for running the system on the production data path without a MongoDB.
type FerretDB struct {
	URL  string // mongodb://127.0.0.1:PORT/
	stop func()
}

// StartFerretDB builds the server once (the tool's build.sh keeps it in .tickit/tools) and runs
// it on a free loopback port with its data under dir, until Close.
func StartFerretDB(root, dir string, output io.Writer) (*FerretDB, error) {
	var stderr bytes.Buffer
	build := exec.Command("bash", filepath.Join(root, "knative/local/tools/ferretdb/build.sh"))
	build.Stderr = &stderr
	bin, err := build.Output()
	if err != nil {
		return nil, fmt.Errorf("ferretdb: build: %v: %s", err, stderr.String())
	}
	cmd := exec.Command(strings.TrimSpace(string(bin)), "-dir", dir, "-listen", "127.0.0.1:0")
	cmd.Stderr = output
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := proc.Start(cmd); err != nil {
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	exited := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- u
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	f := &FerretDB{stop: func() { proc.Stop(cmd, exited, 10*time.Second) }}
	select {
	case f.URL = <-ready:
		return f, nil
	case <-exited:
		return nil, fmt.Errorf("ferretdb exited at start")
	case <-time.After(60 * time.Second):
		f.stop()
		return nil, fmt.Errorf("ferretdb did not say it was ready within 60 s")
	}
}

// Close stops the server; its data stays in its directory.
func (f *FerretDB) Close() { f.stop() }
