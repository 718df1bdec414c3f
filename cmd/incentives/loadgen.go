package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/bench/loadgen"
)

// defaultLoadgenCount is how many events loadgen sends when neither --count
// nor --duration is given: enough to see a rate, not so many that a
// forgotten run floods the broker.
const defaultLoadgenCount = 100_000

// loadgenOptions are the flags of `incentives loadgen`.
type loadgenOptions struct {
	brokers, embeddedAddr, topic string
	partitions                   int
	rate                         float64
	count                        int64
	duration                     time.Duration
	tenantIDs, actions           string
	gen                          loadgen.Config
}

// runLoadgen produces realistic ActionEvents to tenant-events, at a target
// rate or flat out, for load tests of the engine (issue 4).
func runLoadgen(ctx context.Context, env environment, args []string) error {
	var o loadgenOptions
	fs := newFlagSet(env, "loadgen", "loadgen [flags]")
	b := newBinder(fs, env.getenv)
	b.string(&o.brokers, "kafka-brokers", embedded, `broker list; "embedded" means the embedded broker of a running platform or of 'incentives broker'`)
	fs.StringVar(&o.brokers, "brokers", o.brokers, "same as --kafka-brokers")
	b.string(&o.embeddedAddr, "kafka-embedded-addr", defaultEmbeddedAddr, "address of the embedded broker")
	b.int(&o.partitions, "kafka-partitions", 8, "partitions of the topic if loadgen has to create it")
	fs.StringVar(&o.topic, "topic", kafka.TenantEventsTopic, "topic to produce to")
	fs.Float64Var(&o.rate, "rate", 0, "events per second; 0 sends as fast as the broker takes them")
	fs.Int64Var(&o.count, "count", defaultLoadgenCount, "events to send; 0 for no limit (the default is dropped when --duration is given)")
	fs.DurationVar(&o.duration, "duration", 0, "how long to send; 0 for no limit")
	fs.IntVar(&o.gen.Tenants, "tenants", 3, "tenant ids to derive from --seed, beside --tenant-ids (which makes it 0 unless given)")
	fs.StringVar(&o.tenantIDs, "tenant-ids", "", "comma-separated tenant ids to use as they are (tenants created through the API)")
	fs.Uint64Var(&o.gen.Seed, "seed", 1, "seed of the derived tenant ids: the same seed names the same tenants")
	fs.Uint64Var(&o.gen.StreamSeed, "stream-seed", 0, "seed of users, actions, payloads and event ids; 0 picks one from the clock (a repeated seed repeats event ids, which the engine deduplicates)")
	fs.IntVar(&o.gen.Users, "users", 10_000, "users per tenant")
	fs.StringVar(&o.actions, "campaign-actions", strings.Join(loadgen.DefaultActions, ","), "action codes, most popular first")
	fs.Float64Var(&o.gen.Zipf, "zipf", 1.1, "Zipf exponent (> 1) of the actions' popularity")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := b.err(); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := o.resolve(set); err != nil {
		fmt.Fprintf(env.stderr, "%v\n", err)
		fs.Usage()
		return errUsage
	}
	return o.run(ctx, env)
}

// resolve applies the defaults that depend on which flags were given and
// checks the rest.
func (o *loadgenOptions) resolve(set map[string]bool) error {
	var errs []error
	if set["duration"] && !set["count"] {
		o.count = 0
	}
	if o.tenantIDs != "" && !set["tenants"] {
		o.gen.Tenants = 0
	}
	for _, s := range splitList(o.tenantIDs) {
		id, err := uuid.Parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--tenant-ids: %q is not a uuid", s))
			continue
		}
		o.gen.TenantIDs = append(o.gen.TenantIDs, id)
	}
	o.gen.Actions = splitList(o.actions)
	if o.gen.StreamSeed == 0 {
		o.gen.StreamSeed = uint64(time.Now().UnixNano())
	}
	if o.rate < 0 || o.count < 0 || o.duration < 0 {
		errs = append(errs, errors.New("--rate, --count and --duration must not be negative"))
	}
	if o.partitions < 1 {
		errs = append(errs, errors.New("--kafka-partitions must be at least 1"))
	}
	return errors.Join(errs...)
}

