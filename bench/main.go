// Command bench measures the platform and writes the figures into
// BENCHMARKS.md, each beside the reference it should be read against,
// measured in the same run on the same machine:
//
//	go run ./bench                          print the report
//	go run ./bench -write BENCHMARKS.md     also replace its sections in the file
//	go run ./bench -only spine -duration 10s
//
// Each suite owns a section of BENCHMARKS.md between the markers
// <!-- bench:NAME --> and <!-- /bench:NAME -->; the rest of the file is left
// alone. It needs the local PostgreSQL (TEST_DATABASE_URL, as the tests) and
// starts its own embedded Kafka broker.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
)

// suite is one section of BENCHMARKS.md.
type suite struct {
	name string
	run  func(ctx context.Context, o options) (string, error)
}

type options struct {
	duration time.Duration
	logger   *slog.Logger
}

func suites() []suite {
	return []suite{
		{"spine", runSpine},
		{"campaigns", runCampaigns},
		{"limits", runLimits},
		{"engine", runEngine},
		{"dcm", runDCM},
		{"sketch", runSketch},
		{"hotmem", runHotMem},
		{"replay", runReplay},
	}
}

func main() {
	var (
		write    = flag.String("write", "", "file whose bench sections to replace (BENCHMARKS.md)")
		only     = flag.String("only", "", "run only this suite")
		duration = flag.Duration("duration", 5*time.Second, "how long each timed figure runs")
		verbose  = flag.Bool("v", false, "log progress")
	)
	flag.Parse()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o := options{duration: *duration, logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	if err := run(ctx, o, *only, *write, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, only, write string, out io.Writer) error {
	// Suites clone their databases from one migrated template, made once.
	defer func() { _ = pgtest.DropTemplate() }()
	for _, s := range suites() {
		if only != "" && s.name != only {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: running %s (%v per figure)...\n", s.name, o.duration)
		section, err := s.run(ctx, o)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintln(out, section)
		if write != "" {
			if err := replaceSection(write, s.name, section); err != nil {
				return err
			}
		}
	}
	return nil
}

// replaceSection puts body between the suite's markers in file, appending
// the section if the file has none yet.
func replaceSection(file, name, body string) error {
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	begin, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	block := begin + "\n" + strings.TrimSpace(body) + "\n" + end
	re := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(begin) + `.*?` + regexp.QuoteMeta(end))
	var updated string
	if re.Match(old) {
		updated = re.ReplaceAllLiteralString(string(old), block)
	} else {
		updated = strings.TrimRight(string(old), "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(file, []byte(updated), 0o644)
}

// machine describes where the figures were measured.
func machine() string {
	return fmt.Sprintf("%d cores, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
