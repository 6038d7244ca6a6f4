package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// faults break the real data plane while events cross it: nats-server stopped and started
// again on its store, the JetStream dispatcher killed, a subscriber answering 503, and
// events no function can take. Each records what the real Broker did; the lines go to the
// summary.
type faults struct {
	c        *cluster
	root     string
	proxy    string
	nats     *natsServer
	disp     *dispatcher
	sink     *receiver // conformance-faults.tickit: the subscriber of the fault Triggers
	dead     *receiver
	delivery map[string]any // the delivery spec of tickit's Triggers
	report   []string
}

const faultType = "dev.tickit.conformance.fault"

// tickitDelivery is the delivery spec of tickit's Triggers (the first one of
// 31-triggers-tickets.yaml; every Trigger has the same, manifest tests check it).
func tickitDelivery(root string) (map[string]any, error) {
	objs, err := readObjects(filepath.Join(root, "knative/eventing/31-triggers-tickets.yaml"))
	if err != nil {
		return nil, err
	}
	for _, u := range objs {
		if u.GetKind() == "Trigger" {
			d, ok, _ := unstructured.NestedMap(u.Object, "spec", "delivery")
			if !ok {
				return nil, fmt.Errorf("trigger %s has no delivery", u.GetName())
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("no Trigger in 31-triggers-tickets.yaml")
}

// setup makes the fault Triggers, each routing its own type to the fault sink with
// tickit's delivery spec, all at once (they become Ready together).
func (f *faults) setup(ctx context.Context) error {
	var refs []*objectRef
	for _, kind := range []string{"nats", "kill", "busy", "refused"} {
		tr := uriTrigger("conformance-fault-"+kind, faultType+"."+kind, "http://conformance-faults.tickit.svc.cluster.local", f.delivery)
		if _, err := f.c.apply(ctx, tr); err != nil {
			return err
		}
		refs = append(refs, &objectRef{obj: tr})
	}
	return f.c.allReady(ctx, refs)
}

func (f *faults) say(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	fmt.Println("   " + line)
	f.report = append(f.report, line)
}

// sendAll sends n events id prefix-0..n-1 of type typ, returns the ids the Broker accepted
// (2xx) and how it answered the others.
func (f *faults) sendAll(ctx context.Context, prefix, typ string, n int) (accepted []string, refused map[string]int) {
	client := brokerClient(f.proxy)
	client.Timeout = 10 * time.Second
	refused = map[string]int{}
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		status, err := postEvent(ctx, client, id, typ, "application/json", []byte(`{"fault":true}`))
		switch {
		case err != nil:
			refused["no answer ("+firstLine(err.Error(), 60)+")"]++
		case status/100 == 2:
			accepted = append(accepted, id)
		default:
			refused[http.StatusText(status)+fmt.Sprintf(" %d", status)]++
		}
	}
	return accepted, refused
}

// delivered waits until every id has reached the sink, and returns how many deliveries
// there were in all.
func (f *faults) delivered(ctx context.Context, prefix string, ids []string, timeout time.Duration) (int, error) {
	var total int
	_, err := until(ctx, fmt.Sprintf("%d accepted events %s* delivered", len(ids), prefix), timeout, func() (bool, string, error) {
		got := f.sink.deliveries(prefix)
		total = 0
		var missing []string
		for _, id := range ids {
			if len(got[id]) == 0 {
				missing = append(missing, id)
			}
			total += len(got[id])
		}
		if len(missing) > 0 {
			return false, fmt.Sprintf("%d not delivered yet, e.g. %s", len(missing), missing[0]), nil
		}
		return true, "", nil
	})
	return total, err
}

// natsRestart stops nats-server mid-story for longer than a few reconnect attempts, sends
// events while it is down, starts it again on the same store, and checks that every event
// the Broker accepted (before, during, after) reaches its subscriber.
func (f *faults) natsRestart(ctx context.Context) error {
	before, refused := f.sendAll(ctx, "nats-before-", faultType+".nats", 20)
	if len(refused) > 0 {
		return fmt.Errorf("with NATS up the Broker refused events: %v", refused)
	}
	t := time.Now()
	if err := f.nats.s.stop(f.nats.proc, syscall.SIGTERM, 10*time.Second); err != nil {
		return err
	}
	// Three events while it is down, at once (each waits for the dispatcher's publish timeout).
	var down []string
	downRefused := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			acc, ref := f.sendAll(ctx, fmt.Sprintf("nats-down-%d-", i), faultType+".nats", 1)
			mu.Lock()
			defer mu.Unlock()
			down = append(down, acc...)
			for k, v := range ref {
				downRefused[k] += v
			}
		})
	}
	wg.Wait()
	const outage = 15 * time.Second
	time.Sleep(outage - time.Since(t))
	if err := f.nats.start(ctx); err != nil {
		return err
	}
	f.say("NATS stopped (SIGTERM) for %s: while down the Broker accepted %d of 3 events, answered the others %v", since(t), len(down), downRefused)
	var after []string
	_, err := until(ctx, "the Broker accepts events again after NATS restarted", time.Minute, func() (bool, string, error) {
		acc, ref := f.sendAll(ctx, fmt.Sprintf("nats-after-%d-", time.Now().UnixNano()), faultType+".nats", 1)
		after = append(after, acc...)
		return len(acc) == 1, fmt.Sprintf("refused %v", ref), nil
	})
	if err != nil {
		return err
	}
	more, refused := f.sendAll(ctx, "nats-after-", faultType+".nats", 20)
	if len(refused) > 0 {
		return fmt.Errorf("after NATS restarted the Broker refused events: %v", refused)
	}
	all := slices.Concat(before, down, after, more)
	total, err := f.delivered(ctx, "nats-", all, 2*time.Minute)
	if err != nil {
		return err
	}
	f.say("NATS restarted on its store: accepted again %s after the stop; all %d accepted events delivered (%d deliveries; %d before the stop, %d during, %d after)",
		since(t), len(all), total, len(before), len(down), len(after)+len(more))
	return nil
}

