package alarms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/valine/valine-check/internal/probemetric"
)

// Dashboard is a deployment's CloudWatch dashboard as PutDashboard takes
// it: Body is CloudWatch's dashboard body structure (a JSON object with a
// widgets array), as a string.
type Dashboard struct {
	Name string `json:"name"`
	Body string `json:"body"`
}

// DashboardOptions are what the dashboard needs beyond the Config.
type DashboardOptions struct {
	// Region is every widget's region: where the metrics, the logs and the
	// alarms are. Required.
	Region string
	// Account and Partition ("aws" when empty) make the alarms' ARNs for
	// the alarm status widgets. Account is required.
	Account   string
	Partition string
	// Checks are the scheduled probe's checks, each graphed by its Check
	// dimension beside the run's (Check=all); nil graphs the run only.
	Checks []string
}

// OnCallCommands are the commands the dashboard's text widget names.
var OnCallCommands = []string{"valine-check status", "valine-check rollback", "valine-check after-rotation"}

// Dashboard limits, as AWS documents them.
const (
	maxDashboardWidgets = 500
	maxDashboardMetrics = 2500
	// alarmsPerWidget is the most ARNs an alarm status widget takes.
	alarmsPerWidget = 100
	// linesPerWidget keeps a per-function graph readable.
	linesPerWidget = 100
	// gridWidth is the dashboard grid's width.
	gridWidth = 24
)

var (
	validRegion  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	validAccount = regexp.MustCompile(`^[0-9]{12}$`)
	// unsafeDashboardName: a dashboard name holds letters, digits, - and _.
	unsafeDashboardName = regexp.MustCompile(`[^A-Za-z0-9_-]`)
)

// DashboardName is the dashboard of the deployment managed under prefix:
// the prefix, with the characters a dashboard name cannot hold (. and /)
// replaced by "-", then "dashboard" ("valine-check-" gives
// "valine-check-dashboard").
func DashboardName(prefix string) string {
	return unsafeDashboardName.ReplaceAllString(prefix, "-") + "dashboard"
}

