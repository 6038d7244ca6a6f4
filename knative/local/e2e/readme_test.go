package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/broker"
)

// TestTheREADMEsFirstMakeSendIsDeliveredOnAFreshSystem pastes the README's first make send
// line, as written, against a fresh system (issue 17: the old one named a ticket nobody had,
// so tickets answered 503 and the Broker retried it for 17 minutes), with make run's address
// found the way make send finds it: from DATA/address, no ADDR.
func TestTheREADMEsFirstMakeSendIsDeliveredOnAFreshSystem(t *testing.T) {
	// Arrange: the first make send line of the README, its comment dropped.
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^make send [^#\n]*`).Find(readme)
	if line == nil {
		t.Fatal("the README has no make send line")
	}
	args := strings.Fields(string(line))[1:]
	dir := t.TempDir()
	w := start(t, dir, map[string]string{})
	if err := os.WriteFile(filepath.Join(dir, "address"), []byte(strings.TrimPrefix(w.URL(), "http://")), 0o644); err != nil {
		t.Fatal(err) // what make run writes; proof's World starts the system without make run
	}
	f := w.follow(t) // before sending: nothing it waits for can come first

	// Act
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-s", "-C", root}, append(args, "DATA="+dir)...)...)
	cmd.Env = append(os.Environ(), "ADDR=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}

	// Assert: every Trigger that took the event answered 2xx at its first attempt.
	m := regexp.MustCompile(`(?m)^(\S+) (\S+) -> .*: 202 Accepted$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s printed no accepted event:\n%s", line, out)
	}
	typ, id := string(m[1]), string(m[2])
	timeout := time.After(45 * time.Second)
	for delivered := 0; delivered == 0; {
		select {
		case r, ok := <-f.records:
			if !ok {
				t.Fatal("the Broker's feed ended")
			}
			if r.Event.ID != id {
				continue
			}
			switch r.Stage {
			case broker.StageDelivered:
				delivered++
			case broker.StageRetry, broker.StageDeadLettered, broker.StageDropped:
				t.Fatalf("%s: %s %s at trigger %s, status %d (%s)", line, typ, r.Stage, r.Trigger, r.Code, r.Error)
			}
		case <-timeout:
			t.Fatalf("%s: no Trigger took event %s within 45 s\n%s", line, id, out)
		}
	}
}
