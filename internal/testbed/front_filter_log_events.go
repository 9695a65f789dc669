package testbed

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
)

// FilterLogEvents paging. kumo answers FilterLogEvents with the first Limit
// matching events (50 by default, 10,000 at most), sorted by timestamp with
// ties in no fixed order, and never a nextToken, so a client following
// nextToken sees only the first page. Front serves the pages itself: it asks
// kumo for the matching events from the page's start on (kumo still does the
// matching, a plain substring of filterPattern, and the group, stream and
// time selection), orders them by timestamp, then log stream name, then
// position in the stream, and answers the events after the page token, at
// most Limit of them (default 50, as kumo; at most 10,000), with an opaque
// nextToken when more follow. The token holds the last event served, so an
// event that exists throughout the listing is listed exactly once, and a
// listing of 50 events or fewer is kumo's answer, in a fixed order. A
// nextToken Front did not issue is InvalidParameterException.
//
// Not modelled: AWS's empty pages while it scans, the limit on the
// response size (1 MB), and pages reached after more than 9,999 events
// share one millisecond (refused with InvalidParameterException: kumo's
// answer is capped at 10,000).
const (
	// fleDefaultLimit is the page size without Limit: kumo's.
	fleDefaultLimit = 50
	// fleMaxLimit is the largest page, AWS's and kumo's.
	fleMaxLimit = 10000
	// fleTokenPrefix versions the opaque nextToken.
	fleTokenPrefix = "tbfle1:"
)

// filterEvent is one event of kumo's answer: its place in the order and its
// JSON as kumo gave it.
type filterEvent struct {
	ts     int64
	stream string
	index  int // position in its stream, from kumo's eventId "<ts>-<index>"
	raw    json.RawMessage
}

// compareFilterEvents orders events by timestamp, stream, position.
func compareFilterEvents(a, b filterEvent) int {
	return cmp.Or(cmp.Compare(a.ts, b.ts), strings.Compare(a.stream, b.stream), cmp.Compare(a.index, b.index))
}

// serveFilterLogEvents answers r when it is FilterLogEvents and reports
// whether it did.
func (f *Front) serveFilterLogEvents(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if r.Header.Get("X-Amz-Target") != "Logs_20140328.FilterLogEvents" {
		return false
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "Failed to parse request body")
		return true
	}
	var limit *int
	var token string
	var start *int64
	if !jsonField(req, "limit", &limit) || !jsonField(req, "nextToken", &token) || !jsonField(req, "startTime", &start) {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "limit, nextToken or startTime has the wrong type")
		return true
	}
	size := fleDefaultLimit
	if limit != nil && *limit > 0 {
		size = min(*limit, fleMaxLimit)
	}
	var after *filterEvent
	if token != "" {
		ev, ok := parseFilterToken(token)
		if !ok {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "The specified nextToken is invalid.")
			return true
		}
		after = &ev
		if start == nil || *start < ev.ts {
			req["startTime"] = json.RawMessage(strconv.FormatInt(ev.ts, 10))
		}
	}
	delete(req, "nextToken")
	req["limit"] = json.RawMessage(strconv.Itoa(fleMaxLimit))

	rec := httptest.NewRecorder()
	f.proxy.ServeHTTP(rec, withBody(r, smJSON(req)))
	if rec.Code != http.StatusOK {
		relay(w, rec)
		return true
	}
	var got struct {
		Events             []json.RawMessage `json:"events"`
		SearchedLogStreams json.RawMessage   `json:"searchedLogStreams"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		writeAWSError(w, r, http.StatusInternalServerError, "ServiceUnavailableException", "the emulator's FilterLogEvents answer is not JSON")
		return true
	}
	events, err := parseFilterEvents(got.Events)
	if err != nil {
		writeAWSError(w, r, http.StatusInternalServerError, "ServiceUnavailableException", err.Error())
		return true
	}
	slices.SortFunc(events, compareFilterEvents)
	if len(got.Events) >= fleMaxLimit {
		// kumo cut its answer at some event of the last millisecond, in no
		// fixed order among that millisecond's: serve up to the one before.
		last := events[len(events)-1].ts
		cut, _ := slices.BinarySearchFunc(events, last, func(e filterEvent, ts int64) int { return cmp.Compare(e.ts, ts) })
		events = events[:cut]
	}
	if after != nil {
		from, _ := slices.BinarySearchFunc(events, *after, func(e, a filterEvent) int {
			if compareFilterEvents(e, a) <= 0 {
				return -1
			}
			return 1
		})
		events = events[from:]
	}
	truncated := len(got.Events) >= fleMaxLimit
	if len(events) == 0 && truncated {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException",
			fmt.Sprintf("the testbed pages FilterLogEvents only where fewer than %d matching events share a millisecond", fleMaxLimit))
		return true
	}
	page := events[:min(size, len(events))]
	out := struct {
		Events             []json.RawMessage `json:"events,omitempty"`
		SearchedLogStreams json.RawMessage   `json:"searchedLogStreams,omitempty"`
		NextToken          string            `json:"nextToken,omitempty"`
	}{SearchedLogStreams: got.SearchedLogStreams}
	for _, e := range page {
		out.Events = append(out.Events, e.raw)
	}
	if len(page) < len(events) || truncated {
		out.NextToken = filterToken(page[len(page)-1])
	}
	smWrite(w, http.StatusOK, nil, smJSON(out))
	return true
}

// parseFilterEvents reads the order of each event of kumo's answer.
func parseFilterEvents(raws []json.RawMessage) ([]filterEvent, error) {
	events := make([]filterEvent, 0, len(raws))
	for _, raw := range raws {
		var e struct {
			LogStreamName string `json:"logStreamName"`
			Timestamp     int64  `json:"timestamp"`
			EventID       string `json:"eventId"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("the emulator's FilterLogEvents event is not JSON: %w", err)
		}
		cut := strings.LastIndex(e.EventID, "-")
		i, err := strconv.Atoi(e.EventID[cut+1:])
		if cut < 0 || err != nil || e.EventID[:cut] != strconv.FormatInt(e.Timestamp, 10) {
			return nil, fmt.Errorf("the emulator's FilterLogEvents event id %q is not <timestamp>-<index>", e.EventID)
		}
		events = append(events, filterEvent{ts: e.Timestamp, stream: e.LogStreamName, index: i, raw: raw})
	}
	return events, nil
}

// filterToken is the opaque nextToken of a page whose last event is e.
func filterToken(e filterEvent) string {
	return makeToken(fleTokenPrefix, fmt.Sprintf("%d/%d/%s", e.ts, e.index, e.stream))
}

// parseFilterToken returns the event a filterToken names.
func parseFilterToken(tok string) (filterEvent, bool) {
	key, ok := parseToken(tok, fleTokenPrefix)
	if !ok {
		return filterEvent{}, false
	}
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 {
		return filterEvent{}, false
	}
	ts, err1 := strconv.ParseInt(parts[0], 10, 64)
	idx, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return filterEvent{}, false
	}
	return filterEvent{ts: ts, index: idx, stream: parts[2]}, true
}

// jsonField decodes doc[key] into v when it is there, reporting false when
// it is there and cannot be.
func jsonField(doc map[string]json.RawMessage, key string, v any) bool {
	raw, ok := doc[key]
	return !ok || json.Unmarshal(raw, v) == nil
}
