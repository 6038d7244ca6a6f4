package main

import (
	"context"
	"fmt"

	"github.com/tickit/tickit/knative/delivery"
)

// realBroker is the real Broker as knative/delivery's scenarios see it: the MT
// channel-based Broker tickit/default over its NatsJetStreamChannel, with Triggers made
// through the API server and both webhooks.
type realBroker struct {
	c       *cluster
	ingress string // the broker ingress process, reached directly (the scenarios post without the proxy)
	names   []string
}

// Route makes a Trigger with a uri subscriber and dead-letter sink and the spec, and waits
// until it is Ready (its Subscription is in the channel's spec, so the dispatcher has a
// JetStream consumer for it).
func (b *realBroker) Route(ctx context.Context, name, eventType, subscriber, deadLetterSink string, spec delivery.Spec) error {
	d := map[string]any{
		"retry": int64(spec.Retry), "backoffPolicy": spec.BackoffPolicy, "backoffDelay": spec.BackoffDelay,
		"deadLetterSink": map[string]any{"uri": deadLetterSink},
	}
	if spec.Timeout != "" {
		d["timeout"] = spec.Timeout
	}
	tr := uriTrigger(name, eventType, subscriber, d)
	if _, err := b.c.apply(ctx, tr); err != nil {
		return fmt.Errorf("trigger %s: %w", name, err)
	}
	b.names = append(b.names, name)
	return b.c.waitReady(ctx, tr)
}

func (b *realBroker) Ingress() string { return b.ingress }

// differential runs knative/delivery's scenarios through the real Broker and through
// knative/local's (on the run's nats-server), and prints them beside what the code of
// eventing-natss and Knative's filter says they do (delivery.Expected). The real Broker is
// the first column, the reference: a row where another column differs is a disagreement.
// The second error is the disagreement, if any.
func differential(ctx context.Context, c *cluster, ingress, natsURL string) (summary string, disagree, err error) {
	rctx, cancel := context.WithTimeout(ctx, delivery.RunTimeout)
	defer cancel()
	got, err := delivery.Run(rctx, &realBroker{c: c, ingress: ingress})
	if err != nil {
		return "", nil, fmt.Errorf("real Broker: %w", err)
	}
	lb, err := newLocalBroker(natsURL)
	if err != nil {
		return "", nil, err
	}
	defer lb.close()
	lctx, cancel := context.WithTimeout(ctx, delivery.RunTimeout)
	defer cancel()
	local, err := delivery.Run(lctx, lb)
	if err != nil {
		return "", nil, fmt.Errorf("knative/local's Broker: %w", err)
	}
	s := delivery.TableSpec
	text, n := delivery.Table([]string{"real Broker (MT, NatsJetStreamChannel)", "knative/local", "expected (eventing-natss code)"},
		got, local, delivery.Expected(s))
	fmt.Printf("   delivery spec of every row: retry %d, %s, %s, timeout %s\n%s\n", s.Retry, s.BackoffPolicy, s.BackoffDelay, s.Timeout, text)
	summary = fmt.Sprintf("%d scenarios, %d row(s) where knative/local or the code reading differ from the real Broker", len(got), n)
	if n > 0 {
		return summary, fmt.Errorf("differential table: %s (printed above)", summary), nil
	}
	return summary, nil, nil
}
