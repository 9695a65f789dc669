package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Metric filters (CloudWatch Logs, JSON 1.1, X-Amz-Target
// "Logs_20140328.<Op>"). kumo has no PutMetricFilter,
// DescribeMetricFilters or DeleteMetricFilter ("InvalidAction"). Front
// serves them from its own store, process-wide like kumo's log groups, as a
// test double:
//
//   - PutMetricFilter creates or replaces a filter after asking kumo
//     (DescribeLogStreams) that the log group exists, else
//     ResourceNotFoundException. It checks what AWS checks: a filter name
//     of 1-512 characters without ':' or '*', a pattern of at most 1024
//     characters, exactly one metric transformation with a metric name,
//     namespace and value, no default value together with dimensions, at
//     most 100 filters per log group (LimitExceededException); otherwise
//     InvalidParameterException.
//   - The pattern must be a shape the test double can apply (see
//     parseLogPattern): terms and "quoted phrases" that must all appear,
//     ?terms of which one must appear, -terms that must not appear, or an
//     empty pattern. JSON ({ $.x = … }), space-delimited ([a, b]) and
//     regular-expression (%…%) patterns are refused with a clear
//     InvalidParameterException, so a test cannot rely on them unawares.
//   - DescribeMetricFilters lists by log group (which must exist),
//     filterNamePrefix (needs logGroupName), metricName with
//     metricNamespace, in log-group then name order, limit 1-50 (default
//     50) a page with an opaque nextToken.
//   - DeleteMetricFilter removes one; an unknown log group or filter is
//     ResourceNotFoundException.
//   - DeleteLogGroup (kumo's) also drops the group's filters, as on AWS.
//
// Filters never turn log events into metrics by themselves: call
// World.RunMetricFilters. kumo's DescribeLogGroups keeps reporting
// metricFilterCount 0.
var (
	metricFiltersMu sync.Mutex
	metricFilters   = map[string]map[string]*storedFilter{} // log group → filter name → filter
)

const (
	maxFiltersPerGroup = 100
	filterPageMax      = 50
	filterTokenPrefix  = "tbf1:"
)

// storedFilter is one metric filter as Front keeps it.
type storedFilter struct {
	FilterName            string             `json:"filterName"`
	FilterPattern         string             `json:"filterPattern"`
	LogGroupName          string             `json:"logGroupName"`
	CreationTime          int64              `json:"creationTime"`
	MetricTransformations []mfTransformation `json:"metricTransformations"`
	pattern               logPattern
}

// mfTransformation is a metric transformation on the wire.
type mfTransformation struct {
	MetricName      string            `json:"metricName"`
	MetricNamespace string            `json:"metricNamespace"`
	MetricValue     string            `json:"metricValue"`
	DefaultValue    *float64          `json:"defaultValue,omitempty"`
	Dimensions      map[string]string `json:"dimensions,omitempty"`
	Unit            string            `json:"unit,omitempty"`
}

// serveMetricFilters answers the metric filter operations and
// DeleteLogGroup, and reports whether op was one of them.
func serveMetricFilters(w http.ResponseWriter, r *http.Request, op string, body []byte, next http.Handler) bool {
	switch op {
	case "PutMetricFilter", "DescribeMetricFilters", "DeleteMetricFilter", "DeleteLogGroup":
	default:
		return false
	}
	metricFiltersMu.Lock()
	defer metricFiltersMu.Unlock()
	var req struct {
		LogGroupName          string             `json:"logGroupName"`
		FilterName            string             `json:"filterName"`
		FilterPattern         *string            `json:"filterPattern"`
		FilterNamePrefix      string             `json:"filterNamePrefix"`
		MetricName            string             `json:"metricName"`
		MetricNamespace       string             `json:"metricNamespace"`
		Limit                 *int               `json:"limit"`
		NextToken             *string            `json:"nextToken"`
		MetricTransformations []mfTransformation `json:"metricTransformations"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "Failed to parse request body")
		return true
	}
	if op == "DeleteLogGroup" {
		rec := logsCall(r, op, body, next)
		if rec.Code == http.StatusOK {
			delete(metricFilters, req.LogGroupName)
		}
		relay(w, rec)
		return true
	}
	if req.LogGroupName != "" {
		if rec := logsCall(r, "DescribeLogStreams", smJSON(map[string]any{"logGroupName": req.LogGroupName, "limit": 1}), next); rec.Code != http.StatusOK {
			relay(w, rec)
			return true
		}
	}
	switch op {
	case "PutMetricFilter":
		pattern := ""
		if req.FilterPattern != nil {
			pattern = *req.FilterPattern
		}
		f := &storedFilter{FilterName: req.FilterName, FilterPattern: pattern, LogGroupName: req.LogGroupName,
			CreationTime: time.Now().UnixMilli(), MetricTransformations: req.MetricTransformations}
		if msg := checkFilter(f, req.FilterPattern != nil); msg != "" {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", msg)
			return true
		}
		group := metricFilters[req.LogGroupName]
		if group == nil {
			group = map[string]*storedFilter{}
			metricFilters[req.LogGroupName] = group
		}
		if old, ok := group[f.FilterName]; ok {
			f.CreationTime = old.CreationTime
		} else if len(group) >= maxFiltersPerGroup {
			writeAWSError(w, r, http.StatusBadRequest, "LimitExceededException", "Resource limit exceeded: at most 100 metric filters per log group")
			return true
		}
		group[f.FilterName] = f
		smWrite(w, http.StatusOK, nil, []byte("{}"))
	case "DeleteMetricFilter":
		if req.LogGroupName == "" || req.FilterName == "" {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "logGroupName and filterName are required")
			return true
		}
		if _, ok := metricFilters[req.LogGroupName][req.FilterName]; !ok {
			writeAWSError(w, r, http.StatusBadRequest, "ResourceNotFoundException", "The specified metric filter does not exist.")
			return true
		}
		delete(metricFilters[req.LogGroupName], req.FilterName)
		smWrite(w, http.StatusOK, nil, []byte("{}"))
	case "DescribeMetricFilters":
		describeMetricFilters(w, r, req.LogGroupName, req.FilterNamePrefix, req.MetricName, req.MetricNamespace, req.Limit, req.NextToken)
	}
	return true
}

// checkFilter returns why AWS (or the test double) would refuse f, or "".
func checkFilter(f *storedFilter, hasPattern bool) string {
	switch {
	case f.LogGroupName == "":
		return "logGroupName is required"
	case len(f.FilterName) < 1 || len(f.FilterName) > 512 || strings.ContainsAny(f.FilterName, ":*"):
		return "filterName must be 1 to 512 characters without : or *"
	case !hasPattern:
		return "filterPattern is required"
	case len(f.FilterPattern) > 1024:
		return "filterPattern must be at most 1024 characters"
	case len(f.MetricTransformations) != 1:
		return "metricTransformations must hold exactly one transformation"
	}
	t := f.MetricTransformations[0]
	switch {
	case t.MetricName == "" || t.MetricNamespace == "" || t.MetricValue == "":
		return "a metric transformation needs metricName, metricNamespace and metricValue"
	case t.DefaultValue != nil && len(t.Dimensions) > 0:
		return "a metric transformation cannot have both a defaultValue and dimensions"
	}
	p, err := parseLogPattern(f.FilterPattern)
	if err != nil {
		return err.Error()
	}
	f.pattern = p
	return ""
}

// describeMetricFilters answers DescribeMetricFilters from the store.
func describeMetricFilters(w http.ResponseWriter, r *http.Request, group, prefix, metric, namespace string, limit *int, next *string) {
	size := filterPageMax
	switch {
	case prefix != "" && group == "":
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "filterNamePrefix requires logGroupName")
		return
	case metric != "" && namespace == "":
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "metricName requires metricNamespace")
		return
	case limit != nil && (*limit < 1 || *limit > filterPageMax):
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "limit must be from 1 to 50")
		return
	case limit != nil:
		size = *limit
	}
	after := ""
	if next != nil {
		key, ok := parseToken(*next, filterTokenPrefix)
		if !ok {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "The specified nextToken is invalid.")
			return
		}
		after = key
	}
	var all []*storedFilter
	for g, fs := range metricFilters {
		if group != "" && g != group {
			continue
		}
		for _, f := range fs {
			t := f.MetricTransformations[0]
			if strings.HasPrefix(f.FilterName, prefix) &&
				(namespace == "" || t.MetricNamespace == namespace) && (metric == "" || t.MetricName == metric) &&
				(after == "" || filterKey(f) > after) {
				all = append(all, f)
			}
		}
	}
	slices.SortFunc(all, func(a, b *storedFilter) int { return strings.Compare(filterKey(a), filterKey(b)) })
	out := struct {
		MetricFilters []*storedFilter `json:"metricFilters"`
		NextToken     string          `json:"nextToken,omitempty"`
	}{MetricFilters: all[:min(size, len(all))]}
	if len(all) > size {
		out.NextToken = makeToken(filterTokenPrefix, filterKey(all[size-1]))
	}
	if out.MetricFilters == nil {
		out.MetricFilters = []*storedFilter{}
	}
	smWrite(w, http.StatusOK, nil, smJSON(out))
}

// filterKey orders filters by log group, then name.
func filterKey(f *storedFilter) string { return f.LogGroupName + "\x00" + f.FilterName }

// storedFiltersOf returns copies of the filters of a log group, by name.
func storedFiltersOf(group string) []storedFilter {
	metricFiltersMu.Lock()
	defer metricFiltersMu.Unlock()
	var out []storedFilter
	for _, f := range metricFilters[group] {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b storedFilter) int { return strings.Compare(a.FilterName, b.FilterName) })
	return out
}

// logsCall sends a CloudWatch Logs operation with a JSON body to kumo
// through next, bypassing Front's counting and faults.
func logsCall(r *http.Request, op string, body []byte, next http.Handler) *httptest.ResponseRecorder {
	in := r.Clone(r.Context())
	in.Header.Set("X-Amz-Target", "Logs_20140328."+op)
	in.Header.Del("Content-Length")
	setBody(in, body)
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, in)
	return rec
}

// logPattern is a plain-text CloudWatch Logs filter pattern: every one of
// all must appear in a message, at least one of anyOf (when there are
// any), and none of none. Matching is by case-sensitive substring; AWS
// matches whole terms, which the project's patterns do not tell apart.
type logPattern struct {
	all, anyOf, none []string
}

// parseLogPattern reads a pattern the test double can apply: an empty
// pattern (every event), terms, "quoted phrases", ?optional terms and
// -excluded terms. Other shapes are an error naming the shape.
func parseLogPattern(s string) (logPattern, error) {
	var p logPattern
	t := strings.TrimSpace(s)
	switch {
	case t == "" || t == `""`:
		return p, nil
	case strings.HasPrefix(t, "{"):
		return p, fmt.Errorf("testbed: JSON filter patterns ({ $.field … }) are not modelled: %q", s)
	case strings.HasPrefix(t, "["):
		return p, fmt.Errorf("testbed: space-delimited filter patterns ([a, b, …]) are not modelled: %q", s)
	case strings.Contains(t, "%"):
		return p, fmt.Errorf("testbed: regular-expression filter patterns (%%…%%) are not modelled: %q", s)
	}
	rs := []rune(t)
	for i := 0; i < len(rs); {
		if unicode.IsSpace(rs[i]) {
			i++
			continue
		}
		kind := rune(0)
		if rs[i] == '?' || rs[i] == '-' {
			kind = rs[i]
			i++
		}
		var term strings.Builder
		if i < len(rs) && rs[i] == '"' {
			i++
			closed := false
			for i < len(rs) {
				c := rs[i]
				i++
				if c == '\\' && i < len(rs) {
					term.WriteRune(rs[i])
					i++
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				term.WriteRune(c)
			}
			if !closed {
				return logPattern{}, fmt.Errorf("invalid filter pattern %q: a quote is not closed", s)
			}
		} else {
			for i < len(rs) && !unicode.IsSpace(rs[i]) {
				term.WriteRune(rs[i])
				i++
			}
		}
		if term.Len() == 0 {
			return logPattern{}, fmt.Errorf("invalid filter pattern %q: an empty term", s)
		}
		switch kind {
		case '?':
			p.anyOf = append(p.anyOf, term.String())
		case '-':
			p.none = append(p.none, term.String())
		default:
			p.all = append(p.all, term.String())
		}
	}
	return p, nil
}

// match reports whether message matches the pattern.
func (p logPattern) match(message string) bool {
	for _, t := range p.all {
		if !strings.Contains(message, t) {
			return false
		}
	}
	for _, t := range p.none {
		if strings.Contains(message, t) {
			return false
		}
	}
	if len(p.anyOf) == 0 {
		return true
	}
	for _, t := range p.anyOf {
		if strings.Contains(message, t) {
			return true
		}
	}
	return false
}
