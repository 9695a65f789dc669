package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Front is the http.Handler in front of kumo. It proxies every request to
// kumo and fills the gaps this project needs:
//
//   - Lambda RevisionId. kumo never sets it and never enforces it. Front
//     keeps one per function: a new random UUID on CreateFunction, on every
//     successful UpdateFunctionConfiguration (PUT
//     /2015-03-31/functions/<name>/configuration) and on every successful
//     UpdateFunctionCode. It adds "RevisionId" to the JSON of every Lambda
//     response carrying a function configuration (CreateFunction,
//     GetFunctionConfiguration, GetFunction under "Configuration",
//     UpdateFunctionConfiguration, UpdateFunctionCode, ListFunctions items).
//     An update whose JSON body carries a RevisionId that differs from the
//     current one is answered 412 with X-Amzn-ErrorType
//     PreconditionFailedException, without reaching kumo, so the SDK returns
//     *types.PreconditionFailedException as AWS does. A function Front has
//     not seen created gets a revision the first time a response shows it.
//   - Lambda consistency. The check and the update run under the function's
//     lock, so two concurrent updates carrying the same RevisionId cannot
//     both pass; reads of the function take the same lock shared, because
//     kumo serialises a configuration outside its own lock and would
//     otherwise race with an update. The locks are process-wide, like
//     kumo's storage, so they hold across Worlds.
//   - Lambda ListFunctions paging. kumo builds each page from a Go map, so
//     a paginator following its NextMarker skips and repeats functions.
//     Front serves the pages itself, in name order, min(MaxItems, 50) a
//     page as AWS does, with an opaque NextMarker; see serveListFunctions.
//   - Lambda update state, when an update duration is set
//     (SetUpdateDuration, Options.UpdateDuration): an accepted update keeps
//     the function LastUpdateStatus InProgress for that long, and another
//     update meanwhile is 409 ResourceConflictException; see
//     front_lambda_update.go. With the default, 0, kumo's State Active and
//     LastUpdateStatus Successful show at once and waiters return
//     immediately.
//   - Lambda control-plane request rates, when quotas are set
//     (SetLambdaQuotas, Options.LambdaQuotas): over the rate a request is
//     429 TooManyRequestsException; see front_lambda_quotas.go.
//   - Logs FilterLogEvents paging: kumo returns at most Limit events and no
//     nextToken; Front pages them in time order; see
//     front_filter_log_events.go.
//   - Secrets Manager tags (TagResource, UntagResource), staging labels
//     (AWSCURRENT, AWSPREVIOUS, AWSPENDING and UpdateSecretVersionStage)
//     and ClientRequestToken idempotency: see secretsFront.
//   - SSM Parameter Store: versions and their history, labels, selectors,
//     SecureString reads without decryption, validation and tags, served
//     by Front from its own store: see ssmFront.
//   - CloudFormation stack parameters, UsePreviousTemplate, a stack named
//     by its id, AWS's errors, LastUpdatedTime and Lambda physical ids: see
//     serveCloudFormation.
//   - Faults and latency (SetFault, SetLatency), and per-operation call
//     counts (Calls, ClientCalls), for reliability tests and benchmarks.
type Front struct {
	proxy   *httputil.ReverseProxy
	latency atomic.Int64

	mu             sync.Mutex
	revisions      map[string]string
	updates        map[string]lambdaUpdate      // the last accepted update of each function, with an update duration
	envs           map[string]map[string]string // the environment of the last configuration of each function Front showed
	updateDuration time.Duration
	updateLog      []LambdaUpdate // every update accepted, in order (LambdaUpdates)
	calls          map[string]int
	clientCalls    map[string]int // calls less the testbed API's own
	fault          func(r *http.Request) *Fault

	quotas   lambdaQuotas // Lambda request rates: see front_lambda_quotas.go
	secrets  secretsFront
	ssm      ssmFront      // Parameter Store: see front_ssm.go
	insights insightsFront // Logs Insights: see front_insights.go
}

// NewFront returns a Front proxying to the kumo server at kumoURL.
func NewFront(kumoURL string) (*Front, error) {
	target, err := url.Parse(kumoURL)
	if err != nil {
		return nil, fmt.Errorf("parsing kumo url: %w", err)
	}
	f := &Front{
		revisions:   map[string]string{},
		updates:     map[string]lambdaUpdate{},
		envs:        map[string]map[string]string{},
		calls:       map[string]int{},
		clientCalls: map[string]int{},
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // kumo routes some services by Host; keep the client's.
		},
		ModifyResponse: f.modifyResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// kumo is gone (the World is closing) or the client left: answer
			// like an unavailable AWS endpoint instead of logging to stderr.
			writeAWSError(w, r, http.StatusBadGateway, "ServiceUnavailableException", "emulator unavailable")
		},
	}
	return f, nil
}

