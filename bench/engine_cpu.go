package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// this runs on (reading it properly needs cgo's sysconf).
const clockTicks = 100

// cpuSample is the CPU time (in ticks) the processes that share the machine
// had used at one moment, read from /proc.
type cpuSample struct {
	at                    time.Time
	self, postgres, redis uint64
	// busy and idle are the whole machine's, from /proc/stat.
	busy, idle uint64
	ok         bool
}

// sampleCPU reads /proc. PostgreSQL is the server's shared processes (the
// postmaster, checkpointer, WAL writer, ...) and the backends connected to
// database db; backends of other databases (other programs' tests) count
// as everything else. Redis is every redis-server.
func sampleCPU(db string) cpuSample {
	s := cpuSample{at: time.Now()}
	self, _, _, err := procTimes("/proc/self/stat")
	if err != nil {
		return s
	}
	s.self = self
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		own, _, comm, err := procTimes(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		switch comm {
		case "postgres":
			cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
			if err == nil && postgresOf(string(cmdline), db) {
				s.postgres += own
			}
		case "redis-server":
			s.redis += own
		}
	}
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	var v [8]uint64
	for i := range v {
		v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
	}
	s.idle = v[3] + v[4]
	s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	s.ok = true
	return s
}

// postgresOf reports whether a postgres process (by its title) works for
// database db: a backend or autovacuum worker of db, or one of the server's
// shared processes.
func postgresOf(cmdline, db string) bool {
	title := strings.ReplaceAll(cmdline, "\x00", " ")
	if strings.Contains(title, "(") || strings.Contains(title, "autovacuum worker") { // a client backend: user db host(port)
		return strings.Contains(title, " "+db+" ")
	}
	return true
}

// procTimes returns a process's own CPU ticks (utime+stime), those of its
// reaped children (cutime+cstime) and its name.
func procTimes(path string) (own, children uint64, comm string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, "", err
	}
	open, closing := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || closing < open {
		return 0, 0, "", fmt.Errorf("%s: unexpected format", path)
	}
	comm = string(raw[open+1 : closing])
	f := strings.Fields(string(raw[closing+1:])) // from field 3 (state)
	if len(f) < 15 {
		return 0, 0, "", fmt.Errorf("%s: unexpected format", path)
	}
	var t [4]uint64
	for i := range t {
		t[i], _ = strconv.ParseUint(f[11+i], 10, 64) // utime, stime, cutime, cstime: fields 14-17
	}
	return t[0] + t[1], t[2] + t[3], comm, nil
}

// cpuShares renders who used the cores between two samples.
func cpuShares(a, b cpuSample) string {
	if !a.ok || !b.ok {
		return "(CPU shares unavailable: /proc could not be read)\n"
	}
	wall := b.at.Sub(a.at).Seconds()
	capacity := wall * clockTicks * float64(runtime.NumCPU())
	share := func(ticks uint64) string { return fmt.Sprintf("%.0f%%", 100*float64(ticks)/capacity) }
	cores := func(ticks uint64) string { return fmt.Sprintf("%.2f", float64(ticks)/clockTicks/wall) }
	self, pg, rd := b.self-a.self, b.postgres-a.postgres, b.redis-a.redis
	busy := b.busy - a.busy
	other := int64(busy) - int64(self+pg+rd)
	if other < 0 {
		other = 0
	}
	t := &table{header: []string{"process", "cores used", fmt.Sprintf("share of the %d cores", runtime.NumCPU())}}
	t.add("bench process: engine, embedded Kafka broker, profiler", cores(self), share(self))
	t.add("PostgreSQL: this database's backends, the server's shared processes", cores(pg), share(pg))
	t.add("redis-server", cores(rd), share(rd))
	t.add("everything else: kernel, other programs (other databases' backends included)", cores(uint64(other)), share(uint64(other)))
	t.add("idle", cores(b.idle-a.idle), share(b.idle-a.idle))
	return t.String()
}

// cpuLine says in a few words who used the cores between two samples.
func cpuLine(a, b cpuSample) string {
	if !a.ok || !b.ok {
		return "(CPU shares unavailable)"
	}
	capacity := b.at.Sub(a.at).Seconds() * clockTicks * float64(runtime.NumCPU())
	share := func(ticks uint64) string { return fmt.Sprintf("%.0f%%", 100*float64(ticks)/capacity) }
	self, pg, rd := b.self-a.self, b.postgres-a.postgres, b.redis-a.redis
	other := max(0, int64(b.busy-a.busy)-int64(self+pg+rd))
	return fmt.Sprintf("the bench process %s of the cores, PostgreSQL %s, Redis %s, everything else %s, idle %s",
		share(self), share(pg), share(rd), share(uint64(other)), share(b.idle-a.idle))
}

