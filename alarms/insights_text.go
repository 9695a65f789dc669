package alarms

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteResult prints a result as a small table, its total and its
// statistics.
func WriteResult(w io.Writer, q Query, res Result, excluded bool) {
	fmt.Fprintf(w, "%s: %s\n", q.Name, q.Description)
	fmt.Fprintf(w, "log groups: %s\n", strings.Join(res.LogGroups, ", "))
	fmt.Fprintf(w, "window: %s to %s\n", res.Start.UTC().Format(time.RFC3339), res.End.UTC().Format(time.RFC3339))
	if excluded {
		fmt.Fprintln(w, "lines claiming to be the probe's deliberate rejections (User-Agent valine-check-deliberate/…) are left out")
	}
	fmt.Fprintln(w)
	if len(res.Rows) == 0 {
		fmt.Fprintln(w, "no matching lines")
	} else {
		cols := resultColumns(res.Rows, q.Field)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		head := make([]string, len(cols))
		for i, c := range cols {
			head[i] = strings.ToUpper(c)
			if strings.HasPrefix(c, "bin(") {
				head[i] += " UTC"
			}
		}
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		for _, row := range res.Rows {
			vals := make([]string, len(cols))
			for i, c := range cols {
				vals[i] = row[c]
				if strings.HasPrefix(c, "bin(") {
					vals[i] = strings.TrimSuffix(vals[i], ".000")
				}
			}
			fmt.Fprintln(tw, strings.Join(vals, "\t"))
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "\ntotal %s: %g\n", q.Field, res.Total(q.Field))
	s := res.Statistics
	fmt.Fprintf(w, "statistics: %s in %s after %d poll(s); %g records matched, %g scanned (%s) in %g log group(s)\n",
		res.Status, res.Duration.Round(time.Millisecond), res.Polls, s.RecordsMatched, s.RecordsScanned, readableBytes(s.BytesScanned), s.LogGroupsScanned)
}

// resultColumns orders a result's fields: the grouping fields by name, the
// counted field last.
func resultColumns(rows []map[string]string, counted string) []string {
	seen := map[string]bool{}
	for _, r := range rows {
		for k := range r {
			seen[k] = true
		}
	}
	var cols []string
	for k := range seen {
		if k != counted {
			cols = append(cols, k)
		}
	}
	slices.Sort(cols)
	if seen[counted] {
		cols = append(cols, counted)
	}
	return cols
}

func readableBytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%g bytes", b)
}