// ServeHTTP counts the call, applies latency and any fault, then the
// Lambda request rates, serves what kumo lacks, enforces RevisionId and
// updates in progress, pages ListFunctions and FilterLogEvents and proxies
// the rest to kumo.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading request body", http.StatusBadRequest)
		return
	}
	setBody(r, body)
	op := opName(r, body)
	f.mu.Lock()
	f.calls[op]++
	if !FromTestbedAPI(r) {
		f.clientCalls[op]++
	}
	fault := f.fault
	f.mu.Unlock()

	if !sleepCtx(r.Context(), time.Duration(f.latency.Load())) {
		return
	}
	if fault != nil {
		probe := r.Clone(r.Context())
		setBody(probe, body)
		if ft := fault(probe); ft != nil {
			if !sleepCtx(r.Context(), ft.Delay) {
				return
			}
			if ft.Status != 0 {
				writeAWSError(w, r, ft.Status, ft.ErrorType, ft.Message)
				return
			}
		}
	}
	setBody(r, body)
	if f.quotas.throttle(w, r, op) { // front_lambda_quotas.go
		return
	}
	if f.insights.serve(w, r, body, f.proxy) || f.serveFilterLogEvents(w, r, body) { // front_insights.go, front_filter_log_events.go
		return
	}
	if f.secrets.serve(w, r, body, f.proxy) || f.ssm.serve(w, r, body, f.proxy) || serveDashboards(w, r, body) || serveCloudWatch(w, r, body, f.proxy) { // front_ssm.go, front_cloudwatch_dashboards.go, front_cloudwatch.go
		return
	}
	if serveCloudFormation(w, r, body, f.proxy) { // front_cloudformation.go
		return
	}

	defer lockLambda(r, body)()
	if isLambdaCollection(r.URL.Path) && r.Method == http.MethodGet {
		f.serveListFunctions(w, r)
		return
	}
	if fn, sub, ok := lambdaFunctionPath(r.URL.Path); ok && r.Method == http.MethodPut && (sub == "configuration" || sub == "code") {
		if f.refuseUpdateInProgress(w, r, fn) { // front_lambda_update.go
			return
		}
		var req struct{ RevisionId string }
		_ = json.Unmarshal(body, &req)
		if cur := f.revision(fn); req.RevisionId != "" && cur != "" && req.RevisionId != cur {
			writeAWSError(w, r, http.StatusPreconditionFailed, "PreconditionFailedException",
				"The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
			return
		}
	}
	f.proxy.ServeHTTP(w, r)
}

// kumo's Lambda storage is global to the process, and it serialises a
// function outside its own lock, so the locks guarding it are global too:
// lambdaListMu is held shared by every write and exclusively by
// ListFunctions (which reads every function); lambdaFnLocks holds one lock
// per function name, exclusive for writes and shared for reads.
var (
	lambdaListMu  sync.RWMutex
	lambdaFnMu    sync.Mutex
	lambdaFnLocks = map[string]*sync.RWMutex{}
)

// lockLambda takes the locks a Lambda request needs and returns their
// release; for any other request it does nothing. A write holds its
// function's lock across the RevisionId check and the forward to kumo, so
// two concurrent updates carrying one RevisionId cannot both pass.
func lockLambda(r *http.Request, body []byte) func() {
	fn, sub, isFn := lambdaFunctionPath(r.URL.Path)
	switch {
	case isLambdaCollection(r.URL.Path) && r.Method == http.MethodGet:
		lambdaListMu.Lock()
		return lambdaListMu.Unlock
	case isLambdaCollection(r.URL.Path) && r.Method == http.MethodPost:
		var req struct{ FunctionName string }
		_ = json.Unmarshal(body, &req)
		fn = normalizeFunctionName(req.FunctionName)
	case isFn && r.Method == http.MethodGet:
		l := functionLock(fn)
		l.RLock()
		return l.RUnlock
	case isFn && (r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPost && sub != "invocations"):
	default:
		return func() {}
	}
	lambdaListMu.RLock()
	l := functionLock(fn)
	l.Lock()
	return func() {
		l.Unlock()
		lambdaListMu.RUnlock()
	}
}

// functionLock returns the lock of the named function.
func functionLock(fn string) *sync.RWMutex {
	lambdaFnMu.Lock()
	defer lambdaFnMu.Unlock()
	l, ok := lambdaFnLocks[fn]
	if !ok {
		l = &sync.RWMutex{}
		lambdaFnLocks[fn] = l
	}
	return l
}

