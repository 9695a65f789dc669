package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch dashboards, which kumo v0.33.1 lacks altogether (every
// dashboard operation is 400 InvalidAction, "The action PutDashboard is not
// valid"). Front serves PutDashboard,
// GetDashboard, ListDashboards and DeleteDashboards itself, over the same
// Smithy RPC v2 CBOR as the alarms, with the errors AWS gives:
//
//   - PutDashboard checks the name (1-255 letters, digits, - and _) and
//     the body as AWS documents it (CloudWatch's "Dashboard Body Structure
//     and Syntax"): a JSON object with a "widgets" array of at most 500
//     objects, each with a known type (metric, text, log, alarm, explorer),
//     a properties object, x 0-23 with y (and y 0 or more with x), width
//     1-24 and height 1-1000; a metric widget's region and metrics (0-500
//     entries, each a [namespace, metric name, dimension name, value, …,
//     {options}] array or an [{expression…}] one; period a multiple of 60),
//     a text widget's markdown, a log widget's region and a query starting
//     with SOURCE, an alarm widget's 1-100 alarm ARNs; at most 2,500 metrics
//     in the dashboard. Anything else is 400 DashboardInvalidInputError
//     (query code InvalidParameterInput) carrying DashboardValidationMessages
//     with the data path of each problem, and nothing is stored. A valid
//     body is stored as sent and replaces the dashboard of that name; the
//     answer's DashboardValidationMessages is empty.
//   - GetDashboard returns the name, the ARN
//     (arn:aws:cloudwatch::000000000000:dashboard/NAME: dashboards are
//     global, so no region) and the body as it was put; an unknown name is
//     404 DashboardNotFoundError (query code ResourceNotFound).
//   - ListDashboards lists by DashboardNamePrefix in name order, 1,000 a
//     page with an opaque NextToken, each with its ARN, LastModified and
//     Size (the body's bytes).
//   - DeleteDashboards deletes every name given (1-100) or, when one does
//     not exist, none, with DashboardNotFoundError, as AWS does.
//
// Not modelled: tags, sharing, the rendering of a body (a widget that
// would graph nothing is accepted as AWS accepts it), the warnings AWS
// returns for a body it stores but may not fully render.

// dashboardStore holds the dashboards of every World: kumo's account is
// one per process, so they are too.
var dashboardStore = struct {
	sync.Mutex
	byName map[string]storedDashboard
}{byName: map[string]storedDashboard{}}

type storedDashboard struct {
	body     string
	modified time.Time
}

// Dashboard limits, as AWS documents them.
const (
	dashboardMaxWidgets       = 500
	dashboardMaxMetrics       = 2500
	dashboardWidgetMaxMetrics = 500
	dashboardAlarmWidgetMax   = 100
	dashboardDeleteMax        = 100
	dashboardPage             = 1000
	dashboardTokenPrefix      = "tbd1:"
	dashboardARNPrefix        = "arn:aws:cloudwatch::000000000000:dashboard/"
)

var (
	validDashboardName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	dashboardAlarmARN  = regexp.MustCompile(`^arn:[a-z-]+:cloudwatch:[a-z0-9-]+:[0-9]{12}:alarm:.+$`)
)

// serveDashboards answers r when it is one of the dashboard operations and
// reports whether it did.
func serveDashboards(w http.ResponseWriter, r *http.Request, body []byte) bool {
	op, ok := strings.CutPrefix(r.URL.Path, cloudWatchOpPrefix)
	if !ok || !slices.Contains([]string{"PutDashboard", "GetDashboard", "ListDashboards", "DeleteDashboards"}, op) {
		return false
	}
	body, ok = inflateCloudWatch(w, r, body)
	if !ok {
		return true
	}
	req := cbor.Map{}
	if len(body) > 0 {
		v, err := cbor.Decode(body)
		m, isMap := v.(cbor.Map)
		if err != nil || !isMap {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", "the request body is not a CBOR map")
			return true
		}
		req = m
	}
	dashboardStore.Lock()
	defer dashboardStore.Unlock()
	switch op {
	case "PutDashboard":
		putDashboard(w, req)
	case "GetDashboard":
		name, _ := req["DashboardName"].(cbor.String)
		d, ok := dashboardStore.byName[string(name)]
		if !ok {
			writeDashboardNotFound(w, string(name))
			return true
		}
		writeCBOR(w, http.StatusOK, cbor.Map{"DashboardName": name, "DashboardArn": cbor.String(dashboardARNPrefix + string(name)),
			"DashboardBody": cbor.String(d.body)})
	case "ListDashboards":
		listDashboards(w, r, req)
	case "DeleteDashboards":
		names := cborStrings(req["DashboardNames"])
		if len(names) == 0 || len(names) > dashboardDeleteMax {
			writeDashboardInvalid(w, fmt.Sprintf("DashboardNames must hold 1 to %d names", dashboardDeleteMax), nil)
			return true
		}
		for _, n := range names {
			if _, ok := dashboardStore.byName[n]; !ok {
				writeDashboardNotFound(w, n)
				return true
			}
		}
		for _, n := range names {
			delete(dashboardStore.byName, n)
		}
		writeCBOR(w, http.StatusOK, cbor.Map{})
	}
	return true
}

// putDashboard validates and stores a dashboard; the caller holds the store.
func putDashboard(w http.ResponseWriter, req cbor.Map) {
	name, _ := req["DashboardName"].(cbor.String)
	body, hasBody := req["DashboardBody"].(cbor.String)
	switch {
	case !validDashboardName.MatchString(string(name)):
		writeDashboardInvalid(w, "The dashboard name must be 1 to 255 letters, digits, - and _",
			[]dashboardProblem{{"DashboardName", "Invalid dashboard name"}})
		return
	case !hasBody:
		writeDashboardInvalid(w, "The dashboard body is missing", []dashboardProblem{{"DashboardBody", "Should be present"}})
		return
	}
	if problems := checkDashboardBody(string(body)); len(problems) > 0 {
		writeDashboardInvalid(w, "The input for the dashboard is invalid", problems)
		return
	}
	dashboardStore.byName[string(name)] = storedDashboard{body: string(body), modified: time.Now().UTC()}
	writeCBOR(w, http.StatusOK, cbor.Map{"DashboardValidationMessages": cbor.List{}})
}

// listDashboards serves one page of the dashboards under the prefix, in
// name order; the caller holds the store.
func listDashboards(w http.ResponseWriter, r *http.Request, req cbor.Map) {
	prefix, _ := req["DashboardNamePrefix"].(cbor.String)
	after := ""
	if v, ok := req["NextToken"]; ok {
		tok, _ := v.(cbor.String)
		key, ok := parseToken(string(tok), dashboardTokenPrefix)
		if !ok {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", "NextToken is not a token ListDashboards returned")
			return
		}
		after = key
	}
	var names []string
	for n := range dashboardStore.byName {
		if strings.HasPrefix(n, string(prefix)) && (after == "" || n > after) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	entries := cbor.List{}
	for _, n := range names[:min(len(names), dashboardPage)] {
		d := dashboardStore.byName[n]
		entries = append(entries, cbor.Map{"DashboardName": cbor.String(n), "DashboardArn": cbor.String(dashboardARNPrefix + n),
			"LastModified": cborTime(d.modified), "Size": cbor.Uint(len(d.body))})
	}
	out := cbor.Map{"DashboardEntries": entries}
	if len(names) > dashboardPage {
		out["NextToken"] = cbor.String(makeToken(dashboardTokenPrefix, names[dashboardPage-1]))
	}
	writeCBOR(w, http.StatusOK, out)
}

// dashboardProblem is one DashboardValidationMessage.
type dashboardProblem struct{ path, message string }

// checkDashboardBody returns what AWS would refuse in a dashboard body.
func checkDashboardBody(body string) []dashboardProblem {
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc == nil {
		return []dashboardProblem{{"", "The dashboard body is not a valid JSON object"}}
	}
	widgets, ok := doc["widgets"].([]any)
	switch {
	case !ok:
		return []dashboardProblem{{"", "Should have required property 'widgets' (an array)"}}
	case len(widgets) > dashboardMaxWidgets:
		return []dashboardProblem{{"/widgets", fmt.Sprintf("Should NOT have more than %d items", dashboardMaxWidgets)}}
	}
	var problems []dashboardProblem
	add := func(path, format string, args ...any) {
		problems = append(problems, dashboardProblem{path, fmt.Sprintf(format, args...)})
	}
	metrics := 0
	for i, raw := range widgets {
		at := fmt.Sprintf("/widgets/%d", i)
		wdg, ok := raw.(map[string]any)
		if !ok {
			add(at, "Should be object")
			continue
		}
		typ, _ := wdg["type"].(string)
		if !slices.Contains([]string{"metric", "text", "log", "alarm", "explorer"}, typ) {
			add(at+"/type", "Should be equal to one of the allowed values: metric, text, log, alarm, explorer")
		}
		_, hasX := wdg["x"]
		_, hasY := wdg["y"]
		if hasX != hasY {
			add(at, "Should have both 'x' and 'y' or neither")
		}
		for _, f := range []struct {
			name     string
			min, max int
		}{{"x", 0, 23}, {"y", 0, 1 << 30}, {"width", 1, 24}, {"height", 1, 1000}} {
			if v, present := wdg[f.name]; present {
				if n, isInt := jsonInt(v); !isInt || n < f.min || n > f.max {
					add(at+"/"+f.name, "Should be an integer from %d to %d", f.min, f.max)
				}
			}
		}
		props, ok := wdg["properties"].(map[string]any)
		if !ok {
			add(at, "Should have required property 'properties' (an object)")
			continue
		}
		at += "/properties"
		switch typ {
		case "metric":
			metrics += checkMetricWidget(at, props, add)
		case "text":
			if _, ok := props["markdown"].(string); !ok {
				add(at, "Should have required property 'markdown'")
			}
		case "log":
			if r, _ := props["region"].(string); r == "" {
				add(at, "Should have required property 'region'")
			}
			if q, _ := props["query"].(string); !strings.HasPrefix(strings.TrimSpace(q), "SOURCE ") {
				add(at+"/query", "Should start with the log groups, each as SOURCE 'name'")
			}
		case "alarm":
			arns, ok := props["alarms"].([]any)
			if !ok || len(arns) < 1 || len(arns) > dashboardAlarmWidgetMax {
				add(at+"/alarms", "Should be an array of 1 to %d alarm ARNs", dashboardAlarmWidgetMax)
				break
			}
			for j, a := range arns {
				if s, _ := a.(string); !dashboardAlarmARN.MatchString(s) {
					add(fmt.Sprintf("%s/alarms/%d", at, j), "Should be an alarm ARN")
				}
			}
		}
	}
	if metrics > dashboardMaxMetrics {
		add("/widgets", "The dashboard has %d metrics; at most %d are allowed", metrics, dashboardMaxMetrics)
	}
	return problems
}

// checkMetricWidget checks a metric widget's properties and returns how
// many metrics it graphs.
func checkMetricWidget(at string, props map[string]any, add func(path, format string, args ...any)) int {
	if r, _ := props["region"].(string); r == "" {
		add(at, "Should have required property 'region'")
	}
	if v, present := props["period"]; present {
		if n, isInt := jsonInt(v); !isInt || n < 60 || n%60 != 0 {
			add(at+"/period", "Should be a multiple of 60")
		}
	}
	raw, present := props["metrics"]
	if !present {
		if _, annotated := props["annotations"]; !annotated {
			add(at, "Should have required property 'metrics'")
		}
		return 0
	}
	list, ok := raw.([]any)
	if !ok || len(list) > dashboardWidgetMaxMetrics {
		add(at+"/metrics", "Should be an array of at most %d metrics", dashboardWidgetMaxMetrics)
		return 0
	}
	for j, item := range list {
		path := fmt.Sprintf("%s/metrics/%d", at, j)
		entry, ok := item.([]any)
		if !ok || len(entry) == 0 {
			add(path, "Should be a non-empty array")
			continue
		}
		if opts, isObj := entry[0].(map[string]any); isObj {
			if e, _ := opts["expression"].(string); e == "" || len(entry) != 1 {
				add(path, "An expression should be one object with an 'expression'")
			}
			continue
		}
		names := entry
		if _, isObj := entry[len(entry)-1].(map[string]any); isObj {
			names = entry[:len(entry)-1]
		}
		for k, n := range names {
			if s, isStr := n.(string); !isStr || s == "" || j == 0 && s == "." {
				add(fmt.Sprintf("%s/%d", path, k), "Should be a non-empty string (\".\" repeats the previous metric's)")
			}
		}
		if len(names) < 2 || len(names)%2 != 0 {
			add(path, "Should be [namespace, metric name, dimension name, dimension value, …, {options}]")
		}
	}
	return len(list)
}

// jsonInt returns v as an int when it is a whole JSON number.
func jsonInt(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

// writeDashboardInvalid answers 400 DashboardInvalidInputError.
func writeDashboardInvalid(w http.ResponseWriter, message string, problems []dashboardProblem) {
	msgs := cbor.List{}
	for _, p := range problems {
		msgs = append(msgs, cbor.Map{"DataPath": cbor.String(p.path), "Message": cbor.String(p.message)})
	}
	w.Header().Set("X-Amzn-Query-Error", "InvalidParameterInput;Sender")
	writeCBOR(w, http.StatusBadRequest, cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#DashboardInvalidInputError"),
		"message": cbor.String(message), "dashboardValidationMessages": msgs})
}

// writeDashboardNotFound answers 404 DashboardNotFoundError.
func writeDashboardNotFound(w http.ResponseWriter, name string) {
	w.Header().Set("X-Amzn-Query-Error", "ResourceNotFound;Sender")
	writeCBOR(w, http.StatusNotFound, cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#DashboardNotFoundError"),
		"message": cbor.String("Dashboard " + name + " does not exist")})
}