// dispatcherKill sends events to a subscriber that holds each first delivery for 5 s,
// SIGKILLs the dispatcher while they are in flight, starts it again, and checks each event
// is delivered again and acked once.
func (f *faults) dispatcherKill(ctx context.Context) error {
	f.sink.setAnswer(func(e event, n int) (int, time.Duration) {
		if strings.HasPrefix(e.attrs["id"], "kill-") && n == 1 {
			return http.StatusAccepted, 5 * time.Second
		}
		return http.StatusAccepted, 0
	})
	defer f.sink.setAnswer(nil)
	ids, refused := f.sendAll(ctx, "kill-", faultType+".kill", 10)
	if len(refused) > 0 {
		return fmt.Errorf("the Broker refused events: %v", refused)
	}
	if _, err := until(ctx, "10 events in flight at the subscriber", 30*time.Second, func() (bool, string, error) {
		n := len(f.sink.deliveries("kill-"))
		return n == len(ids), fmt.Sprintf("%d in flight", n), nil
	}); err != nil {
		return err
	}
	t := time.Now()
	if err := f.disp.kill(); err != nil {
		return err
	}
	if err := f.disp.start(ctx); err != nil {
		return err
	}
	restarted := since(t)
	_, err := until(ctx, "every killed delivery delivered again", 3*time.Minute, func() (bool, string, error) {
		got := f.sink.deliveries("kill-")
		again := 0
		for _, id := range ids {
			if len(got[id]) >= 2 {
				again++
			}
		}
		return again == len(ids), fmt.Sprintf("%d of %d delivered again", again, len(ids)), nil
	})
	if err != nil {
		return err
	}
	// Acked once: a while later no event has been delivered a third time.
	time.Sleep(3 * time.Second)
	got := f.sink.deliveries("kill-")
	var counts []int
	for _, id := range ids {
		counts = append(counts, len(got[id]))
	}
	if slices.Max(counts) != 2 {
		return fmt.Errorf("deliveries per event after the kill: %v, want 2 each (the killed one and one more)", counts)
	}
	first := got[ids[0]]
	f.say("dispatcher SIGKILLed with 10 deliveries in flight, running again after %s: each event delivered again after %s (the consumer's ack wait), then acked: 2 deliveries each",
		restarted, first[1].received.Sub(first[0].received).Round(100*time.Millisecond))
	return nil
}

