package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig is the JetStream topology's configuration. Zero fields take the
// documented defaults.
type StreamConfig struct {
	// Replicas of each stream: 1 for a single server, 3 for a cluster.
	// Default 1.
	Replicas int
	// DuplicateWindow is how long JetStream recognises a republished message
	// by its id. Default 2 minutes. Redis stays the source of truth for what
	// is done, so duplicates past the window are harmless.
	DuplicateWindow time.Duration
	// LinksMaxAge bounds how long an unconsumed claimed message is kept.
	// Default 7 days.
	LinksMaxAge time.Duration
	// EventsMaxAge is how long events are kept: GET /v1/events lists them
	// for as long (and the dispatchers must have taken them by then).
	// Default 30 days, the event retention.
	EventsMaxAge time.Duration
	// DLQMaxAge is how long dead letters are kept for operators. Default 30
	// days.
	DLQMaxAge time.Duration
	// Memory stores streams in memory instead of files (tests only).
	Memory bool
}

func (c StreamConfig) withDefaults() StreamConfig {
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.DuplicateWindow = cmp.Or(c.DuplicateWindow, 2*time.Minute)
	c.LinksMaxAge = cmp.Or(c.LinksMaxAge, 7*24*time.Hour)
	c.EventsMaxAge = cmp.Or(c.EventsMaxAge, 30*24*time.Hour)
	c.DLQMaxAge = cmp.Or(c.DLQMaxAge, 30*24*time.Hour)
	return c
}

// DeadLetterDuplicateWindow is how long the dead-letter stream recognises a
// copy made again (a message's copy carries an id from the message's
// sequence and link): longer than a worker tries to fail the message's
// link. It is capped at DLQMaxAge, and a NATS whose max_duplicate_window is
// shorter gets DuplicateWindow instead.
const DeadLetterDuplicateWindow = 6 * time.Hour