// idleShare is the share of the cores idle between two samples.
func idleShare(a, b cpuSample) float64 {
	if !a.ok || !b.ok {
		return 0
	}
	return float64(b.idle-a.idle) / (b.at.Sub(a.at).Seconds() * clockTicks * float64(runtime.NumCPU()))
}

// otherShare is the share of the cores busy outside the bench process,
// PostgreSQL and Redis between two samples: other work on the machine.
func otherShare(a, b cpuSample) float64 {
	if !a.ok || !b.ok {
		return 0
	}
	other := max(0, int64(b.busy-a.busy)-int64((b.self-a.self)+(b.postgres-a.postgres)+(b.redis-a.redis)))
	return float64(other) / (b.at.Sub(a.at).Seconds() * clockTicks * float64(runtime.NumCPU()))
}

// cpuPerEvent returns the CPU time, in µs per event, the bench process,
// PostgreSQL and Redis spent between two samples over n events.
func cpuPerEvent(a, b cpuSample, n int) (self, pg, rd float64) {
	per := func(ticks uint64) float64 { return float64(ticks) / clockTicks * 1e6 / float64(n) }
	return per(b.self - a.self), per(b.postgres - a.postgres), per(b.redis - a.redis)
}

// profileSummary is what a CPU profile says, grouped for the report.
type profileSummary struct {
	total time.Duration // sampled CPU time
	// self attributes each sample to the first frame, from the leaf up,
	// that is not Go plumbing (runtime, syscalls, sync, ...): the code that
	// caused the work. cum counts each component once per sample it is on.
	self, cum map[string]time.Duration
	// funcs is cumulative time per function, flat the leaf's time.
	funcs, flat map[string]time.Duration
}

// analyzeProfile runs `go tool pprof -traces` on a CPU profile and groups
// its samples by component.
func analyzeProfile(ctx context.Context, path string) (profileSummary, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(ctx, goBin, "tool", "pprof", "-traces", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return profileSummary{}, fmt.Errorf("go tool pprof: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	s := profileSummary{self: map[string]time.Duration{}, cum: map[string]time.Duration{},
		funcs: map[string]time.Duration{}, flat: map[string]time.Duration{}}
	var (
		value  time.Duration
		frames []string
		inBody bool
	)
	flush := func() {
		if len(frames) > 0 {
			s.add(value, frames)
		}
		frames = frames[:0]
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			inBody = true
			continue
		}
		if !inBody || strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' || len(line) < 13 {
			continue
		}
		head, frame := strings.TrimSpace(line[:11]), strings.TrimSpace(line[11:])
		if head != "" {
			if len(frames) > 0 {
				flush()
			}
			d, err := time.ParseDuration(head)
			if err != nil {
				continue // a label line
			}
			value = d
		}
		frame = strings.TrimSuffix(frame, " (inline)")
		if frame != "" {
			frames = append(frames, frame)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return s, err
	}
	if s.total == 0 {
		return s, fmt.Errorf("go tool pprof: no samples in %s", path)
	}
	return s, nil
}

func (s *profileSummary) add(v time.Duration, frames []string) {
	s.total += v
	s.flat[frames[0]] += v
	responsible := ""
	for _, f := range frames {
		if !plumbing(pkgOf(f)) {
			responsible = component(f)
			break
		}
	}
	if responsible == "" {
		responsible = runtimeComponent(frames)
	}
	s.self[responsible] += v
	seenC, seenF := map[string]bool{}, map[string]bool{}
	for _, f := range frames {
		c := component(f)
		if plumbing(pkgOf(f)) {
			c = runtimeCum(f)
		}
		if c != "" && !seenC[c] {
			seenC[c] = true
			s.cum[c] += v
		}
		if !seenF[f] {
			seenF[f] = true
			s.funcs[f] += v
		}
	}
}

