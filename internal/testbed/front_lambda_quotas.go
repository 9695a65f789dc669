package testbed

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/time/rate"
)

// Lambda's control plane has two request-rate quotas per account and
// Region that bound how fast a fleet can be read and rotated: GetFunction
// has 100 requests per second of its own, and every other API but
// invocation, GetFunction and GetPolicy shares 15 (GetFunctionConfiguration,
// UpdateFunctionConfiguration, ListFunctions, ListTags, TagResource,
// CreateFunction, …). Over the rate AWS answers 429 TooManyRequestsException
// with Reason CallerRateLimitExceeded. kumo has no quotas at all, so Front
// models the two buckets when asked (Options.LambdaQuotas,
// Front.SetLambdaQuotas), one pair per World.
//
// Not modelled: GetPolicy's own 15 per second (it passes unlimited, as do
// invocations) and the concurrency quotas of invocation. A 429 carries
// Retry-After: 1, as Lambda's do.

// Default rates of LambdaQuotas, AWS's default quotas.
const (
	defaultControlPerSecond     = 15
	defaultGetFunctionPerSecond = 100
)

// LambdaQuotas are the Lambda control-plane request rates Front enforces,
// each as a token bucket holding one second's worth of requests (at least
// one), so a burst of that many passes at once and the rest at the rate.
// Only the code under test is limited: requests of the testbed's own Valine
// API (FromTestbedAPI) and of the World's own client (Start, Close, Env,
// SetSecrets, EditEnv) neither consume the buckets nor are counted in
// LambdaQuotaStats.
type LambdaQuotas struct {
	// ControlPerSecond is the rate shared by every Lambda API except
	// invocation, GetFunction and GetPolicy; 0 means 15, AWS's default
	// quota; a negative rate means unlimited.
	ControlPerSecond float64
	// GetFunctionPerSecond is GetFunction's own rate; 0 means 100, AWS's
	// default quota; a negative rate means unlimited.
	GetFunctionPerSecond float64
}

// LambdaQuotaStats counts the Lambda requests of the code under test per
// quota class since the World started: those let through (whether or not
// they then succeeded) and those answered 429 TooManyRequestsException.
// They are counted with or without LambdaQuotas.
type LambdaQuotaStats struct {
	Control              int // control-plane requests let through
	ControlThrottled     int // control-plane requests answered 429
	GetFunction          int // GetFunction requests let through
	GetFunctionThrottled int // GetFunction requests answered 429
	Throttled            int // ControlThrottled + GetFunctionThrottled
}

// SetLambdaQuotas makes Front enforce q from now on, with both buckets
// full; nil (the default) removes the limits. The counts of
// LambdaQuotaStats carry on.
func (f *Front) SetLambdaQuotas(q *LambdaQuotas) {
	f.quotas.mu.Lock()
	defer f.quotas.mu.Unlock()
	f.quotas.control, f.quotas.getFunction = nil, nil
	if q == nil {
		return
	}
	f.quotas.control = newTokenBucket(orDefault(q.ControlPerSecond, defaultControlPerSecond))
	f.quotas.getFunction = newTokenBucket(orDefault(q.GetFunctionPerSecond, defaultGetFunctionPerSecond))
}

// LambdaQuotaStats returns the counts of the Lambda requests of the code
// under test, per quota class.
func (f *Front) LambdaQuotaStats() LambdaQuotaStats {
	f.quotas.mu.Lock()
	defer f.quotas.mu.Unlock()
	s := f.quotas.stats
	s.Throttled = s.ControlThrottled + s.GetFunctionThrottled
	return s
}

// lambdaQuotas holds a Front's buckets (nil = unlimited) and counts.
type lambdaQuotas struct {
	mu                   sync.Mutex
	control, getFunction *rate.Limiter
	stats                LambdaQuotaStats
}

// quotaClass is which bucket a request draws from.
type quotaClass int

const (
	quotaNone        quotaClass = iota // not limited here: not Lambda, invocation, GetPolicy
	quotaControl                       // the shared control-plane bucket
	quotaGetFunction                   // GetFunction's bucket
)

// lambdaQuotaClass classifies a request named op (see opName).
func lambdaQuotaClass(r *http.Request, op string) quotaClass {
	name, ok := strings.CutPrefix(op, "lambda:")
	switch {
	case !ok:
		return quotaNone
	case name == "GetFunction":
		return quotaGetFunction
	case name == "GetPolicy", name == "Invoke", isInvocationPath(r.URL.Path):
		return quotaNone
	}
	return quotaControl
}

// isInvocationPath reports whether path is one of Lambda's invocation
// routes (Invoke, InvokeWithResponseStream, InvokeAsync).
func isInvocationPath(path string) bool {
	path = strings.TrimSuffix(path, "/")
	return strings.HasSuffix(path, "/invocations") || strings.HasSuffix(path, "/response-streaming-invocations") ||
		strings.HasSuffix(path, "/invoke-async")
}

// throttle counts a Lambda request of the code under test in its class and
// answers it 429 TooManyRequestsException when its bucket is empty; it
// reports whether it answered.
func (q *lambdaQuotas) throttle(w http.ResponseWriter, r *http.Request, op string) bool {
	class := lambdaQuotaClass(r, op)
	if class == quotaNone || FromTestbedAPI(r) || fromTestbedWorld(r) {
		return false
	}
	q.mu.Lock()
	bucket, passed, throttled := q.control, &q.stats.Control, &q.stats.ControlThrottled
	if class == quotaGetFunction {
		bucket, passed, throttled = q.getFunction, &q.stats.GetFunction, &q.stats.GetFunctionThrottled
	}
	ok := bucket == nil || bucket.Allow()
	if ok {
		*passed++
	} else {
		*throttled++
	}
	q.mu.Unlock()
	if ok {
		return false
	}
	writeRateExceeded(w)
	return true
}

// writeRateExceeded answers as Lambda answers a request over its quota, so
// the SDK returns *types.TooManyRequestsException with Reason
// CallerRateLimitExceeded.
func writeRateExceeded(w http.ResponseWriter) {
	body, _ := json.Marshal(struct {
		Type    string `json:"Type"`
		Message string `json:"message"`
		Reason  string `json:"Reason"`
	}{"User", "Rate exceeded", "CallerRateLimitExceeded"})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-ErrorType", "TooManyRequestsException")
	h.Set("X-Amzn-RequestId", randomUUID())
	h.Set("Retry-After", "1")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(body)
}

// newTokenBucket returns a full bucket of one second's worth (at least one
// token) for rate, or nil (unlimited) for a negative rate.
func newTokenBucket(r float64) *rate.Limiter {
	if r < 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(r), int(math.Ceil(max(r, 1))))
}

// orDefault is v, or def when v is 0.
func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}