// EnsureStreams creates or updates linkflow's streams. It is idempotent;
// every process runs it at start. It sets what linkflow owns of each stream
// (subjects, retention, storage, replicas, duplicate window, age) and keeps
// what an operator gave an existing one by hand (byte, message and size
// limits, discard policy, compression, placement, description, metadata).
//
//   - LINKFLOW_LINKS (work queue): linkflow.links.claimed.<integration>
//   - LINKFLOW_EVENTS (limits, EventsMaxAge): linkflow.events.<org>.<type>
//   - LINKFLOW_DLQ (limits): linkflow.dlq.>
//   - LINKFLOW_ADVISORIES (work queue, LinksMaxAge): JetStream's
//     MAX_DELIVERIES advisories of LINKFLOW_LINKS
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c StreamConfig) error {
	c = c.withDefaults()
	storage := jetstream.FileStorage
	if c.Memory {
		storage = jetstream.MemoryStorage
	}
	streams := []jetstream.StreamConfig{
		{
			Name: StreamLinks, Subjects: []string{SubjectClaimed + "*"},
			Retention: jetstream.WorkQueuePolicy, MaxAge: c.LinksMaxAge,
		},
		{
			Name: StreamEvents, Subjects: []string{SubjectEvents + ">"},
			Retention: jetstream.LimitsPolicy, MaxAge: c.EventsMaxAge,
		},
		{
			Name: StreamDLQ, Subjects: []string{SubjectsDLQ},
			Retention: jetstream.LimitsPolicy, MaxAge: c.DLQMaxAge,
			// A worker copies a message the workers gave up on before it
			// fails its link, which may wait for Redis for up to an hour;
			// a worker that takes the advisory over after that copies it
			// again, with the same message id. Dead letters are few.
			Duplicates: min(max(c.DuplicateWindow, DeadLetterDuplicateWindow), c.DLQMaxAge),
		},
		{
			Name: StreamAdvisories, Subjects: []string{SubjectMaxDeliveries},
			Retention: jetstream.WorkQueuePolicy, MaxAge: c.LinksMaxAge,
		},
	}
	for _, sc := range streams {
		sc.Storage = storage
		sc.Replicas = c.Replicas
		sc.Duplicates = cmp.Or(sc.Duplicates, c.DuplicateWindow)
		sc, err := keepOperatorSettings(ctx, js, sc)
		if err != nil {
			return fmt.Errorf("ensure stream %s: read it: %w", sc.Name, err)
		}
		_, err = js.CreateOrUpdateStream(ctx, sc)
		var api *jetstream.APIError
		if sc.Duplicates > c.DuplicateWindow && errors.As(err, &api) && api.ErrorCode == 10052 {
			// A longer window than the common one, on a server or account
			// whose max_duplicate_window is shorter: the common window,
			// rather than no start at all.
			sc.Duplicates = c.DuplicateWindow
			_, err = js.CreateOrUpdateStream(ctx, sc)
		}
		if err != nil {
			if old, serr := js.Stream(ctx, sc.Name); serr == nil && old.CachedInfo().Config.Retention != sc.Retention {
				// JetStream cannot change a stream's retention: a stream
				// an older linkflow made stays as it is (docs/upgrading.md).
				return &ConfigError{Field: "Streams", Err: fmt.Errorf("stream %s was made by an older linkflow (%s retention, "+
					"this one needs %s): see docs/upgrading.md (delete the stream once the old fleet is done)",
					sc.Name, old.CachedInfo().Config.Retention, sc.Retention)}
			}
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// ConsumerConfig configures the workers' durable consumers.
type ConsumerConfig struct {
	// AckWait is how long JetStream waits for an ack before redelivering;
	// workers keep long sessions alive with InProgress. Default 30s.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one message, a backstop behind the
	// worker's own attempt limit (deliveries also count lease conflicts and
	// shutdown hand-backs). Past it, the message goes to the dead-letter
	// stream. Default 20.
	MaxDeliver int
	// MaxAckPending bounds messages in flight per integration across all
	// workers. Default 20000.
	MaxAckPending int
	// PullExpiry is how long one pull request waits for messages (see
	// MessagesOptions). Default 30s; at least 1s.
	PullExpiry time.Duration
}

// WithDefaults returns c with its zero fields set to the documented defaults.
func (c ConsumerConfig) WithDefaults() ConsumerConfig {
	c.PullExpiry = cmp.Or(c.PullExpiry, jetstream.DefaultExpires)
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, 20)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, 20000)
	return c
}

// MessagesOptions are the options of a consumer's message iterator: batch
// messages at a time, pull requests that last expiry, and Next reporting
// jetstream.ErrNoHeartbeat when two of the heartbeats JetStream sends at
// half of expiry did not come. A consumer deleted under a running
// iterator is one cause; without that report the iterator would pull from
// it in silence forever (see ConsumerGone).
func MessagesOptions(batch int, expiry time.Duration) []jetstream.PullMessagesOpt {
	return []jetstream.PullMessagesOpt{jetstream.PullMaxMessages(max(1, batch)),
		jetstream.PullExpiry(max(expiry, time.Second)), jetstream.WithMessagesErrOnMissingHeartbeat(true)}
}

// ConsumerGone says whether the durable consumer name of stream does not
// exist: after missed heartbeats, whether to create it again (which a
// running iterator then pulls from; one that JetStream ended must be made
// again too).
func ConsumerGone(ctx context.Context, js jetstream.JetStream, stream, name string) bool {
	_, err := js.Consumer(ctx, stream, name)
	return errors.Is(err, jetstream.ErrConsumerNotFound)
}

// EnsureWorkerConsumer creates or updates the durable consumer of one
// integration's claimed messages.
func EnsureWorkerConsumer(ctx context.Context, js jetstream.JetStream, integration string, c ConsumerConfig) (jetstream.Consumer, error) {
	c = c.WithDefaults()
	cons, err := js.CreateOrUpdateConsumer(ctx, StreamLinks, jetstream.ConsumerConfig{
		Durable:       WorkerConsumer(integration),
		FilterSubject: SubjectClaimed + integration,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		MaxAckPending: c.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer for %s: %w", integration, err)
	}
	return cons, nil
}

// AdvisoryAckWait is how long a worker holds a max-deliveries advisory
// before JetStream hands it to another: the worker reports progress while
// it waits for Redis (at most every 30 seconds).
const AdvisoryAckWait = 2 * time.Minute

// EnsureAdvisoryConsumer creates or updates the workers' durable consumer of
// max-deliveries advisories (StreamAdvisories).
func EnsureAdvisoryConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, StreamAdvisories, jetstream.ConsumerConfig{
		Durable:       AdvisoryConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AdvisoryAckWait,
		MaxAckPending: 100,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure the advisories' consumer: %w", err)
	}
	return cons, nil
}

// DispatcherConsumerConfig configures the dispatchers' durable consumer.
type DispatcherConsumerConfig struct {
	// AckWait is how long JetStream waits for a dispatcher to accept an
	// event. Default 30s.
	AckWait time.Duration
	// MaxAckPending bounds events being accepted across all dispatchers.
	// Default 1000.
	MaxAckPending int
}

// EnsureDispatcherConsumer creates or updates the durable consumer of events
// every dispatcher shares.
func EnsureDispatcherConsumer(ctx context.Context, js jetstream.JetStream, c DispatcherConsumerConfig) (jetstream.Consumer, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, StreamEvents, jetstream.ConsumerConfig{
		Durable:       DispatcherConsumer,
		FilterSubject: SubjectEvents + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cmp.Or(c.AckWait, 30*time.Second),
		MaxAckPending: cmp.Or(c.MaxAckPending, 1000),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure dispatcher consumer: %w", err)
	}
	return cons, nil
}

// CheckStreams reports whether linkflow's streams exist (readiness).
func CheckStreams(ctx context.Context, js jetstream.JetStream) error {
	var errs []error
	for _, name := range []string{StreamLinks, StreamEvents, StreamDLQ, StreamAdvisories} {
		if _, err := js.Stream(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// keepOperatorSettings is sc laid over the stream's configuration, when the
// stream exists: linkflow's fields replace the stream's, and the rest stays
// as an operator set it (an update from sc alone would undo a cap on the
// stream's bytes at every start). A stream that cannot be read (a cluster
// electing its leader) is an error, which the caller's wait tries again:
// an update from sc alone would succeed meanwhile and undo the cap.
func keepOperatorSettings(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) (jetstream.StreamConfig, error) {
	st, err := js.Stream(ctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return sc, nil
	}
	if err != nil {
		return sc, err
	}
	cur := st.CachedInfo().Config
	cur.Subjects, cur.Retention, cur.Storage, cur.Replicas = sc.Subjects, sc.Retention, sc.Storage, sc.Replicas
	cur.Duplicates, cur.MaxAge = sc.Duplicates, sc.MaxAge
	return cur, nil
}
