// Package broker is a Knative Broker on NATS JetStream, with the semantics of Knative's NATS
// JetStream channel: events go into a stream with their CloudEvent id as the message id (so
// duplicates within the window are dropped), every Trigger has its own durable consumer, and
// a message is acknowledged only after the subscriber answered (at-least-once delivery).
package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cetypes "github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	eventingbroker "knative.dev/eventing/pkg/broker"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// TTLExtension counts the hops an event may still make through the Broker (replies that
// produce replies). It is the extension Knative's own Broker uses, removed before delivery.
const TTLExtension = "knativebrokerttl"

// DefaultTTL is the hop budget of an event that enters the Broker from outside.
const DefaultTTL = 255

// DefaultTimeout bounds one delivery attempt when the delivery spec sets no timeout.
const DefaultTimeout = 30 * time.Second

// DuplicateWindow is how long the stream remembers event ids to drop repeats.
const DuplicateWindow = 2 * time.Minute

// Resolver turns a Trigger's subscriber or dead-letter sink into a URL; nil for a sink that
// has no address here (dead letters are then only kept in the Broker's dead-letter stream).
type Resolver func(d duckv1.Destination) (*url.URL, error)

// Config describes one Broker and its Triggers.
type Config struct {
	Broker   *eventingv1.Broker
	Triggers []*eventingv1.Trigger // only those naming this Broker are used
	JS       jetstream.JetStream
	Resolve  Resolver
	Client   *http.Client // for deliveries; its timeout is ignored (the delivery spec decides)
	Log      *zap.SugaredLogger
	// Parallel is how many events one Trigger delivers at once (default 32).
	Parallel int
	// AckWait is how long a message handed to a delivery may stay unsettled before JetStream
	// hands it out again (default 5s). Deliveries in progress extend it; it matters after a
	// crash or restart, when messages waiting for a retry come back after AckWait.
	AckWait time.Duration
}

// Broker accepts events at its ingress and delivers them to its Triggers' subscribers.
type Broker struct {
	ns, name string
	js       jetstream.JetStream
	client   *http.Client
	log      *zap.SugaredLogger
	ackWait  time.Duration
	stream   string // stream of events
	dlq      string // stream of dead letters
	triggers map[string]*trigger
	feed     *Feed

	ctx     context.Context // deliveries; cancelled when Close gives up waiting for them
	cancel  context.CancelFunc
	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
	stopped chan struct{}
	once    sync.Once
}

// CloseGrace is how long Close lets deliveries in flight finish before cutting them off.
const CloseGrace = 5 * time.Second

// Feed is where every accepted event and every delivery outcome is announced.
func (b *Broker) Feed() *Feed { return b.feed }

// New creates (or reopens) the Broker's streams and one durable consumer per Trigger, drops
// the consumers of Triggers that no longer exist, and starts delivering.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	br := cfg.Broker
	if cfg.Log == nil {
		cfg.Log = zap.NewNop().Sugar()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 32
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 5 * time.Second
	}
	b := &Broker{
		ns: br.Namespace, name: br.Name, js: cfg.JS, client: cfg.Client, ackWait: cfg.AckWait,
		log:      cfg.Log.With("broker", br.Namespace+"/"+br.Name),
		stream:   streamName("BROKER", br.Namespace, br.Name),
		dlq:      streamName("DEADLETTERS", br.Namespace, br.Name),
		triggers: map[string]*trigger{},
		feed:     newFeed(),
		stopped:  make(chan struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	// Interest retention: a message is gone once every Trigger's consumer acknowledged it.
	if _, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: b.stream, Subjects: []string{b.subject(">")}, Retention: jetstream.InterestPolicy,
		Storage: jetstream.FileStorage, Duplicates: DuplicateWindow,
	}); err != nil {
		return nil, fmt.Errorf("broker %s/%s: stream: %w", b.ns, b.name, err)
	}
	if _, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: b.dlq, Subjects: []string{b.deadLetterSubject(">")}, Storage: jetstream.FileStorage,
		Duplicates: DuplicateWindow,
	}); err != nil {
		return nil, fmt.Errorf("broker %s/%s: dead-letter stream: %w", b.ns, b.name, err)
	}
	for _, t := range cfg.Triggers {
		if t.Spec.Broker != br.Name || t.Namespace != br.Namespace {
			continue
		}
		tr, err := newTrigger(t, br.Spec.Delivery, cfg.Resolve)
		if err != nil {
			return nil, err
		}
		tr.parallel = cfg.Parallel
		b.triggers[t.Name] = tr
	}
	if err := b.syncConsumers(ctx); err != nil {
		return nil, err
	}
	for _, tr := range b.triggers {
		if err := b.consume(tr); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Close stops delivering and waits for the deliveries in flight (CloseGrace at most); what
// they did not finish stays in the stream and is delivered again on the next start.
func (b *Broker) Close() {
	b.once.Do(func() {
		b.mu.Lock()
		b.closing = true
		b.mu.Unlock()
		close(b.stopped)
		// Draining hands the messages already pulled to the callback, which gives them back
		// (Nak), so that the next start delivers them at once instead of after AckWait.
		for _, tr := range b.triggers {
			if tr.cc != nil {
				tr.cc.Drain()
			}
		}
		for _, tr := range b.triggers {
			if tr.cc != nil {
				select {
				case <-tr.cc.Closed():
				case <-time.After(CloseGrace):
				}
			}
		}
		done := make(chan struct{})
		go func() { b.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(CloseGrace):
			b.cancel()
			<-done
		}
		b.cancel()
		for _, tr := range b.triggers {
			if tr.filter != nil {
				tr.filter.Cleanup()
			}
		}
		b.feed.close()
	})
}

// syncConsumers creates a durable consumer per Trigger and removes the ones left over from
// Triggers that were deleted from the manifests.
func (b *Broker) syncConsumers(ctx context.Context) error {
	stream, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return err
	}
	names := stream.ConsumerNames(ctx)
	wanted := map[string]bool{}
	for _, tr := range b.triggers {
		wanted[tr.consumer] = true
	}
	for name := range names.Name() {
		if !wanted[name] {
			if err := stream.DeleteConsumer(ctx, name); err != nil {
				return fmt.Errorf("broker: delete consumer of removed trigger %s: %w", name, err)
			}
			b.log.Infow("removed the consumer of a deleted trigger", "trigger", name)
		}
	}
	if err := names.Err(); err != nil {
		return err
	}
	for name, tr := range b.triggers {
		tr.cons, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        tr.consumer,
			Description:    "trigger " + b.ns + "/" + name,
			DeliverPolicy:  jetstream.DeliverNewPolicy,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        b.ackWait,
			MaxDeliver:     -1, // attempts are counted here, against the delivery spec
			MaxAckPending:  4 * tr.parallel,
			FilterSubjects: []string{b.subject("events"), b.subject("replay." + tr.consumer)},
		})
		if err != nil {
			return fmt.Errorf("broker: consumer for trigger %s: %w", name, err)
		}
	}
	return nil
}

