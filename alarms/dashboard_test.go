package alarms_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/probemetric"
	"github.com/valine/valine-check/internal/profile"
)

// The API Gateway metrics AWS documents (API Gateway developer guide,
// "Amazon API Gateway dimensions and metrics" for REST APIs, "Monitor
// CloudWatch metrics for HTTP APIs" for HTTP APIs): what AWS publishes,
// as opposed to what the code under test says it does.
var (
	restAPIMetrics = []string{"4XXError", "5XXError", "Count", "Latency", "IntegrationLatency"}
	httpAPIMetrics = []string{"4xx", "5xx", "Count", "Latency", "IntegrationLatency", "DataProcessed"}
)

var testChecks = []string{"login", "new-token-valid", "refresh", "security-alg-none"}

func dashboardOptions() alarms.DashboardOptions {
	return alarms.DashboardOptions{Region: "us-west-2", Account: "123456789012", Checks: testChecks}
}

// metricKey names one published metric: namespace, name and its
// dimensions as name=value pairs, sorted.
func metricKey(namespace, name string, dims ...string) string {
	var pairs []string
	for i := 0; i+1 < len(dims); i += 2 {
		pairs = append(pairs, dims[i]+"="+dims[i+1])
	}
	slices.Sort(pairs)
	return namespace + " " + name + " {" + strings.Join(pairs, ",") + "}"
}

