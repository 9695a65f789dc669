package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
)

// insightsFront is a test double for CloudWatch Logs Insights, which kumo
// lacks (StartQuery, GetQueryResults and StopQuery answer
// "UnrecognizedClientException"). Front serves the three operations
// (JSON 1.1, X-Amz-Target "Logs_20140328.<Op>") itself, computing results
// from the events kumo stores:
//
//   - StartQuery parses the query, reads every named log group's events in
//     the window from kumo (FilterLogEvents with startTime and endTime and
//     no pattern: kumo's patterns are plain substrings) and computes the
//     result at once. StartTime and EndTime are epoch seconds and both ends
//     are inclusive, so the window is [StartTime s, EndTime s + 999 ms]. An
//     unknown log group is kumo's ResourceNotFoundException, as on AWS.
//
//   - Only the shapes alarms.Queries produces are understood:
//
//     filter @message [not] like /RE/ [and @message [not] like /RE/ ...]
//     [| parse @message /...(?<name>RE).../]
//     | stats count(*) [as NAME] [by bin(N s|m|h) | by name]
//
//     RE is a Go (RE2) regular expression, close to but not the same as
//     CloudWatch's dialect. Any other shape, another query language, or a
//     "by" field no parse extracts is a MalformedQueryException whose
//     message names the supported shapes. Events whose parse does not match
//     are counted in recordsMatched but in no "by name" row.
//
//   - Results are what CloudWatch returns for these shapes: per bin, a
//     "bin(5m)" field formatted "2006-01-02 15:04:05.000" (UTC) and the
//     count, in bin order; per parsed field, highest count first; without
//     "by", one row (0 when nothing matched). Statistics give
//     recordsMatched, recordsScanned, bytesScanned and logGroupsScanned.
//
//   - Status: a query is Running for its first K GetQueryResults (K = 1 by
//     default; see Front.SetInsightsPollsUntilComplete, where K < 0 means it
//     never completes), then Complete. StopQuery on a running query makes it
//     Cancelled; on an ended one it is InvalidParameterException.
//
//   - The account's limit on concurrent queries is modelled when set
//     (Front.SetInsightsConcurrencyLimit): StartQuery beyond it is
//     LimitExceededException. A query counts as running from StartQuery to
//     the poll that sees it end, or StopQuery; Front.InsightsPeakRunning
//     reports the most at once.
//
// Not modelled: other commands (fields, sort, limit, display, dedup),
// other functions and fields than @message, queries over more than 9,999
// events in one log group (refused with InvalidParameterException: kumo's
// FilterLogEvents returns at most 10,000 and has no paging), partial
// results while Running, DescribeQueries, and query expiry.
type insightsFront struct {
	mu          sync.Mutex
	pollsSet    bool
	pollsUntil  int // K; meaningful when pollsSet, else 1
	limit       int // 0 = none
	running     int
	peakRunning int
	queries     map[string]*insightsQuery
}

// insightsQuery is one started query.
type insightsQuery struct {
	status string
	polls  int
	until  int // Running for this many polls; < 0 = forever
	rows   [][]insightsField
	stats  insightsStats
}

type insightsField struct {
	Field string `json:"field"`
	Value string `json:"value"`
}

type insightsStats struct {
	RecordsMatched   float64 `json:"recordsMatched"`
	RecordsScanned   float64 `json:"recordsScanned"`
	BytesScanned     float64 `json:"bytesScanned"`
	LogGroupsScanned float64 `json:"logGroupsScanned"`
}

// SetInsightsPollsUntilComplete makes every query started from now on
// answer Running to its first k GetQueryResults and Complete afterwards
// (k = 0: Complete at once). k < 0 makes queries run until stopped, for
// deadline tests. The default is 1.
func (f *Front) SetInsightsPollsUntilComplete(k int) {
	f.insights.mu.Lock()
	defer f.insights.mu.Unlock()
	f.insights.pollsSet, f.insights.pollsUntil = true, k
}

// SetInsightsConcurrencyLimit makes StartQuery answer
// LimitExceededException while n queries are running, as the account's
// quota does on AWS; 0 (the default) means no limit.
func (f *Front) SetInsightsConcurrencyLimit(n int) {
	f.insights.mu.Lock()
	defer f.insights.mu.Unlock()
	f.insights.limit = n
}

// InsightsPeakRunning is the largest number of Logs Insights queries that
// were running at once (see insightsFront for when a query runs).
func (f *Front) InsightsPeakRunning() int {
	f.insights.mu.Lock()
	defer f.insights.mu.Unlock()
	return f.insights.peakRunning
}

// serve answers r when it is a Logs Insights operation, reading events from
// kumo through next, and reports whether it did.
func (s *insightsFront) serve(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) bool {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "Logs_20140328.")
	if !ok {
		return false
	}
	switch op {
	case "StartQuery":
		s.startQuery(w, r, body, next)
	case "GetQueryResults":
		s.getQueryResults(w, r, body)
	case "StopQuery":
		s.stopQuery(w, r, body)
	default:
		return false
	}
	return true
}

// insightsBadRequest answers with a 400 AWS error of type errType.
func insightsBadRequest(w http.ResponseWriter, r *http.Request, errType, format string, args ...any) {
	writeAWSError(w, r, http.StatusBadRequest, errType, fmt.Sprintf(format, args...))
}

