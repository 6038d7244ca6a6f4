package delivery

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Tolerance is how far two delays (or, for scenarios without visible attempts, two Elapsed
// times) may differ and still agree: 300 ms plus a quarter of the longer one. It absorbs a busy
// machine and the HTTP hops of the real Broker, whichever column is late; a backoff formula that
// halves or doubles the delays (kncloudevents' in-process retries against eventing-natss's NAK
// delay) still disagrees from TableSpec's third delay on (0.8 s against 1.6 s).
func Tolerance(a, b time.Duration) time.Duration { return 300*time.Millisecond + max(a, b)/4 }

func within(a, b time.Duration) bool { return (a - b).Abs() <= Tolerance(a, b) }

// Agree reports whether a result agrees with the reference result ref of the same scenario:
// the same attempts, outcome, replies and dead-letter extensions, dead letters or none, and
// delays within Tolerance. How many dead letters does not count: Knative delivers at least
// once, to the dead-letter sink too, and the real Broker's dispatcher sent one scenario's dead
// letter 8 times on a loaded machine (its dead-letter request runs with the Trigger's timeout
// and retries, inside the message's ack wait); the table shows the count.
func Agree(ref, got Result) bool {
	if ref.Attempts != got.Attempts || ref.Outcome != got.Outcome || (ref.DeadLetters == 0) != (got.DeadLetters == 0) ||
		ref.Replies != got.Replies || len(ref.Delays) != len(got.Delays) || !maps.Equal(ref.DeadLetterExtensions, got.DeadLetterExtensions) {
		return false
	}
	for i := range ref.Delays {
		if !within(ref.Delays[i], got.Delays[i]) {
			return false
		}
	}
	return ref.Attempts != 0 || within(ref.Elapsed, got.Elapsed)
}

// Table prints the columns (one per Broker, named by names, in that order) side by side, one
// row per scenario, each column's dead-letter extensions under the row, and marks with "≠" the
// rows where a column does not agree with the first one (the reference, see Agree). disagreements counts those rows; a
// scenario missing from a column is one.
func Table(names []string, columns ...[]Result) (text string, disagreements int) {
	var rows []string
	byCol := make([]map[string]Result, len(columns))
	for i, col := range columns {
		byCol[i] = map[string]Result{}
		for _, r := range col {
			byCol[i][r.Scenario] = r
			if !slices.Contains(rows, r.Scenario) {
				rows = append(rows, r.Scenario)
			}
		}
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(w, "  \tscenario")
	for i := range columns {
		fmt.Fprintf(w, "\t%s", column(names, i))
	}
	fmt.Fprintln(w)
	var notes []string
	for _, row := range rows {
		mark := " "
		first, ok := byCol[0][row]
		for i := range columns {
			r, has := byCol[i][row]
			if !has || !ok || !Agree(first, r) {
				mark = "≠"
			}
		}
		if mark != " " {
			disagreements++
		}
		fmt.Fprintf(w, "%s\t%s", mark, row)
		for i := range columns {
			r, has := byCol[i][row]
			if !has {
				fmt.Fprint(w, "\t(not run)")
				continue
			}
			fmt.Fprintf(w, "\t%s", cell(r))
			if len(r.DeadLetterExtensions) > 0 {
				notes = append(notes, fmt.Sprintf("  %s, %s: %s", row, column(names, i), extensions(r.DeadLetterExtensions)))
			}
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush()
	if len(notes) > 0 {
		b.WriteString("dead-letter extensions (knativeerrordata decoded):\n")
		b.WriteString(strings.Join(notes, "\n"))
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d disagreement(s); two delays agree within 300 ms + 25%% of the longer one\n", disagreements)
	return b.String(), disagreements
}

func column(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("column %d", i+1)
}

// cell is one result in a line: "4 attempts, delays 0.40 0.80 1.60 s, dead-lettered".
func cell(r Result) string {
	var parts []string
	switch r.Attempts {
	case 0:
		parts = append(parts, fmt.Sprintf("no attempt seen, %.2f s", r.Elapsed.Seconds()))
	case 1:
		parts = append(parts, "1 attempt")
	default:
		var ds []string
		for _, d := range r.Delays {
			ds = append(ds, fmt.Sprintf("%.2f", d.Seconds()))
		}
		parts = append(parts, fmt.Sprintf("%d attempts, delays %s s", r.Attempts, strings.Join(ds, " ")))
	}
	out := r.Outcome
	if r.DeadLetters > 1 {
		out = fmt.Sprintf("%s %d times", out, r.DeadLetters)
	}
	parts = append(parts, out)
	if r.Replies > 0 {
		parts = append(parts, fmt.Sprintf("%d reply", r.Replies))
	}
	return strings.Join(parts, ", ")
}

func extensions(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if len(v) > 120 {
			v = v[:120] + "…"
		}
		parts = append(parts, fmt.Sprintf("%s=%q", strings.TrimPrefix(k, "knative"), v))
	}
	return strings.Join(parts, " ")
}
