package proof

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Table prints one metric per line, "name value unit", so that runs compare with diff.
type Table struct {
	mu  sync.Mutex
	out io.Writer
}

// NewTable writes to out.
func NewTable(out io.Writer) *Table { return &Table{out: out} }

// Add prints a metric; values print with up to 3 decimals, integers without.
func (t *Table) Add(name string, value float64, unit string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strconv.FormatFloat(value, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	fmt.Fprintf(t.out, "%s %s %s\n", name, s, unit)
}

// Note prints a comment line ("# ..."), which comparisons skip.
func (t *Table) Note(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "# "+format+"\n", args...)
}

// Percentile of sorted durations, in milliseconds; q in [0,1].
func Percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Load is the outcome of a run of requests.
type Load struct {
	Latencies []time.Duration // of the successful requests, sorted
	Errors    int64
	Elapsed   time.Duration
	FirstErr  error
}

// Run calls do(i) for i in [0,n) from conc goroutines; do reports success or an error.
func Run(n, conc int, do func(i int) error) Load {
	var next atomic.Int64
	var errs atomic.Int64
	var mu sync.Mutex
	var first error
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				began := time.Now()
				if err := do(i); err != nil {
					errs.Add(1)
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(began))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	l := Load{Latencies: lat, Errors: errs.Load(), Elapsed: time.Since(start), FirstErr: first}
	slices.Sort(l.Latencies)
	return l
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on Linux.
const clockTick = 100

// CPUTime is the user+system CPU time a process used so far (0 when unreadable).
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it are fixed.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTick
}

// RSS is the resident set size of a process in MiB (VmRSS), 0 when unreadable.
func RSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