// DesiredDashboard returns the dashboard of cfg's deployment: a text widget
// naming the on-call commands; alarm status widgets listing every alarm
// Desired manages (by ARN, those in ALARM first); the probe's
// SuccessPercent and Duration per check (opt.Checks) and for the run, in
// the probe namespace by Deployment and Check as the probe publishes them;
// API Gateway's 4XX and 5XX rates (the Average of 4XXError and 5XXError, or
// 4xx and 5xx for an HTTP API, as the alarms read them) with the requests
// (Count); each function's failed JWT verifications and, when
// cfg.SecondaryPattern is set, its verifications by the secondary secret,
// both from the metric filters Desired creates (the Sum of their metrics
// per 5 minutes). Alarm thresholds are drawn on their graphs. It is pure.
func DesiredDashboard(cfg Config, opt DashboardOptions) (Dashboard, error) {
	alarmList, filters, err := Desired(cfg)
	if err != nil {
		return Dashboard{}, err
	}
	if opt.Partition == "" {
		opt.Partition = "aws"
	}
	var problems []string
	if !validRegion.MatchString(opt.Region) {
		problems = append(problems, fmt.Sprintf("region %q is not an AWS region", opt.Region))
	}
	if !validAccount.MatchString(opt.Account) {
		problems = append(problems, fmt.Sprintf("account %q is not a 12-digit AWS account id", opt.Account))
	}
	if len(problems) > 0 {
		return Dashboard{}, fmt.Errorf("%w: dashboard: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}
	c := cfg.withDefaults()
	b := dashboardBuilder{region: opt.Region}
	b.text(onCallMarkdown(c))

	arns := make([]string, len(alarmList))
	for i, a := range alarmList {
		arns[i] = fmt.Sprintf("arn:%s:cloudwatch:%s:%s:alarm:%s", opt.Partition, opt.Region, opt.Account, a.Name)
	}
	for i, chunk := range chunks(arns, alarmsPerWidget) {
		b.add(gridWidth, 6, "alarm", alarmProps{Title: numbered("Alarms", i, len(arns), alarmsPerWidget),
			Alarms: chunk, SortBy: "stateUpdatedTimestamp"})
	}

	t := *c.Thresholds
	dep := c.DeploymentName()
	checks := append([]string{ProbeCheckAll}, opt.Checks...)
	probeLines := func(metric string, opts func(check string) map[string]any) [][]any {
		var lines [][]any
		for _, ch := range checks {
			lines = append(lines, []any{c.ProbeNamespace, metric, ProbeDimensionDeployment, dep, ProbeDimensionCheck, ch, opts(ch)})
		}
		return lines
	}
	label := func(ch string) map[string]any {
		if ch == ProbeCheckAll {
			return map[string]any{"label": "all checks"}
		}
		return map[string]any{"label": ch}
	}
	b.metric(12, "Probe SuccessPercent ("+dep+")", "Average", probeLines(ProbeMetric, label),
		&yAxes{Left: &yAxis{Min: ptr(0.0), Max: ptr(100.0), ShowUnits: ptr(false)}},
		[]hline{{Label: fmt.Sprintf("alarm below %v%%", t.ProbeSuccessPercent), Value: t.ProbeSuccessPercent}})
	b.metric(12, "Probe duration per check (ms)", "Maximum", probeLines(probemetric.Duration, label),
		&yAxes{Left: &yAxis{Min: ptr(0.0), ShowUnits: ptr(false)}}, nil)

	for _, api := range []struct {
		name   string
		metric string
		limit  float64
	}{{"4XX", apiMetric4xx(c), t.Client4xxRate}, {"5XX", apiMetric5xx(c), t.Server5xxRate}} {
		dims := apiDimensions(c)
		rate := append(append([]any{"AWS/ApiGateway", api.metric}, dims...), map[string]any{"label": api.name + " rate (share of requests)"})
		count := append(append([]any{"AWS/ApiGateway", "Count"}, dims...), map[string]any{"label": "requests", "stat": "Sum", "yAxis": "right"})
		b.metric(12, fmt.Sprintf("API Gateway %s rate (%s %s)", api.name, c.APIName+c.APIID, c.Stage), "Average", [][]any{rate, count},
			&yAxes{Left: &yAxis{Min: ptr(0.0), ShowUnits: ptr(false)}, Right: &yAxis{Min: ptr(0.0), ShowUnits: ptr(false)}},
			[]hline{{Label: "alarm above " + pct(api.limit), Value: api.limit}})
	}

	failures, secondary := filterLines(filters, JWTFailuresMetric), filterLines(filters, JWTSecondaryUseMetric)
	for i, chunk := range chunks(failures, linesPerWidget) {
		b.metric(12, numbered("Failed JWT verifications per function, per 5 minutes", i, len(failures), linesPerWidget), "Sum", chunk,
			&yAxes{Left: &yAxis{Min: ptr(0.0), ShowUnits: ptr(false)}},
			[]hline{{Label: fmt.Sprintf("alarm above %v", t.JWTFailures), Value: t.JWTFailures}})
	}
	for i, chunk := range chunks(secondary, linesPerWidget) {
		b.metric(12, numbered("Secondary-secret verifications per function, per 5 minutes (0 for the whole grace period: finalize can run)", i, len(secondary), linesPerWidget), "Sum", chunk,
			&yAxes{Left: &yAxis{Min: ptr(0.0), ShowUnits: ptr(false)}}, nil)
	}

	if len(b.widgets) > maxDashboardWidgets || b.metrics > maxDashboardMetrics {
		return Dashboard{}, fmt.Errorf("%w: the dashboard would hold %d widgets and %d metrics; CloudWatch allows %d and %d (a fleet of %d functions is too large for one dashboard)",
			ErrInvalidConfig, len(b.widgets), b.metrics, maxDashboardWidgets, maxDashboardMetrics, len(c.Functions))
	}
	body, err := encodeJSON(dashboardBody{Start: "-PT6H", PeriodOverride: "inherit", Widgets: b.widgets})
	if err != nil {
		return Dashboard{}, fmt.Errorf("encoding the dashboard: %w", err)
	}
	return Dashboard{Name: DashboardName(c.Prefix), Body: body}, nil
}

// onCallMarkdown is the text widget: what the dashboard watches and the
// commands to run.
func onCallMarkdown(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Valine JWT secret: %s\n", c.DeploymentName())
	fmt.Fprintf(&b, "API %s stage %s, %d functions. Managed by `valine-check alarms apply` under the prefix `%s`: an edit made here is undone by the next apply.\n\n",
		c.APIName+c.APIID, c.Stage, len(c.Functions), c.Prefix)
	b.WriteString("On call:\n\n")
	why := []string{
		"where the rotation stands: the fleet's secrets (fingerprints), the journal, drift, secondary-secret use",
		"put back the backed-up secret when a rotation broke logins",
		"run the probe's checks now (exit 1 when one fails)",
	}
	for i, cmd := range OnCallCommands {
		fmt.Fprintf(&b, "* `%s`: %s\n", cmd, why[i])
	}
	fmt.Fprintf(&b, "* `valine-check alarms status --alarm-prefix %s`: the alarms below, from a terminal\n", c.Prefix)
	if c.SecondaryPattern == "" {
		b.WriteString("\nThe profile has no secondary secret variable: there is no grace period, so no secondary-secret use to watch.\n")
	}
	return b.String()
}

// filterLines are the metrics array lines of the filters' metrics of the
// family, one per function, labelled with it.
func filterLines(filters []MetricFilter, family string) [][]any {
	var lines [][]any
	for _, f := range filters {
		if fn, ok := metricFunction(f.MetricName, family); ok {
			lines = append(lines, []any{f.MetricNamespace, f.MetricName, map[string]any{"label": fn}})
		}
	}
	return lines
}

func apiMetric4xx(c Config) string {
	if c.APIID != "" {
		return "4xx"
	}
	return "4XXError"
}

func apiMetric5xx(c Config) string {
	if c.APIID != "" {
		return "5xx"
	}
	return "5XXError"
}

// apiDimensions are the API's dimensions as a metrics array lists them, in
// the alarms' (sorted) order.
func apiDimensions(c Config) []any {
	if c.APIID != "" {
		return []any{"ApiId", c.APIID, "Stage", c.Stage}
	}
	return []any{"ApiName", c.APIName, "Stage", c.Stage}
}

// numbered titles the i-th of several widgets sharing a title.
func numbered(title string, i, n, per int) string {
	if n <= per {
		return title
	}
	return fmt.Sprintf("%s (%d/%d)", title, i+1, (n+per-1)/per)
}

func chunks[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > 0 {
		k := min(n, len(s))
		out = append(out, s[:k])
		s = s[k:]
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// The dashboard body, in CloudWatch's structure ("Dashboard Body Structure
// and Syntax").
type dashboardBody struct {
	Start          string   `json:"start"`
	PeriodOverride string   `json:"periodOverride"`
	Widgets        []widget `json:"widgets"`
}

type widget struct {
	Type       string `json:"type"`
	X          int    `json:"x"`
	Y          int    `json:"y"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	Properties any    `json:"properties"`
}

type metricProps struct {
	Title       string       `json:"title"`
	View        string       `json:"view"`
	Stacked     bool         `json:"stacked"`
	Region      string       `json:"region"`
	Stat        string       `json:"stat"`
	Period      int          `json:"period"`
	Metrics     [][]any      `json:"metrics"`
	YAxis       *yAxes       `json:"yAxis,omitempty"`
	Annotations *annotations `json:"annotations,omitempty"`
}

type yAxes struct {
	Left  *yAxis `json:"left,omitempty"`
	Right *yAxis `json:"right,omitempty"`
}

type yAxis struct {
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	ShowUnits *bool    `json:"showUnits,omitempty"`
}

type annotations struct {
	Horizontal []hline `json:"horizontal"`
}

type hline struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
}

type alarmProps struct {
	Title  string   `json:"title"`
	Alarms []string `json:"alarms"`
	SortBy string   `json:"sortBy"`
}

type textProps struct {
	Markdown string `json:"markdown"`
}

// dashboardBuilder lays widgets out left to right in rows of the 24-unit
// grid.
type dashboardBuilder struct {
	region     string
	widgets    []widget
	x, y, rowH int
	metrics    int
}

func (b *dashboardBuilder) add(width, height int, typ string, props any) {
	if b.x+width > gridWidth {
		b.x, b.y, b.rowH = 0, b.y+b.rowH, 0
	}
	b.widgets = append(b.widgets, widget{Type: typ, X: b.x, Y: b.y, Width: width, Height: height, Properties: props})
	b.x += width
	b.rowH = max(b.rowH, height)
}

func (b *dashboardBuilder) text(markdown string) {
	b.add(gridWidth, 5, "text", textProps{Markdown: markdown})
}

func (b *dashboardBuilder) metric(width int, title, stat string, lines [][]any, axes *yAxes, lines2 []hline) {
	p := metricProps{Title: title, View: "timeSeries", Region: b.region, Stat: stat, Period: 300, Metrics: lines, YAxis: axes}
	if len(lines2) > 0 {
		p.Annotations = &annotations{Horizontal: lines2}
	}
	b.metrics += len(lines)
	b.add(width, 6, "metric", p)
}

// encodeJSON marshals v without HTML escapes (the markdown keeps its < and >).
func encodeJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}