// published is every metric a deployment's dashboard may graph: those the
// probe publishes (probemetric's names, by Deployment and Check, one set
// per check and the run's), those the metric filters Desired creates
// publish (no dimensions), and AWS's API Gateway metrics of the API's kind
// by the API and stage.
func published(t *testing.T, cfg alarms.Config, checks []string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	ns := cfg.ProbeNamespace
	if ns == "" {
		ns = probemetric.DefaultNamespace
	}
	for _, check := range append([]string{probemetric.CheckAll}, checks...) {
		for _, m := range []string{probemetric.SuccessPercent, probemetric.Duration} {
			out[metricKey(ns, m, probemetric.DimensionDeployment, cfg.DeploymentName(), probemetric.DimensionCheck, check)] = true
		}
	}
	_, filters, err := alarms.Desired(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range filters {
		out[metricKey(f.MetricNamespace, f.MetricName)] = true
	}
	apiMetrics, dims := restAPIMetrics, []string{"ApiName", cfg.APIName, "Stage", cfg.Stage}
	if cfg.APIID != "" {
		apiMetrics, dims = httpAPIMetrics, []string{"ApiId", cfg.APIID, "Stage", cfg.Stage}
	}
	for _, m := range apiMetrics {
		out[metricKey("AWS/ApiGateway", m, dims...)] = true
	}
	return out
}

// dashboardProblems reads a body in CloudWatch's dashboard structure and
// returns every widget that breaks it or graphs a metric nobody publishes:
// each widget needs a type, x, y, width, height and properties; a metric
// widget its region, view, stat, period and metrics, each metric in the
// array form [namespace, name, dimension name, value, …, {options}] and in
// the published set (an expression, whose metrics cannot be checked, is a
// problem); a log widget its region and query; an alarm widget ARNs in the
// region of the desired alarms; a text widget its markdown. Text and alarm
// widgets take no region in CloudWatch's structure: an alarm's is in its
// ARN.
func dashboardProblems(body string, metrics map[string]bool, region string, alarmNames []string) []string {
	var doc struct {
		Widgets *[]map[string]any `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Widgets == nil {
		return []string{fmt.Sprintf("not a dashboard body: %v", err)}
	}
	var problems []string
	bad := func(i int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("widget %d: ", i)+fmt.Sprintf(format, args...))
	}
	for i, w := range *doc.Widgets {
		for _, f := range []string{"x", "y", "width", "height"} {
			if _, ok := w[f].(float64); !ok {
				bad(i, "no %s", f)
			}
		}
		props, ok := w["properties"].(map[string]any)
		if !ok {
			bad(i, "no properties")
			continue
		}
		switch w["type"] {
		case "metric":
			if props["region"] != region {
				bad(i, "region %v, want %s", props["region"], region)
			}
			for _, f := range []string{"view", "stat", "period"} {
				if _, ok := props[f]; !ok {
					bad(i, "no %s", f)
				}
			}
			lines, _ := props["metrics"].([]any)
			if len(lines) == 0 {
				bad(i, "no metrics")
			}
			for j, l := range lines {
				entry, _ := l.([]any)
				var names []string
				for k, v := range entry {
					s, isString := v.(string)
					_, isObject := v.(map[string]any)
					switch {
					case isString && s != "." && s != "":
						names = append(names, s)
					case isObject && k == len(entry)-1 && k > 0:
					default:
						bad(i, "metric %d: item %d is %v, not a name, a value or the trailing options", j, k, v)
					}
				}
				if len(names) < 2 || len(names)%2 != 0 {
					bad(i, "metric %d is not [namespace, name, dimension, value, …]: %v", j, entry)
					continue
				}
				if key := metricKey(names[0], names[1], names[2:]...); !metrics[key] {
					bad(i, "metric %d, %s, is published by nobody", j, key)
				}
			}
		case "log":
			if props["region"] != region {
				bad(i, "region %v, want %s", props["region"], region)
			}
			if q, _ := props["query"].(string); !strings.HasPrefix(q, "SOURCE '") {
				bad(i, "query %q does not start with its log groups", q)
			}
		case "alarm":
			arns, _ := props["alarms"].([]any)
			if len(arns) == 0 || len(arns) > 100 {
				bad(i, "%d alarms, want 1 to 100", len(arns))
			}
			for _, a := range arns {
				s, _ := a.(string)
				head, name, _ := strings.Cut(s, ":alarm:")
				if !strings.HasPrefix(head, "arn:aws:cloudwatch:"+region+":") || !slices.Contains(alarmNames, name) {
					bad(i, "alarm %q is not a managed alarm's ARN in %s", s, region)
				}
			}
		case "text":
			if md, _ := props["markdown"].(string); md == "" {
				bad(i, "no markdown")
			}
		default:
			bad(i, "type %v", w["type"])
		}
	}
	return problems
}

func alarmNames(t *testing.T, cfg alarms.Config) []string {
	t.Helper()
	as, _, err := alarms.Desired(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Name)
	}
	return names
}

func TestDashboardGraphsOnlyPublishedMetrics(t *testing.T) {
	t.Parallel()
	http := restConfig()
	http.APIName, http.APIID, http.Deployment, http.ProbeNamespace = "", "a1b2c3", "valine-http", "Valine/ProbeHTTP"
	for name, cfg := range map[string]alarms.Config{"REST API": restConfig(), "HTTP API": http} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := alarms.DesiredDashboard(cfg, dashboardOptions())
			if err != nil {
				t.Fatal(err)
			}
			metrics, names := published(t, cfg, testChecks), alarmNames(t, cfg)
			if p := dashboardProblems(d.Body, metrics, "us-west-2", names); len(p) > 0 {
				t.Fatalf("the dashboard breaks CloudWatch's structure or graphs what nobody publishes:\n%s\n%s", strings.Join(p, "\n"), d.Body)
			}
			// Every published metric is graphed: the probe's per check, each
			// function's failures and secondary-secret use, the API's rates
			// and requests.
			for key := range metrics {
				parts := strings.Fields(key)
				graphed := strings.Contains(d.Body, `"`+parts[1]+`"`)
				isAPIExtra := strings.HasPrefix(key, "AWS/ApiGateway") && (strings.Contains(key, "Latency") || strings.Contains(key, "DataProcessed"))
				if !graphed && !isAPIExtra {
					t.Errorf("%s is published but not graphed", key)
				}
			}

			// The check can fail: a typo, a wrong dimension, a lost region or
			// an expression is caught.
			for _, m := range []struct{ what, from, to string }{
				{"a typo in a filter metric", `"JWTVerificationFailures-`, `"JWTVerificationFailure-`},
				{"a typo in the secondary-use metric", `"JWTSecondarySecretUse-`, `"JWTSecondarySecretUses-`},
				{"the secondary-use metric in another namespace", `["Valine/Auth","JWTSecondarySecretUse-`, `["Valine/Probe","JWTSecondarySecretUse-`},
				{"a typo in the probe metric", `"` + probemetric.SuccessPercent + `"`, `"SucessPercent"`},
				{"the REST metric name on an HTTP API or back", `"` + map[bool]string{true: "4xx", false: "4XXError"}[cfg.APIID != ""] + `"`, `"4xxError"`},
				{"another deployment", `"Deployment","` + cfg.DeploymentName() + `"`, `"Deployment","other"`},
				{"no region", `"region":"us-west-2"`, `"regionName":"us-west-2"`},
				{"an expression", `"metrics":[[`, `"metrics":[[{"expression":"SEARCH('{AWS/Lambda} Errors', 'Sum', 300)"}],[`},
			} {
				broken := strings.Replace(d.Body, m.from, m.to, 1)
				if broken == d.Body {
					t.Fatalf("%s: %q is not in the body", m.what, m.from)
				}
				if p := dashboardProblems(broken, metrics, "us-west-2", names); len(p) == 0 {
					t.Errorf("%s was not caught", m.what)
				}
			}
		})
	}
}

func TestDashboardShowsWhatOnCallNeeds(t *testing.T) {
	t.Parallel()
	cfg := restConfig()
	cfg.Prefix = "vc.prod/a-"
	d, err := alarms.DesiredDashboard(cfg, dashboardOptions())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "vc-prod-a-dashboard" || alarms.DashboardName(cfg.Prefix) != d.Name {
		t.Errorf("name %q, want the prefix made a dashboard name: vc-prod-a-dashboard", d.Name)
	}
	var doc struct {
		Widgets []struct {
			Type       string         `json:"type"`
			Properties map[string]any `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(d.Body), &doc); err != nil {
		t.Fatal(err)
	}
	var markdown string
	var arns []string
	var secondary []map[string]any
	for _, w := range doc.Widgets {
		if title, _ := w.Properties["title"].(string); strings.HasPrefix(title, "Secondary-secret verifications per function") {
			secondary = append(secondary, w.Properties)
		}
		switch w.Type {
		case "text":
			markdown += w.Properties["markdown"].(string)
		case "log":
			t.Errorf("a Logs Insights widget: %v", w.Properties)
		case "alarm":
			for _, a := range w.Properties["alarms"].([]any) {
				arns = append(arns, a.(string))
			}
		}
	}
	for _, cmd := range []string{"valine-check status", "valine-check rollback", "valine-check after-rotation"} {
		if !strings.Contains(markdown, "`"+cmd+"`") {
			t.Errorf("the text widget does not name %s:\n%s", cmd, markdown)
		}
	}
	var want []string
	for _, n := range alarmNames(t, cfg) {
		want = append(want, "arn:aws:cloudwatch:us-west-2:123456789012:alarm:"+n)
	}
	if !slices.Equal(arns, want) {
		t.Errorf("alarm widgets list\n%s\nwant every managed alarm:\n%s", strings.Join(arns, "\n"), strings.Join(want, "\n"))
	}
	// Secondary-secret use per function is a graph of the secondary-use
	// filters' metrics, one line a function, summed per 5 minutes.
	if len(secondary) != 1 {
		t.Fatalf("%d secondary-use widgets, want 1", len(secondary))
	}
	got, _ := json.Marshal(secondary[0]["metrics"])
	want2 := `[["Valine/Auth","JWTSecondarySecretUse-pv-api-prod-auth",{"label":"pv-api-prod-auth"}],` +
		`["Valine/Auth","JWTSecondarySecretUse-pv-api-prod-profiles",{"label":"pv-api-prod-profiles"}]]`
	if p := secondary[0]; string(got) != want2 || p["stat"] != "Sum" || p["period"] != 300.0 || p["region"] != "us-west-2" || p["view"] != "timeSeries" {
		t.Errorf("secondary-use widget: metrics %s, stat %v, period %v, region %v, view %v; want\n%s, Sum, 300, us-west-2, timeSeries",
			got, p["stat"], p["period"], p["region"], p["view"], want2)
	}

	// A profile without a secondary has no grace period to watch.
	cfg.SecondaryPattern = alarms.SecondaryUsePattern(profile.Presets["cookie"])
	d2, err := alarms.DesiredDashboard(cfg, dashboardOptions())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d2.Body, alarms.JWTSecondaryUseMetric) || strings.Contains(d2.Body, "Secondary-secret verifications") ||
		!strings.Contains(d2.Body, "no secondary secret variable") {
		t.Errorf("a profile without a secondary: %s", d2.Body)
	}
}

func TestDashboardRefusesWhatCloudWatchWould(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]alarms.DashboardOptions{
		"no region":  {Account: "123456789012"},
		"no account": {Region: "eu-west-1"},
	} {
		if _, err := alarms.DesiredDashboard(restConfig(), opt); !errors.Is(err, alarms.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	big := restConfig()
	big.Functions = nil
	for i := range 2500 {
		big.Functions = append(big.Functions, fmt.Sprintf("fn-%04d", i))
	}
	if _, err := alarms.DesiredDashboard(big, dashboardOptions()); !errors.Is(err, alarms.ErrInvalidConfig) || !strings.Contains(err.Error(), "2500") {
		t.Errorf("a fleet of 2,500 functions: %v, want the dashboard's metric limit", err)
	}
	mid := restConfig()
	mid.Functions = big.Functions[:250]
	d, err := alarms.DesiredDashboard(mid, dashboardOptions())
	if err != nil {
		t.Fatal(err)
	}
	if p := dashboardProblems(d.Body, published(t, mid, testChecks), "us-west-2", alarmNames(t, mid)); len(p) > 0 {
		t.Errorf("a fleet of 250 (alarm and graph widgets split at CloudWatch's limits):\n%s", strings.Join(p, "\n"))
	}
}

func TestDashboardPlanApplyPlanChangesNothing(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	opt := dashboardOptions()
	opt.Region, opt.Account = "us-east-1", "000000000000"
	d, err := alarms.DesiredDashboard(e.cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	plan := func() alarms.Changes {
		t.Helper()
		as, fs, err := alarms.Desired(e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := alarms.Plan(t.Context(), e.cw, e.logs, as, fs, e.cfg.Prefix, alarms.WithDashboard(d))
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		return ch
	}
	dashboardChange := func(ch alarms.Changes) alarms.Change {
		t.Helper()
		last := ch.Changes[len(ch.Changes)-1]
		if last.Resource != alarms.ResourceDashboard || last.Name != d.Name {
			t.Fatalf("the last change is %s %s, want the dashboard %s", last.Resource, last.Name, d.Name)
		}
		return last
	}
	first := plan()
	if c := dashboardChange(first); c.Kind != alarms.Create || first.Count(alarms.Create) != 14 {
		t.Fatalf("first plan: dashboard %s, %d creates; want it created with the 9 alarms and 4 filters", c.Kind, first.Count(alarms.Create))
	}
	if done, err := alarms.Apply(t.Context(), e.cw, e.logs, first); err != nil || len(done) != 14 {
		t.Fatalf("Apply: %d done, %v", len(done), err)
	}
	got, err := e.cw.GetDashboard(t.Context(), &cloudwatch.GetDashboardInput{DashboardName: aws.String(d.Name)})
	if err != nil || aws.ToString(got.DashboardBody) != d.Body {
		t.Fatalf("the dashboard written: %v", err)
	}
	puts := e.w.AWSFront.Calls("monitoring:PutDashboard")
	if again := plan(); len(again.Pending()) != 0 {
		t.Fatalf("plan after apply: %s", strings.Join(summary(again), "\n"))
	} else if done, err := alarms.Apply(t.Context(), e.cw, e.logs, again); err != nil || len(done) != 0 || e.w.AWSFront.Calls("monitoring:PutDashboard") != puts {
		t.Errorf("a second apply wrote again: %d done, %v", len(done), err)
	}

	// Someone edits the dashboard by hand: a graph's statistic, and a widget of their own.
	var doc map[string]any
	if err := json.Unmarshal([]byte(d.Body), &doc); err != nil {
		t.Fatal(err)
	}
	widgets := doc["widgets"].([]any)
	for _, w := range widgets {
		if p := w.(map[string]any)["properties"].(map[string]any); p["title"] == "Probe duration per check (ms)" {
			p["stat"] = "Average"
		}
	}
	doc["widgets"] = append(widgets, map[string]any{"type": "text", "x": 0, "y": 100, "width": 6, "height": 2,
		"properties": map[string]any{"markdown": "mine", "title": "notes"}})
	edited, _ := json.Marshal(doc)
	if _, err := e.cw.PutDashboard(t.Context(), &cloudwatch.PutDashboardInput{DashboardName: aws.String(d.Name), DashboardBody: aws.String(string(edited))}); err != nil {
		t.Fatal(err)
	}
	drift := plan()
	c := dashboardChange(drift)
	if want := []string{`widget metric "Probe duration per check (ms)" (properties.stat)`, `-widget text "notes"`}; c.Kind != alarms.Update || !slices.Equal(c.Fields, want) {
		t.Errorf("plan after a hand edit: %s %q, want update %q", c.Kind, c.Fields, want)
	}
	if done, err := alarms.Apply(t.Context(), e.cw, e.logs, drift); err != nil || len(done) != 1 {
		t.Fatalf("Apply: %d done, %v", len(done), err)
	}
	if c := dashboardChange(plan()); c.Kind != alarms.Unchanged {
		t.Errorf("after apply the dashboard is %s", c.Kind)
	}

	// The dashboard must be the prefix's.
	as, fs, _ := alarms.Desired(e.cfg)
	other := d
	other.Name = "someone-elses"
	if _, err := alarms.Plan(t.Context(), e.cw, e.logs, as, fs, e.cfg.Prefix, alarms.WithDashboard(other)); !errors.Is(err, alarms.ErrInvalidConfig) {
		t.Errorf("a dashboard outside the prefix: %v", err)
	}
}
