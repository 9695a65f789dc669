package testbed

import (
	"encoding/json"
	"maps"
	"net/http"
	"time"
)

// Lambda's per-function update state, which kumo does not model: it applies
// an update at once and reports LastUpdateStatus Successful. On AWS an
// accepted UpdateFunctionConfiguration or UpdateFunctionCode leaves the
// function InProgress while new execution environments are prepared (the
// old ones keep serving the previous configuration); another update of the
// function meanwhile is refused with ResourceConflictException, and the
// FunctionUpdatedV2 waiter polls GetFunction until the status is Successful.
//
// Front models it when its update duration is above 0 (Options.UpdateDuration,
// Front.SetUpdateDuration): an update kumo accepted makes the function
// InProgress for that long. Every configuration Front serves meanwhile
// (GetFunction's Configuration, GetFunctionConfiguration, ListFunctions
// items, the update's own answer) says LastUpdateStatus "InProgress", with
// no LastUpdateStatusReason or ReasonCode; afterwards kumo's "Successful"
// shows again. Another UpdateFunctionConfiguration or UpdateFunctionCode of
// the function while it is in progress is answered 409
// ResourceConflictException, without reaching kumo and before its
// RevisionId is checked, so the SDK returns
// *types.ResourceConflictException. The testbed's Valine API keeps serving
// the previous environment until the update completes, as the previous
// execution environments do: Front remembers the environment of the last
// configuration each function showed, so an update knows the one it
// replaces, and hands it to the API in process (servedConfiguration; see
// secretSource and valineRuntime). Only the API sees it; every Lambda
// response shows the new configuration, as on AWS.
//
// Not modelled: a failed update (LastUpdateStatus Failed), State Pending
// after CreateFunction, and the other operations AWS also refuses during an
// update (PublishVersion, PutFunctionConcurrency, …), which pass.

// lambdaUpdate is one function's last accepted update while Front models
// update durations.
type lambdaUpdate struct {
	until   time.Time         // InProgress before this instant, Successful from it
	prev    string            // the RevisionId before the update, which the API keeps serving
	prevEnv map[string]string // the environment before the update, which the API keeps serving
	arn     string            // the function's ARN, for the conflict message
}

// SetUpdateDuration makes every update Front accepts from now on keep its
// function InProgress for d (0, the default: Successful at once, as kumo
// reports). Updates already in progress keep the duration they started
// with. Options.UpdateDuration sets it when a World starts.
func (f *Front) SetUpdateDuration(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updateDuration = max(d, 0)
}

// LambdaUpdate is one update Front accepted (UpdateFunctionConfiguration
// or UpdateFunctionCode, from anyone): when, and when the function began
// serving it (Accepted plus the update duration). Benchmarks measure a
// fleet's split window from these, as the world saw it rather than as the
// client polled it.
type LambdaUpdate struct {
	Function       string
	Accepted, Done time.Time
}

// LambdaUpdates returns the updates accepted at or after since, in the
// order they were accepted.
func (f *Front) LambdaUpdates(since time.Time) []LambdaUpdate {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []LambdaUpdate
	for _, u := range f.updateLog {
		if !u.Accepted.Before(since) {
			out = append(out, u)
		}
	}
	return out
}

// updatingLocked returns fn's update in progress, if any. The caller holds
// f.mu.
func (f *Front) updatingLocked(fn string) (lambdaUpdate, bool) {
	u, ok := f.updates[fn]
	if !ok || !time.Now().Before(u.until) {
		return lambdaUpdate{}, false
	}
	return u, true
}

// servedConfiguration returns the RevisionId and a copy of the environment
// of the configuration the function's execution environments serve: the
// ones before the update in progress, if one is, else the current ones. The
// revision is "" and env nil when Front has not seen the function. The
// API's secret source and the valine backend read them.
func (f *Front) servedConfiguration(fn string) (rev string, env map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.updatingLocked(fn); ok {
		return u.prev, maps.Clone(u.prevEnv)
	}
	return f.revisions[fn], maps.Clone(f.envs[fn])
}

// refuseUpdateInProgress answers an update of fn with 409
// ResourceConflictException when an update of fn is in progress, and
// reports whether it did. The caller holds fn's write lock, so the check
// and the update it lets through cannot interleave with another update.
func (f *Front) refuseUpdateInProgress(w http.ResponseWriter, r *http.Request, fn string) bool {
	f.mu.Lock()
	u, busy := f.updatingLocked(fn)
	f.mu.Unlock()
	if !busy {
		return false
	}
	arn := u.arn
	if arn == "" {
		arn = "arn:aws:lambda:us-east-1:000000000000:function:" + fn
	}
	writeAWSError(w, r, http.StatusConflict, "ResourceConflictException",
		"The operation cannot be performed at this time. An update is in progress for resource: "+arn)
	return true
}

// noteConfiguration records what a Lambda response carrying fn's
// configuration (with environment env) tells Front, and returns the
// RevisionId to show and whether the function is InProgress. A read
// assigns a revision to a function seen for the first time; a create
// assigns a new one; an accepted update assigns a new one and, with an
// update duration, starts the update, keeping the revision and environment
// it replaces. The caller holds fn's lock (shared for a read), so the
// environment last recorded is the one the update replaced.
func (f *Front) noteConfiguration(fn, arn string, env map[string]string, mode revisionMode) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev, known := f.revisions[fn]
	rev := prev
	if !known || mode != revisionRead {
		rev = randomUUID()
		f.revisions[fn] = rev
	}
	if mode == revisionUpdate {
		now := time.Now()
		done := now.Add(f.updateDuration)
		f.updateLog = append(f.updateLog, LambdaUpdate{Function: fn, Accepted: now, Done: done})
		if f.updateDuration > 0 {
			f.updates[fn] = lambdaUpdate{until: done, prev: prev, prevEnv: f.envs[fn], arn: arn}
		}
	}
	f.envs[fn] = env
	_, busy := f.updatingLocked(fn)
	return rev, busy
}

// configEnvironment returns the environment variables of a function
// configuration object (none when it has no Environment).
func configEnvironment(doc map[string]json.RawMessage) map[string]string {
	var e struct{ Variables map[string]string }
	if raw, ok := doc["Environment"]; ok {
		_ = json.Unmarshal(raw, &e)
	}
	if e.Variables == nil {
		return map[string]string{}
	}
	return e.Variables
}

// withUpdateStatus marks a function configuration object InProgress.
func withUpdateStatus(doc map[string]json.RawMessage) {
	doc["LastUpdateStatus"] = json.RawMessage(`"InProgress"`)
	delete(doc, "LastUpdateStatusReason")
	delete(doc, "LastUpdateStatusReasonCode")
}