// pkgOf returns the package path of a function name as pprof prints it.
// Runtime assembly (aeshashbody, gcWriteBarrier) and compiler-made hash and
// equality functions (type:.hash..., type:.eq...) count as the runtime.
func pkgOf(fn string) string {
	if i := strings.IndexByte(fn, '['); i >= 0 { // a generic instance's shape
		fn = fn[:i]
	}
	if !strings.Contains(fn, ".") || strings.HasPrefix(fn, "type:") {
		return "runtime"
	}
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}

// plumbing reports whether pkg is Go machinery that works for its caller.
func plumbing(pkg string) bool {
	switch pkg {
	case "runtime", "syscall", "sync", "sync/atomic", "net", "os", "time", "io", "bufio", "bytes", "strings", "strconv",
		"reflect", "sort", "slices", "maps", "math", "math/big", "math/bits", "errors", "fmt", "context", "unicode/utf8",
		"unicode", "encoding/binary", "encoding/hex", "hash/crc32", "hash/fnv", "container/list", "iter", "unique", "weak",
		"main": // the bench's own wrappers: transparent
		return true
	}
	return strings.HasPrefix(pkg, "internal/") || strings.HasPrefix(pkg, "runtime/internal") ||
		strings.HasPrefix(pkg, "vendor/") || strings.HasPrefix(pkg, "crypto/")
}

// component names the part of the system a function belongs to.
func component(fn string) string {
	pkg := pkgOf(fn)
	const own = "github.com/incentives-platform/incentives/"
	switch {
	case strings.Contains(pkg, "franz-go/pkg/kfake"):
		return "embedded Kafka broker (kfake)"
	case strings.Contains(pkg, "franz-go/"), strings.Contains(pkg, "pierrec/lz4"), strings.Contains(pkg, "klauspost/compress"),
		strings.Contains(pkg, "golang/snappy"):
		return "Kafka client (franz-go kgo, compression)"
	case strings.Contains(pkg, "jackc/"), pkg == "database/sql", pkg == "database/sql/driver":
		return "Postgres driver (pgx, database/sql)"
	case strings.Contains(pkg, "redis/go-redis"):
		return "Redis client (go-redis)"
	case strings.Contains(pkg, "avro"):
		return "Avro (encode, decode)"
	case strings.Contains(pkg, "google/cel-go"), strings.Contains(pkg, "cel.dev/"), strings.Contains(pkg, "antlr"):
		return "CEL evaluation"
	case strings.HasPrefix(pkg, "encoding/json"):
		return "encoding/json"
	case strings.Contains(pkg, "ThreeDotsLabs/watermill"):
		return "watermill (outbox rows)"
	case strings.Contains(pkg, "shopspring/decimal"):
		return "decimal"
	case strings.Contains(pkg, "google/uuid"):
		return "uuid (v5 ids: SHA-1)"
	case pkg == "runtime/pprof":
		return "profiler"
	case strings.HasPrefix(pkg, own):
		return "platform: " + strings.TrimPrefix(pkg, own)
	}
	return pkg
}

// runtimeComponent names a sample made only of Go machinery.
func runtimeComponent(frames []string) string {
	for _, f := range frames {
		if strings.HasPrefix(f, "runtime.gcBgMarkWorker") || strings.HasPrefix(f, "runtime.bgsweep") || strings.HasPrefix(f, "runtime.bgscavenge") {
			return "Go runtime: background GC"
		}
	}
	return "Go runtime: scheduler, netpoll, syscalls"
}

// runtimeCum names the runtime costs worth a cumulative line.
func runtimeCum(fn string) string {
	switch {
	case strings.HasPrefix(fn, "runtime.mallocgc"), strings.HasPrefix(fn, "runtime.gcBgMarkWorker"),
		strings.HasPrefix(fn, "runtime.gcAssistAlloc"), strings.HasPrefix(fn, "runtime.bgsweep"):
		return "Go runtime: allocation and GC (all of it)"
	case strings.HasPrefix(fn, "syscall.Syscall"), strings.HasPrefix(fn, "syscall.RawSyscall"),
		strings.HasPrefix(fn, "internal/runtime/syscall."):
		return "syscalls (network I/O)"
	}
	return ""
}

