package alarms

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// PlanSummary counts a plan's changes by kind.
func PlanSummary(plan Changes) map[string]int {
	out := map[string]int{}
	for _, k := range []Kind{Create, Update, Delete, Unchanged} {
		out[string(k)] = plan.Count(k)
	}
	return out
}

// changeLine renders one change like terraform: "+ create NAME",
// "~ update NAME (Threshold)", "- delete NAME"; a metric filter says
// "filter NAME on LOG GROUP".
func changeLine(c Change, verbs map[Kind]string) string {
	mark := map[Kind]string{Create: "+", Update: "~", Delete: "-"}[c.Kind]
	name := c.Name
	switch c.Resource {
	case ResourceFilter:
		name = "filter " + c.Name + " on " + c.LogGroup
	case ResourceDashboard:
		name = "dashboard " + c.Name
	}
	line := mark + " " + verbs[c.Kind] + " " + name
	switch {
	case c.Resource == ResourceDashboard:
		line += dashboardDetail(c) // dashboard_text.go
	case len(c.Fields) > 0:
		line += " (" + strings.Join(c.Fields, ", ") + ")"
	}
	if c.Note != "" {
		line += "\n    note: " + c.Note
	}
	return line
}

// WritePlan prints a plan as terraform does: one line per change, then the
// counts and what to run to apply it.
func WritePlan(w io.Writer, plan Changes) {
	WritePlanNext(w, plan, "run 'valine-check alarms apply' to make it so")
}

// WritePlanNext is WritePlan with next ("" for nothing) after the counts.
func WritePlanNext(w io.Writer, plan Changes, next string) {
	pending := plan.Pending()
	if len(pending) == 0 {
		fmt.Fprintf(w, "no changes: %d %s under %s are up to date\n", plan.Count(Unchanged), resourceWords(plan), plan.Prefix)
		return
	}
	verbs := map[Kind]string{Create: "create", Update: "update", Delete: "delete"}
	for _, c := range pending {
		fmt.Fprintln(w, changeLine(c, verbs))
	}
	fmt.Fprintf(w, "  unchanged: %d\n", plan.Count(Unchanged))
	if next != "" {
		next = "; " + next
	}
	fmt.Fprintf(w, "plan: %d to create, %d to update, %d to delete under %s%s\n",
		plan.Count(Create), plan.Count(Update), plan.Count(Delete), plan.Prefix, next)
}

// WriteApplied prints what an apply did, one line per change made, then
// the counts.
func WriteApplied(w io.Writer, plan Changes, done []Change) {
	if len(plan.Pending()) == 0 {
		fmt.Fprintf(w, "no changes: %d %s under %s are up to date\n", plan.Count(Unchanged), resourceWords(plan), plan.Prefix)
		return
	}
	verbs := map[Kind]string{Create: "created", Update: "updated", Delete: "deleted"}
	counts := map[Kind]int{}
	for _, c := range done {
		fmt.Fprintln(w, changeLine(c, verbs))
		counts[c.Kind]++
	}
	fmt.Fprintf(w, "  unchanged: %d\n", plan.Count(Unchanged))
	fmt.Fprintf(w, "apply: %d created, %d updated, %d deleted under %s\n", counts[Create], counts[Update], counts[Delete], plan.Prefix)
}

// WriteStatusTable prints the managed alarms' states as a table.
func WriteStatusTable(w io.Writer, prefix string, states []AlarmStatus) {
	if len(states) == 0 {
		fmt.Fprintf(w, "no alarms under %s (run 'valine-check alarms apply')\n", prefix)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALARM\tSTATE\tSINCE\tREASON")
	for _, s := range states {
		since := "-"
		if !s.UpdatedAt.IsZero() {
			since = s.UpdatedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.State, since, s.Reason)
	}
	_ = tw.Flush()
}
