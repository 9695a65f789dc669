package alarms

import (
	"encoding/json"
	"fmt"
	"strings"
)

// dashboardDetail is what a plan line says about a dashboard change after
// its name: for a create, the widgets it will hold; for an update, what
// differs, one item a line (a widget's title says more than a field name).
func dashboardDetail(c Change) string {
	switch {
	case c.Kind == Create && c.Dashboard != nil:
		return fmt.Sprintf(" (%s)", widgetSummary(c.Dashboard.Body))
	case len(c.Fields) > 0:
		return "\n      " + strings.Join(c.Fields, "\n      ")
	}
	return ""
}

// widgetSummary counts a body's widgets by type: "8 widgets: 1 text, 1
// alarm, 6 metric".
func widgetSummary(body string) string {
	var doc struct {
		Widgets []struct {
			Type string `json:"type"`
		} `json:"widgets"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil {
		return "a body that is not JSON"
	}
	var order []string
	counts := map[string]int{}
	for _, w := range doc.Widgets {
		if counts[w.Type] == 0 {
			order = append(order, w.Type)
		}
		counts[w.Type]++
	}
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[t], t)
	}
	return fmt.Sprintf("%d widgets: %s", len(doc.Widgets), strings.Join(parts, ", "))
}

// resourceWords names what a plan holds, for its summary lines.
func resourceWords(plan Changes) string {
	for _, c := range plan.Changes {
		if c.Resource == ResourceDashboard {
			return "alarms, metric filters and dashboards"
		}
	}
	return "alarms and metric filters"
}