// startQuery serves StartQuery.
func (s *insightsFront) startQuery(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) {
	var req struct {
		QueryString         string   `json:"queryString"`
		QueryLanguage       string   `json:"queryLanguage"`
		LogGroupName        string   `json:"logGroupName"`
		LogGroupNames       []string `json:"logGroupNames"`
		LogGroupIdentifiers []string `json:"logGroupIdentifiers"`
		StartTime           *int64   `json:"startTime"`
		EndTime             *int64   `json:"endTime"`
		Limit               *int32   `json:"limit"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		insightsBadRequest(w, r, "InvalidParameterException", "Failed to parse request body")
		return
	}
	groups := slices.Concat(req.LogGroupNames, req.LogGroupIdentifiers)
	if req.LogGroupName != "" {
		groups = append(groups, req.LogGroupName)
	}
	switch {
	case len(groups) == 0:
		insightsBadRequest(w, r, "InvalidParameterException", "Specify exactly one of logGroupName, logGroupNames or logGroupIdentifiers")
		return
	case req.StartTime == nil || req.EndTime == nil:
		insightsBadRequest(w, r, "InvalidParameterException", "startTime and endTime are required")
		return
	case *req.EndTime < *req.StartTime:
		insightsBadRequest(w, r, "InvalidParameterException", "endTime must not be before startTime")
		return
	case req.QueryLanguage != "" && req.QueryLanguage != "CWLI":
		insightsBadRequest(w, r, "MalformedQueryException", "the testbed's Logs Insights double understands only queryLanguage CWLI, not %s", req.QueryLanguage)
		return
	}
	plan, err := parseInsightsQuery(req.QueryString)
	if err != nil {
		insightsBadRequest(w, r, "MalformedQueryException", "%v", err)
		return
	}
	var events []insightsEvent
	for _, g := range groups {
		evs, rec := fetchEvents(r, g, *req.StartTime*1000, *req.EndTime*1000+999, next)
		if rec != nil {
			smRelay(w, rec)
			return
		}
		events = append(events, evs...)
	}
	rows, stats := plan.run(events)
	if req.Limit != nil && *req.Limit > 0 && len(rows) > int(*req.Limit) {
		rows = rows[:*req.Limit]
	}
	stats.LogGroupsScanned = float64(len(groups))
	id, limit, ok := s.register(&insightsQuery{status: "Running", rows: rows, stats: stats})
	if !ok {
		insightsBadRequest(w, r, "LimitExceededException", "Account maximum query concurrency limit of [%d] reached.", limit)
		return
	}
	smWrite(w, http.StatusOK, nil, smJSON(map[string]string{"queryId": id}))
}

// register makes q a running query and returns its id, unless the
// concurrency limit (returned) is reached.
func (s *insightsFront) register(q *insightsQuery) (string, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && s.running >= s.limit {
		return "", s.limit, false
	}
	s.running++
	s.peakRunning = max(s.peakRunning, s.running)
	q.until = 1
	if s.pollsSet {
		q.until = s.pollsUntil
	}
	if s.queries == nil {
		s.queries = map[string]*insightsQuery{}
	}
	id := randomUUID()
	s.queries[id] = q
	return id, s.limit, true
}

// getQueryResults serves GetQueryResults.
func (s *insightsFront) getQueryResults(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		QueryID string `json:"queryId"`
	}
	_ = json.Unmarshal(body, &req)
	s.mu.Lock()
	q, ok := s.queries[req.QueryID]
	if !ok {
		s.mu.Unlock()
		insightsBadRequest(w, r, "ResourceNotFoundException", "Query does not exist: %q", req.QueryID)
		return
	}
	q.polls++
	if q.status == "Running" && q.until >= 0 && q.polls > q.until {
		q.status = "Complete"
		s.running--
	}
	resp := map[string]any{"status": q.status, "results": [][]insightsField{}, "statistics": insightsStats{}}
	if q.status == "Complete" {
		resp["results"], resp["statistics"] = q.rows, q.stats
	}
	s.mu.Unlock()
	smWrite(w, http.StatusOK, nil, smJSON(resp))
}

// stopQuery serves StopQuery.
func (s *insightsFront) stopQuery(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		QueryID string `json:"queryId"`
	}
	_ = json.Unmarshal(body, &req)
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queries[req.QueryID]
	switch {
	case !ok:
		insightsBadRequest(w, r, "ResourceNotFoundException", "Query does not exist: %q", req.QueryID)
	case q.status != "Running":
		insightsBadRequest(w, r, "InvalidParameterException", "Query %s is not running (status %s)", req.QueryID, q.status)
	default:
		q.status = "Cancelled"
		s.running--
		smWrite(w, http.StatusOK, nil, smJSON(map[string]bool{"success": true}))
	}
}

// insightsEvent is one log event a query scans.
type insightsEvent struct {
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// maxKumoEvents is the most events kumo's FilterLogEvents returns in one
// answer; it has no paging.
const maxKumoEvents = 10000

// fetchEvents reads a log group's events between two epoch milliseconds
// (inclusive) from kumo. On failure it returns the answer to relay.
func fetchEvents(r *http.Request, group string, from, to int64, next http.Handler) ([]insightsEvent, *httptest.ResponseRecorder) {
	in := r.Clone(r.Context())
	in.Header.Set("X-Amz-Target", "Logs_20140328.FilterLogEvents")
	in.Header.Del("Content-Length")
	setBody(in, smJSON(map[string]any{"logGroupName": group, "startTime": from, "endTime": to, "limit": maxKumoEvents}))
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, in)
	var out struct{ Events []insightsEvent }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		return nil, rec
	}
	if len(out.Events) >= maxKumoEvents {
		rec := httptest.NewRecorder()
		writeAWSError(rec, r, http.StatusBadRequest, "InvalidParameterException",
			fmt.Sprintf("the testbed's Logs Insights double reads at most %d events of a log group in one query; %s has more in the window", maxKumoEvents-1, group))
		return nil, rec
	}
	return out.Events, nil
}
