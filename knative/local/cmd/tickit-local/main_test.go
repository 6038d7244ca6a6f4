package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/broker"
)

func TestOnlyWarningsAndErrorsOfFunctionsShowWithoutVerbose(t *testing.T) {
	var out bytes.Buffer
	p := problems{&out}
	for _, line := range []string{
		`[orders] {"level":"info","msg":"request"}` + "\n",
		`[orders] {"level":"warn","msg":"event failed, the Broker will retry"}` + "\n",
		`[stripe-mock] Request: GET /v1/charges` + "\n",
		`[auth] {"level":"error","msg":"panic"}` + "\n",
	} {
		if _, err := p.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); strings.Count(got, "\n") != 2 || !strings.Contains(got, "will retry") || !strings.Contains(got, "panic") {
		t.Fatalf("passed on:\n%s", got)
	}
}

func TestARecordReadsAsOneLine(t *testing.T) {
	r := broker.Record{
		Time: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), Stage: broker.StageRetry,
		Event:   broker.EventSummary{ID: "e1", Type: "dev.tickit.order.created", Subject: "o1"},
		Trigger: "tickets-order-created", Code: 503, Attempt: 2, Duration: 12 * time.Millisecond,
	}
	got := formatRecord(r)
	for _, want := range []string{"retry", "dev.tickit.order.created", "id=e1", "subject=o1", "trigger=tickets-order-created", "status=503", "attempt=2", "took=12ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

func TestTheSubscribersAnswerIsDecodedAndShortened(t *testing.T) {
	long := strings.Repeat("x", 100)
	if got := answer(base64.StdEncoding.EncodeToString([]byte("bad\n  event"))); got != "bad event" {
		t.Errorf("answer = %q", got)
	}
	if got := answer(base64.StdEncoding.EncodeToString([]byte(long))); got != long[:60]+"..." {
		t.Errorf("answer = %q", got)
	}
	if got := answer("%%%"); got != "" {
		t.Errorf("answer of non-base64 = %q", got)
	}
}