// retry503 answers 503 to each event's first three deliveries and records the delays
// between them (the Trigger's backoff) until the fourth is taken.
func (f *faults) retry503(ctx context.Context) error {
	f.sink.setAnswer(func(e event, n int) (int, time.Duration) {
		if strings.HasPrefix(e.attrs["id"], "busy-") && n <= 3 {
			return http.StatusServiceUnavailable, 0
		}
		return http.StatusAccepted, 0
	})
	defer f.sink.setAnswer(nil)
	ids, refused := f.sendAll(ctx, "busy-", faultType+".busy", 1)
	if len(refused) > 0 {
		return fmt.Errorf("the Broker refused events: %v", refused)
	}
	var got []event
	if _, err := until(ctx, "a 503'd event taken on its 4th delivery", time.Minute, func() (bool, string, error) {
		got = f.sink.deliveries("busy-")[ids[0]]
		return len(got) >= 4, fmt.Sprintf("%d deliveries", len(got)), nil
	}); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	got = f.sink.deliveries("busy-")[ids[0]]
	var delays []string
	for i := 1; i < len(got); i++ {
		delays = append(delays, got[i].received.Sub(got[i-1].received).Round(10*time.Millisecond).String())
	}
	if len(got) != 4 {
		return fmt.Errorf("%d deliveries of an event answered 503, 503, 503, 202; want 4", len(got))
	}
	f.say("503 three times then 202 (Trigger delivery %v): 4 deliveries, delays %s, then taken", f.delivery["backoffPolicy"], strings.Join(delays, ", "))
	return nil
}

// refusals sends events no subscriber can take, with tickit's own Triggers and functions
// where one exists, and records where each one ends.
func (f *faults) refusals(ctx context.Context) error {
	f.sink.setAnswer(func(e event, n int) (int, time.Duration) {
		switch {
		case strings.HasPrefix(e.attrs["id"], "refused-409-"):
			return http.StatusConflict, 0
		case strings.HasPrefix(e.attrs["id"], "refused-404-"):
			return http.StatusNotFound, 0
		}
		return http.StatusAccepted, 0
	})
	defer f.sink.setAnswer(nil)
	client := brokerClient(f.proxy)
	// want is what the real Broker was measured to do (make conformance, 2026-11-30): a run
	// that sees something else fails, and the README and the Triggers' comments change with it.
	cases := []struct {
		what, id, typ, data, want string
	}{
		{"a malformed ticket.created (data not JSON)", "refused-malformed-" + randomKey()[:6], "dev.tickit.ticket.created", `{"id": 12`,
			"the ingress answered 500"},
		{"an unknown type (no Trigger matches)", "refused-unknown-" + randomKey()[:6], "dev.tickit.no.such.type", `{}`,
			"accepted (202), 0 deliveries, dropped: nothing at the dead-letter sink"},
		{"a subscriber answering 409", "refused-409-" + randomKey()[:6], faultType + ".refused", `{}`,
			"accepted (202), 1 deliveries, dropped: nothing at the dead-letter sink"},
		{"a subscriber answering 404", "refused-404-" + randomKey()[:6], faultType + ".refused", `{}`,
			"accepted (202), 1 deliveries, dropped: nothing at the dead-letter sink"},
	}
	got := make([]string, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Go(func() {
			status, err := postEvent(ctx, client, tc.id, tc.typ, "application/json", []byte(tc.data))
			if err != nil {
				errs[i] = err
				return
			}
			if status/100 != 2 {
				got[i] = fmt.Sprintf("the ingress answered %d", status)
				return
			}
			// Long enough for a dead letter after a first refusal; a retried answer shows
			// as more than one delivery.
			d, ok := f.dead.waitFor(ctx, 10*time.Second, func(e event) bool { return e.attrs["id"] == tc.id })
			deliveries := len(f.sink.deliveries(tc.id)[tc.id])
			if ok {
				got[i] = fmt.Sprintf("accepted (%d), %d deliveries, dead-lettered with knativeerrorcode=%s", status, deliveries, d.attrs["knativeerrorcode"])
			} else {
				got[i] = fmt.Sprintf("accepted (%d), %d deliveries, dropped: nothing at the dead-letter sink", status, deliveries)
			}
		})
	}
	wg.Wait()
	var wrong []string
	for i, tc := range cases {
		if errs[i] != nil {
			return errs[i]
		}
		f.say("%s: %s", tc.what, got[i])
		if got[i] != tc.want {
			wrong = append(wrong, fmt.Sprintf("%s: %s, measured before: %s", tc.what, got[i], tc.want))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("the real Broker changed what it does:\n  %s", strings.Join(wrong, "\n  "))
	}
	return nil
}