// Publish puts an event into the Broker, stamped with its arrival time (knativearrivaltime,
// as Knative's ingress does for every event, replies included). It returns false when the
// stream already held an event with this id (a duplicate, dropped).
func (b *Broker) Publish(ctx context.Context, e cloudevents.Event) (bool, error) {
	e.SetExtension(eventingbroker.EventArrivalTime, cloudevents.Timestamp{Time: time.Now()})
	return b.publish(ctx, b.subject("events"), e.ID(), e)
}

func (b *Broker) publish(ctx context.Context, subject, msgID string, e cloudevents.Event) (bool, error) {
	if _, err := e.Context.GetExtension(TTLExtension); err != nil {
		if err := e.Context.SetExtension(TTLExtension, DefaultTTL); err != nil {
			return false, err
		}
	}
	data, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnstorable, err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	// Announce before storing: once stored, a consumer may deliver the event at once, and the
	// feed must show "accepted" before the first delivery. What was not stored after all is
	// then announced as dropped.
	b.feed.publish(Record{Stage: StageAccepted, Event: summary(e), Data: feedData(e)})
	ack, err := b.js.PublishMsg(ctx, msg)
	if err != nil {
		b.feed.publish(Record{Stage: StageDropped, Event: summary(e), Error: err.Error()})
		return false, fmt.Errorf("broker: publish %s: %w", e.ID(), err)
	}
	if ack.Duplicate {
		b.feed.publish(Record{Stage: StageDropped, Event: summary(e), Error: "duplicate: the stream already holds this id"})
	}
	return !ack.Duplicate, nil
}

// ErrUnstorable: the event cannot be written to the stream (data that is not what its content
// type says, such as invalid JSON under application/json). The ingress answers 500, as
// Knative's ingress does when the NATS channel cannot marshal the event.
var ErrUnstorable = errors.New("the event cannot be stored")

// ttl returns the hops an event may still make.
func ttl(e cloudevents.Event) int32 {
	v, err := e.Context.GetExtension(TTLExtension)
	if err != nil {
		return DefaultTTL
	}
	n, err := cetypes.ToInteger(v)
	if err != nil {
		return DefaultTTL
	}
	return n
}

func (b *Broker) subject(suffix string) string {
	return "broker." + token(b.ns) + "." + token(b.name) + "." + suffix
}

func (b *Broker) deadLetterSubject(suffix string) string {
	return "deadletters." + token(b.ns) + "." + token(b.name) + "." + suffix
}

// streamName builds a JetStream stream name.
func streamName(kind, ns, name string) string {
	return kind + "_" + token(ns) + "_" + token(name)
}

// token makes a Kubernetes name (letters, digits, '-' and '.') usable as one subject token
// and as a consumer name, where dots are separators.
func token(name string) string { return strings.ReplaceAll(name, ".", "_") }
