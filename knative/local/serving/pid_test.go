package serving_test

import (
	"context"
	"testing"
	"time"
)

// TestPIDIsTheServingProcess: PID names the process that answers, and is 0 once scaled to zero.
func TestPIDIsTheServingProcess(t *testing.T) {
	svc, url := newService(t, "serve", time.Minute, 0)
	if pid := svc.PID(); pid != 0 {
		t.Fatalf("PID %d before any request, want 0", pid)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := svc.PID(), who(t, url).Pid; got != want {
		t.Fatalf("PID %d, the process answering is %d", got, want)
	}
	svc.ScaleToZero()
	if pid := svc.PID(); pid != 0 {
		t.Fatalf("PID %d after scaling to zero, want 0", pid)
	}
}
