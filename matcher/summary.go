package matcher

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/mailsync/mailsync/sync/sink"
)

// Summary aggregates decisions for `mailsync match --dry-run`. The zero
// value is ready to use; it is not safe for concurrent use.
type Summary struct {
	Total      int                       `json:"total"`
	Actions    map[Action]int            `json:"actions"`
	Reasons    map[Action]map[string]int `json:"reasons"`
	Rules      map[string]int            `json:"rules"`
	Directions map[Direction]int         `json:"directions"`
	// Creates counts the records auto-create would ask for, by kind.
	Creates map[sink.Kind]int `json:"would_create"`
	// ParseErrors counts messages with at least one parse error.
	ParseErrors int `json:"parse_errors"`
}

// Add counts one decision.
func (s *Summary) Add(d *Decision) {
	if s.Actions == nil {
		s.Actions = map[Action]int{}
		s.Reasons = map[Action]map[string]int{}
		s.Rules = map[string]int{}
		s.Directions = map[Direction]int{}
		s.Creates = map[sink.Kind]int{}
	}
	s.Total++
	s.Actions[d.Action]++
	if s.Reasons[d.Action] == nil {
		s.Reasons[d.Action] = map[string]int{}
	}
	s.Reasons[d.Action][d.Reason.Code]++
	if d.Action == Deliver && d.Rule != "" {
		s.Rules[d.Rule]++
	}
	s.Directions[d.Direction]++
	for _, in := range d.Intents {
		s.Creates[in.Kind]++
	}
	if len(d.ParseErrors) > 0 {
		s.ParseErrors++
	}
}

// WriteText writes the summary as an aligned table.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(label string, n int) {
		fmt.Fprintf(tw, "%s\t%7d\t%6s\n", label, n, pct(n, s.Total))
	}
	fmt.Fprintf(tw, "messages\t%7d\n", s.Total)
	for _, a := range []Action{Deliver, Exclude, Skip} {
		row(string(a), s.Actions[a])
		for _, k := range sortedKeys(s.Reasons[a]) {
			row("  "+k, s.Reasons[a][k])
		}
		if a == Deliver {
			for _, k := range sortedKeys(s.Rules) {
				row("    by rule "+k, s.Rules[k])
			}
		}
	}
	for _, k := range []Direction{Inbound, Outbound, Internal} {
		row("direction "+string(k), s.Directions[k])
	}
	creates := map[string]int{}
	for k, n := range s.Creates {
		creates[string(k)] = n
	}
	if len(creates) > 0 {
		fmt.Fprintf(tw, "would create\n")
		for _, k := range sortedKeys(creates) {
			fmt.Fprintf(tw, "  %s\t%7d\n", k, creates[k])
		}
	}
	if s.ParseErrors > 0 {
		row("with parse errors", s.ParseErrors)
	}
	return tw.Flush()
}

func pct(n, total int) string {
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

// sortedKeys returns keys by descending count, then name.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
