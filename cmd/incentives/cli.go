package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand: it parses its own flags and runs.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env environment, args []string) error
}

// environment is what a subcommand may touch of the outside world, passed in
// so tests run commands in-process.
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func commandList() []command {
	return []command{
		{"serve", "run the platform (roles api, engine, projector, relay, dcm)", runServe},
		{"migrate", "create the database if needed and apply migrations", runMigrate},
		{"token", "print a signed development JWT", runToken},
		{"broker", "run the embedded Kafka-protocol broker alone", runBroker},
		{"replay", "rebuild read models from the event store and swap them in while serving", runReplay},
		{"tail", "print a topic's records as JSON lines", runTail},
		{"loadgen", "produce realistic action events to tenant-events, for load tests", runLoadgen},
		{"version", "print the build version", runVersion},
	}
}

// errUsage is returned after the usage has been printed: exit code 2.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	env := environment{stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commandList() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "incentives %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "incentives: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: incentives <command> [flags]\n\nCommands:")
	for _, c := range commandList() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'incentives <command> --help' for a command's flags.")
}

// newFlagSet returns a flag set that prints errors and usage to env.stderr.
func newFlagSet(env environment, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "Usage: incentives %s\n\nFlags (each also read from the environment variable shown):\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, turning a flag error into errUsage (already printed).
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return errUsage
	}
	if err == nil && fs.NArg() > 0 && fs.Name() != "tail" {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return errUsage
	}
	return err
}

// isTerminal reports whether w is a terminal, for human-friendly output.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
