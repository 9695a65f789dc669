package testbed

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
)

// ListFunctions paging as AWS does it. kumo builds each page from a Go map,
// so its order changes from call to call and a paginator following its
// NextMarker skips some functions and repeats others. Front asks kumo for
// every function in one answer instead, sorts them by name and serves the
// page itself.
const (
	// listDefaultItems is the page size when MaxItems is not given.
	listDefaultItems = 50
	// listPageCap is the most functions AWS returns in one page, whatever
	// MaxItems asks ("the absolute maximum ... is 50").
	listPageCap = 50
	// listMaxItems is the largest MaxItems AWS accepts (valid range 1-10000).
	listMaxItems = 10000
	// kumoListAll is the MaxItems Front asks kumo for: kumo has no upper
	// bound, so one answer holds every function.
	kumoListAll = 1 << 30
	// listMarkerPrefix versions the opaque marker.
	listMarkerPrefix = "tb1:"
)

// serveListFunctions answers ListFunctions (GET /2015-03-31/functions):
// functions in name order, min(MaxItems, 50) a page, each carrying its
// RevisionId, and a NextMarker (opaque: base64 of the last name served)
// when more follow. A page starts after the marker's name, so a function
// created or deleted between two pages shifts nothing: every function that
// exists throughout the listing is listed exactly once. MaxItems outside
// 1-10000 and a marker Front did not issue are answered 400
// InvalidParameterValueException, as AWS answers them. The caller holds
// lambdaListMu.
func (f *Front) serveListFunctions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := listDefaultItems
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > listMaxItems {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValueException",
				fmt.Sprintf("MaxItems %q is not between 1 and %d", s, listMaxItems))
			return
		}
		size = min(n, listPageCap)
	}
	after, hasMarker := "", false
	if m := q.Get("Marker"); m != "" {
		name, ok := parseListMarker(m)
		if !ok {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValueException", "Marker is not a marker ListFunctions returned")
			return
		}
		after, hasMarker = name, true
	}

	items, ok := f.kumoFunctions(w, r)
	if !ok {
		return
	}
	start := 0
	if hasMarker {
		start, _ = slices.BinarySearchFunc(items, after, func(it listItem, name string) int {
			if it.name <= name {
				return -1
			}
			return 1
		})
	}
	end := min(start+size, len(items))
	page := make([]json.RawMessage, 0, end-start)
	for _, it := range items[start:end] {
		page = append(page, it.raw)
	}
	out := struct {
		Functions  []json.RawMessage `json:"Functions"`
		NextMarker string            `json:"NextMarker,omitempty"`
	}{Functions: page}
	if end < len(items) {
		out.NextMarker = listMarker(items[end-1].name)
	}
	body, err := json.Marshal(out)
	if err != nil {
		writeAWSError(w, r, http.StatusInternalServerError, "ServiceException", "encoding the function list")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-RequestId", randomUUID())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// listItem is one function of kumo's list: its name and its JSON as Front
// serves it (RevisionId added).
type listItem struct {
	name string
	raw  json.RawMessage
}

// kumoFunctions asks kumo (through the proxy, so each item gets its
// RevisionId) for every function in one answer and returns them sorted by
// name. When it cannot, it has answered w (passing on kumo's error) and
// returns false.
func (f *Front) kumoFunctions(w http.ResponseWriter, r *http.Request) ([]listItem, bool) {
	q := r.URL.Query()
	q.Del("Marker")
	q.Set("MaxItems", strconv.Itoa(kumoListAll))
	all := r.Clone(r.Context())
	all.URL.RawQuery = q.Encode()
	rec := httptest.NewRecorder()
	f.proxy.ServeHTTP(rec, all)
	if rec.Code != http.StatusOK {
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return nil, false
	}
	var doc struct {
		Functions  []json.RawMessage
		NextMarker string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc.NextMarker != "" {
		writeAWSError(w, r, http.StatusInternalServerError, "ServiceException", "the emulator's function list is not one page of JSON")
		return nil, false
	}
	items := make([]listItem, 0, len(doc.Functions))
	for _, raw := range doc.Functions {
		var fn struct{ FunctionName string }
		if json.Unmarshal(raw, &fn) != nil || fn.FunctionName == "" {
			writeAWSError(w, r, http.StatusInternalServerError, "ServiceException", "the emulator listed a function without a name")
			return nil, false
		}
		items = append(items, listItem{name: fn.FunctionName, raw: raw})
	}
	slices.SortFunc(items, func(a, b listItem) int { return strings.Compare(a.name, b.name) })
	return items, true
}

// listMarker is the opaque NextMarker of a page whose last function is name.
func listMarker(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(listMarkerPrefix + name))
}

// parseListMarker returns the name a listMarker holds.
func parseListMarker(m string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), listMarkerPrefix)
}