// revision returns the function's current RevisionId, "" if unknown.
func (f *Front) revision(fn string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revisions[fn]
}

// revisionMode says what a response carrying a function configuration
// tells Front about the function's revision.
type revisionMode int

const (
	revisionRead   revisionMode = iota // a read: the revision stays
	revisionCreate                     // CreateFunction: a new revision
	revisionUpdate                     // an accepted update: a new revision and, with an update duration, an update in progress
)

// modifyResponse adds RevisionId (and, during an update, LastUpdateStatus
// InProgress) to successful Lambda responses that carry a function
// configuration, bumping the revision after a successful write.
func (f *Front) modifyResponse(resp *http.Response) error {
	req := resp.Request
	fn, sub, isFn := lambdaFunctionPath(req.URL.Path)
	isList := isLambdaCollection(req.URL.Path)
	if (!isFn && !isList) || resp.StatusCode/100 != 2 || resp.Header.Get("Content-Encoding") != "" {
		return nil
	}
	if isFn && req.Method == http.MethodDelete && sub == "" {
		f.mu.Lock()
		delete(f.revisions, fn)
		delete(f.updates, fn)
		delete(f.envs, fn)
		f.mu.Unlock()
		return nil
	}
	mode := revisionRead
	switch {
	case req.Method == http.MethodPost && isList:
		mode = revisionCreate
	case req.Method == http.MethodPut && (sub == "configuration" || sub == "code"):
		mode = revisionUpdate
	}
	carries := isList || sub == "" || sub == "configuration" || sub == "code"
	if !carries {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading kumo response: %w", err)
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) == nil {
		switch {
		case isList && req.Method == http.MethodGet:
			doc["Functions"] = f.withRevisions(doc["Functions"])
		case isFn && req.Method == http.MethodGet && sub == "":
			doc["Configuration"] = f.withRevision(doc["Configuration"], revisionRead)
		default:
			doc = f.withRevisionDoc(doc, mode)
		}
		if out, err := json.Marshal(doc); err == nil {
			body = out
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// withRevisionDoc sets "RevisionId" in a function configuration object,
// keyed by its FunctionName, and marks it InProgress while the function has
// an update in progress.
func (f *Front) withRevisionDoc(doc map[string]json.RawMessage, mode revisionMode) map[string]json.RawMessage {
	var name, arn string
	if doc == nil || json.Unmarshal(doc["FunctionName"], &name) != nil || name == "" {
		return doc
	}
	_ = json.Unmarshal(doc["FunctionArn"], &arn)
	rev, inProgress := f.noteConfiguration(name, arn, configEnvironment(doc), mode)
	doc["RevisionId"], _ = json.Marshal(rev)
	if inProgress {
		withUpdateStatus(doc)
	}
	return doc
}

// withRevision is withRevisionDoc on a raw JSON object.
func (f *Front) withRevision(raw json.RawMessage, mode revisionMode) json.RawMessage {
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil || doc == nil {
		return raw
	}
	out, err := json.Marshal(f.withRevisionDoc(doc, mode))
	if err != nil {
		return raw
	}
	return out
}

// withRevisions is withRevision on each item of a JSON array.
func (f *Front) withRevisions(raw json.RawMessage) json.RawMessage {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil || items == nil {
		return raw
	}
	for i := range items {
		items[i] = f.withRevision(items[i], revisionRead)
	}
	out, err := json.Marshal(items)
	if err != nil {
		return raw
	}
	return out
}

// lambdaFunctionPath splits /2015-03-31/functions/<name>[/<sub>] into the
// normalised function name and the sub-resource ("" for the function itself).
func lambdaFunctionPath(path string) (fn, sub string, ok bool) {
	rest, found := strings.CutPrefix(path, "/2015-03-31/functions/")
	if !found || rest == "" {
		return "", "", false
	}
	name, sub, _ := strings.Cut(rest, "/")
	if strings.Contains(sub, "/") {
		return "", "", false
	}
	return normalizeFunctionName(name), sub, true
}

// isLambdaCollection reports whether path is the functions collection
// (CreateFunction, ListFunctions).
func isLambdaCollection(path string) bool {
	return path == "/2015-03-31/functions" || path == "/2015-03-31/functions/"
}

// normalizeFunctionName reduces a function ARN, partial ARN or
// name:qualifier to the bare function name.
func normalizeFunctionName(name string) string {
	if _, after, ok := strings.Cut(name, ":function:"); ok {
		name = after
	}
	name, _, _ = strings.Cut(name, ":")
	return name
}

// setBody replaces r's body with a fresh reader over body.
func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
}

// sleepCtx sleeps d unless ctx ends first; it reports whether it slept fully.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