func (o *loadgenOptions) run(ctx context.Context, env environment) error {
	gen, err := loadgen.New(o.gen)
	if err != nil {
		return err
	}
	brokers := (&Config{KafkaBrokers: o.brokers}).brokerList()
	if brokers == nil {
		brokers = []string{o.embeddedAddr}
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = kafka.EnsureTopics(tctx, brokers, []kafka.TopicSpec{{Name: o.topic, Partitions: int32(o.partitions)}})
	cancel()
	if err != nil {
		return fmt.Errorf("kafka at %s: %w (is the platform or `incentives broker` running?)", strings.Join(brokers, ","), err)
	}
	registry, _, err := avro.LoadPlatform()
	if err != nil {
		return err
	}
	producer, err := kafka.NewActionEventProducer(brokers, registry, o.topic)
	if err != nil {
		return err
	}
	defer producer.Close()

	tenants := gen.Tenants()
	fmt.Fprintf(env.stderr, "loadgen: to %s at %s; %s; %d tenants (%s), %d users each, actions %s (Zipf %g), stream seed %d\n",
		o.topic, strings.Join(brokers, ","), o.limits(), len(tenants), tenantList(tenants), o.gen.Users,
		strings.Join(o.gen.Actions, ","), o.gen.Zipf, o.gen.StreamSeed)

	start := time.Now()
	progress := startProgress(env, o.count, start, producer.Acked)
	produced, produceErr := o.produce(ctx, gen, producer, start)
	// Wait for the acks of what was produced; on Ctrl-C records not yet
	// sent were dropped with the run's context and do not hold this up.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	flushErr := producer.Flush(fctx)
	cancel()
	took := time.Since(start)
	progress.stop()

	acked := producer.Acked()
	fmt.Fprintf(env.stdout, "sent %d events to %s in %s: %.0f events/s", acked, o.topic, took.Round(time.Millisecond), float64(acked)/took.Seconds())
	if dropped := produced - acked; dropped > 0 {
		fmt.Fprintf(env.stdout, " (%d produced but not acknowledged)", dropped)
	}
	fmt.Fprintln(env.stdout)
	if produceErr == nil {
		produceErr = flushErr
	}
	if produceErr != nil && ctx.Err() == nil {
		return produceErr
	}
	return nil
}

// limits describes when the run ends and how fast it goes.
func (o *loadgenOptions) limits() string {
	var parts []string
	if o.count > 0 {
		parts = append(parts, strconv.FormatInt(o.count, 10)+" events")
	}
	if o.duration > 0 {
		parts = append(parts, "for "+o.duration.String())
	}
	if len(parts) == 0 {
		parts = append(parts, "until interrupted")
	}
	if o.rate > 0 {
		return strings.Join(parts, " or ") + fmt.Sprintf(" at %g events/s", o.rate)
	}
	return strings.Join(parts, " or ") + " flat out"
}

func tenantList(ids []uuid.UUID) string {
	const shown = 5
	var s []string
	for i, id := range ids {
		if i == shown {
			s = append(s, fmt.Sprintf("and %d more", len(ids)-shown))
			break
		}
		s = append(s, id.String())
	}
	return strings.Join(s, ", ")
}

// produce generates and produces events until the count or the duration is
// reached or ctx ends, pacing them to the rate if one is set. It returns how
// many it handed to the producer.
func (o *loadgenOptions) produce(ctx context.Context, gen *loadgen.Generator, producer *kafka.ActionEventProducer, start time.Time) (int64, error) {
	var produced int64
	for o.count == 0 || produced < o.count {
		now := time.Now()
		if ctx.Err() != nil || (o.duration > 0 && now.Sub(start) >= o.duration) {
			break
		}
		if o.rate > 0 {
			// Events due by now; when ahead, sleep a little and send the
			// next few together (1ms of events at a time).
			due := int64(o.rate * now.Sub(start).Seconds())
			if produced >= due {
				wait := time.Duration(float64(produced+1)/o.rate*float64(time.Second)) - now.Sub(start)
				select {
				case <-time.After(max(wait, 500*time.Microsecond)):
				case <-ctx.Done():
				}
				continue
			}
		}
		if err := producer.Produce(ctx, gen.Next(now)); err != nil {
			return produced, err
		}
		produced++
	}
	return produced, nil
}

// progress shows how many events the broker has acknowledged: a progress
// bar on a terminal, a line every few seconds otherwise.
type progress struct {
	done chan struct{}
	quit chan struct{}
}

func startProgress(env environment, total int64, start time.Time, acked func() int64) *progress {
	p := &progress{done: make(chan struct{}), quit: make(chan struct{})}
	if isTerminal(env.stdout) {
		go p.bar(env.stdout, total, acked)
	} else {
		go p.lines(env.stderr, start, acked)
	}
	return p
}

func (p *progress) stop() {
	close(p.quit)
	<-p.done
}

func (p *progress) bar(w io.Writer, total int64, acked func() int64) {
	defer close(p.done)
	if total == 0 {
		total = -1 // a spinner with the count and the rate
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("sent"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("events"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			_ = bar.Set64(acked())
		case <-p.quit:
			_ = bar.Set64(acked())
			_ = bar.Finish()
			return
		}
	}
}

func (p *progress) lines(w io.Writer, start time.Time, acked func() int64) {
	defer close(p.done)
	const every = 5 * time.Second
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last int64
	for {
		select {
		case now := <-tick.C:
			n := acked()
			fmt.Fprintf(w, "loadgen: sent %d events in %s, %.0f events/s over the last %s\n",
				n, now.Sub(start).Round(time.Second), float64(n-last)/every.Seconds(), every)
			last = n
		case <-p.quit:
			return
		}
	}
}