// profileTables renders the summary: components by self and cumulative
// share, then the top functions by cumulative share.
func profileTables(s profileSummary, wall time.Duration, topN int) string {
	share := func(d time.Duration) string { return fmt.Sprintf("%.1f%%", 100*d.Seconds()/s.total.Seconds()) }
	cores := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()/wall.Seconds()) }
	names := map[string]bool{}
	for k := range s.self {
		names[k] = true
	}
	for k := range s.cum {
		names[k] = true
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if s.self[keys[i]] != s.self[keys[j]] {
			return s.self[keys[i]] > s.self[keys[j]]
		}
		return s.cum[keys[i]] > s.cum[keys[j]]
	})
	t := &table{header: []string{"component (bench process)", "self", "cores", "cumulative"}}
	var rest time.Duration
	for _, k := range keys {
		if s.self[k] < s.total/200 && s.cum[k] < s.total/50 {
			rest += s.self[k]
			continue
		}
		self, c, cum := "—", "—", "—"
		if s.self[k] > 0 {
			self, c = share(s.self[k]), cores(s.self[k])
		}
		if s.cum[k] > 0 {
			cum = share(s.cum[k])
		}
		t.add(k, self, c, cum)
	}
	if rest > 0 {
		t.add("the rest", share(rest), cores(rest), "—")
	}

	fns := make([]string, 0, len(s.funcs))
	for f := range s.funcs {
		if p := pkgOf(f); plumbing(p) || strings.HasPrefix(f, "runtime.") || genericFrame(f) {
			continue
		}
		fns = append(fns, f)
	}
	sort.Slice(fns, func(i, j int) bool {
		if s.funcs[fns[i]] != s.funcs[fns[j]] {
			return s.funcs[fns[i]] > s.funcs[fns[j]]
		}
		return fns[i] < fns[j]
	})
	f := &table{header: []string{"function (bench process)", "cumulative", "flat"}}
	for _, fn := range fns[:min(topN, len(fns))] {
		f.add("`"+shortFunc(fn)+"`", share(s.funcs[fn]), share(s.flat[fn]))
	}
	return t.String() + "\n" + f.String()
}

// genericFrame reports the consumer's loop frames, on every sample of a
// batch: they say nothing about where its time goes.
func genericFrame(fn string) bool {
	const c = "github.com/incentives-platform/incentives/adapters/kafka.(*EngineConsumer)."
	if !strings.HasPrefix(fn, c) {
		return false
	}
	m := strings.TrimPrefix(fn, c)
	return m == "Run" || m == "loop" || m == "retry" || strings.HasPrefix(m, "process.func")
}

// notableCosts are functions worth naming in the report, with what they
// stand for.
var notableCosts = []struct{ fn, what string }{
	{"github.com/jackc/pgx/v5/pgtype.(*encodePlanDriverValuer).Encode",
		"pgx encoding google/uuid's `UUID` through `driver.Valuer`: `Value()` formats a string, its binary encode fails, the string is parsed back"},
	{"github.com/jackc/pgx/v5/pgtype.newEncodeError", "… of which building the error of that failed encode (`fmt.Errorf`), thrown away"},
	{"github.com/jackc/pgx/v5.(*copyFrom).buildCopyBuf", "pgx building `COPY` rows (events, decisions)"},
	{"encoding/json.Marshal", "`json.Marshal` (decision inputs and limits, IncentiveIssued payloads)"},
	{"github.com/incentives-platform/incentives/adapters/kafka.DecodeActionEvent", "decoding action events (Avro, then the JSON payload)"},
	{"github.com/incentives-platform/incentives/domain/engine.EvaluateVars", "evaluating campaigns (CEL, quests)"},
	{"github.com/incentives-platform/incentives/adapters/postgres.(*EventStore).createStreamsTx", "appending IncentiveIssued events with outbox rows"},
	{"runtime.gcBgMarkWorker", "background GC"},
	{"runtime.mallocgc", "allocation (incl. GC assists)"},
}

// notableTable renders the cumulative share of each notable cost found.
func notableTable(s profileSummary) string {
	t := &table{header: []string{"cost (on the stack)", "function", "of the bench process"}}
	for _, n := range notableCosts {
		if d := s.funcs[n.fn]; d > 0 {
			t.add(n.what, "`"+shortFunc(n.fn)+"`", fmt.Sprintf("%.1f%%", 100*d.Seconds()/s.total.Seconds()))
		}
	}
	return t.String()
}

// shortFunc drops a function's module prefix.
func shortFunc(fn string) string {
	for _, p := range []string{"github.com/incentives-platform/incentives/", "github.com/twmb/franz-go/pkg/", "github.com/jackc/pgx/v5/",
		"github.com/"} {
		if strings.HasPrefix(fn, p) {
			return strings.TrimPrefix(fn, p)
		}
	}
	return fn
}
