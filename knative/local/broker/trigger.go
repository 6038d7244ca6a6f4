package broker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
	"knative.dev/eventing/pkg/eventfilter/attributes"
	"knative.dev/eventing/pkg/eventfilter/subscriptionsapi"
	"knative.dev/eventing/pkg/kncloudevents"
)

// trigger is a Trigger made ready to deliver: its filter, addresses and delivery spec.
type trigger struct {
	name, consumer string
	filter         eventfilter.Filter
	subscriber     *url.URL
	deadLetterSink *url.URL                        // nil: dead letters are only kept in the dead-letter stream
	retry          int                             // retries after the first attempt
	backoff        func(attempt int) time.Duration // the wait after a retryable failure of attempt n
	timeout        time.Duration                   // one attempt: the spec's timeout + attemptMargin
	parallel       int

	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
}

// newTrigger reads a Trigger; its own delivery spec wins over the Broker's, as in Knative.
func newTrigger(t *eventingv1.Trigger, brokerDelivery *eventingduckv1.DeliverySpec, resolve Resolver) (*trigger, error) {
	tr := &trigger{name: t.Name, consumer: token(t.Name), timeout: DefaultTimeout,
		backoff: func(int) time.Duration { return 0 }}
	var err error
	if tr.filter, err = newFilter(t); err != nil {
		return nil, fmt.Errorf("trigger %s: filter: %w", t.Name, err)
	}
	tr.subscriber, err = resolve(t.Spec.Subscriber)
	if err == nil && tr.subscriber == nil {
		err = errors.New("it has no address here")
	}
	if err != nil {
		return nil, fmt.Errorf("trigger %s: subscriber: %w", t.Name, err)
	}
	delivery := t.Spec.Delivery
	if delivery == nil {
		delivery = brokerDelivery
	}
	if delivery == nil {
		return tr, nil
	}
	if delivery.DeadLetterSink != nil {
		// A nil address: the sink cannot run here; the dead-letter stream still keeps them.
		if tr.deadLetterSink, err = resolve(*delivery.DeadLetterSink); err != nil {
			return nil, fmt.Errorf("trigger %s: dead-letter sink: %w", t.Name, err)
		}
	}
	// Knative's own reading of the spec, as eventing-natss's dispatcher gets it.
	rc, err := kncloudevents.RetryConfigFromDeliverySpec(*delivery)
	if err != nil {
		return nil, fmt.Errorf("trigger %s: delivery: %w", t.Name, err)
	}
	tr.retry = rc.RetryMax
	if rc.RequestTimeout > 0 {
		tr.timeout = rc.RequestTimeout + attemptMargin
	}
	// The wait after attempt n (1, 2, ...) before the next: eventing-natss's NAK delay
	// (CalculateNakDelayForRetryNumber), delay*2^n or delay*n, which is kncloudevents' Backoff
	// called with the attempt number. Without both a policy and a delay it is 0 (eventing-natss
	// reads the policy without checking that it is set: give both).
	tr.backoff = func(n int) time.Duration { return rc.Backoff(n, nil) }
	return tr, nil
}

// newFilter builds the Trigger's filter with Knative Eventing's own code: the `filters`
// dialects when present (all of them must pass), else the attributes filter, else none.
func newFilter(t *eventingv1.Trigger) (eventfilter.Filter, error) {
	switch {
	case len(t.Spec.Filters) > 0:
		return dialects(t.Spec.Filters, allOf)
	case t.Spec.Filter != nil:
		return attributes.NewAttributesFilter(t.Spec.Filter.Attributes), nil
	}
	return nil, nil
}

// dialect builds one SubscriptionsAPIFilter as Knative's MaterializeSubscriptionsAPIFilter
// does, except for all and any: Knative's versions reorder their members from a goroutine
// that races with Filter (the race detector reports it), so these two are plain loops here.
func dialect(f eventingv1.SubscriptionsAPIFilter) (eventfilter.Filter, error) {
	switch {
	case len(f.Exact) > 0:
		return subscriptionsapi.NewExactFilter(f.Exact)
	case len(f.Prefix) > 0:
		return subscriptionsapi.NewPrefixFilter(f.Prefix)
	case len(f.Suffix) > 0:
		return subscriptionsapi.NewSuffixFilter(f.Suffix)
	case len(f.All) > 0:
		return dialects(f.All, allOf)
	case len(f.Any) > 0:
		return dialects(f.Any, anyOf)
	case f.Not != nil:
		inner, err := dialect(*f.Not)
		if err != nil {
			return nil, err
		}
		return subscriptionsapi.NewNotFilter(inner), nil
	case f.CESQL != "":
		return cesql(f.CESQL)
	}
	return subscriptionsapi.NewNoFilter(), nil
}

// cesql parses a CESQL expression; the CloudEvents SQL parser panics on some malformed
// expressions, which must be an error here, not a crash of the runtime.
func cesql(expr string) (f eventfilter.Filter, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("cesql %q cannot be parsed: %v", expr, p)
		}
	}()
	return subscriptionsapi.NewCESQLFilter(expr)
}

func dialects(fs []eventingv1.SubscriptionsAPIFilter, combine func([]eventfilter.Filter) eventfilter.Filter) (eventfilter.Filter, error) {
	members := make([]eventfilter.Filter, 0, len(fs))
	for _, f := range fs {
		m, err := dialect(f)
		if err != nil {
			return nil, err
		}
		members = append(members, m)
	}
	return combine(members), nil
}

// combined is all or any over member filters, with Knative's result rules: a member that
// fails decides all, a member that passes decides any, and NoFilter members count as neither.
type combined struct {
	members []eventfilter.Filter
	any     bool
}

func allOf(m []eventfilter.Filter) eventfilter.Filter { return combined{members: m} }
func anyOf(m []eventfilter.Filter) eventfilter.Filter { return combined{members: m, any: true} }

func (c combined) Filter(ctx context.Context, e cloudevents.Event) eventfilter.FilterResult {
	res := eventfilter.NoFilter
	for _, m := range c.members {
		switch r := m.Filter(ctx, e); {
		case c.any && r == eventfilter.PassFilter:
			return eventfilter.PassFilter
		case !c.any && r == eventfilter.FailFilter:
			return eventfilter.FailFilter
		case r != eventfilter.NoFilter:
			res = r
		}
	}
	return res
}

func (c combined) Cleanup() {
	for _, m := range c.members {
		m.Cleanup()
	}
}

// passes reports whether the filter lets the event through (no filter: everything passes).
func (tr *trigger) passes(ctx context.Context, e cloudevents.Event) bool {
	return tr.filter == nil || tr.filter.Filter(ctx, e) != eventfilter.FailFilter
}
