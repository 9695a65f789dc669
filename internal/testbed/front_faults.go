package testbed

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Fault is what Front does instead of serving an AWS request: wait Delay
// (honouring the request's context, so a client timeout shorter than Delay
// looks like a hung endpoint), then, when Status is not 0, answer with that
// status and an error of type ErrorType (e.g. "ThrottlingException",
// "TooManyRequestsException", "ServiceException") in the protocol of the
// request, so the SDK returns its typed error. A Fault with Status 0 only
// delays the request, which is then served normally.
type Fault struct {
	Status    int
	ErrorType string
	Message   string
	Delay     time.Duration
}

// SetFault installs fn, called for every AWS request before it is served
// (with a copy of the request whose body can be read); a nil result serves
// the request normally. SetFault(nil) removes the hook. Requests sent by the
// testbed's own API also pass through it; tell them apart with
// FromTestbedAPI.
func (f *Front) SetFault(fn func(r *http.Request) *Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// SetLatency delays every AWS request by d before it is served (0 = none).
func (f *Front) SetLatency(d time.Duration) { f.latency.Store(int64(d)) }

// Calls returns how many requests Front received for op, named
// "<signing name>:<operation>" such as "lambda:UpdateFunctionConfiguration",
// "lambda:GetFunctionConfiguration", "logs:FilterLogEvents",
// "monitoring:PutMetricData" or "sts:GetCallerIdentity". Faulted requests
// count, and so do those refused over the Lambda quotas (LambdaQuotas) or
// during an update in progress (Options.UpdateDuration); so do the testbed
// API's own reads and log writes.
func (f *Front) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// ClientCalls is Calls without the testbed API's own requests (see
// FromTestbedAPI): the requests the code under test sent for op. The API
// re-reads its function's configuration as often as
// Options.PropagationDelay lets it, so Calls("lambda:GetFunctionConfiguration")
// says more about the API than about the caller.
func (f *Front) ClientCalls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clientCalls[op]
}

// testbedAPIAppID marks, in the User-Agent, the SDK requests the testbed's
// Valine API sends (secret reads and log writes).
const testbedAPIAppID = "valine-testbed-api"

// testbedWorldAppID marks, in the User-Agent, the SDK requests the World
// sends itself (creating and deleting functions, Env, SetSecrets, EditEnv).
// They count in Calls and ClientCalls, as they always have, but not against
// the Lambda quotas: they are not the code under test.
const testbedWorldAppID = "valine-testbed-world"

// fromTestbedWorld reports whether an AWS request was sent by the World's
// own client.
func fromTestbedWorld(r *http.Request) bool {
	return strings.Contains(r.Header.Get("User-Agent"), "app/"+testbedWorldAppID)
}

// FromTestbedAPI reports whether an AWS request was sent by the testbed's
// Valine API itself rather than by the code under test, so a fault hook can
// spare (or target) it.
func FromTestbedAPI(r *http.Request) bool {
	return strings.Contains(r.Header.Get("User-Agent"), "app/"+testbedAPIAppID)
}

// opName names the operation of an AWS request: the SigV4 signing name, a
// colon and the operation, read from X-Amz-Target (JSON 1.0/1.1), the
// Smithy RPC v2 CBOR path, the Query protocol's Action or the Lambda REST
// route.
func opName(r *http.Request, body []byte) string {
	svc := signingName(r.Header.Get("Authorization"))
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, op, _ := strings.Cut(target, ".")
		if svc == "" {
			svc = strings.ToLower(strings.Split(prefix, "_")[0])
		}
		return svc + ":" + op
	}
	if _, rest, ok := strings.Cut(r.URL.Path, "/operation/"); ok && strings.HasPrefix(r.URL.Path, "/service/") {
		return svc + ":" + rest
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
			return svc + ":" + v.Get("Action")
		}
	}
	if op := lambdaOp(r.Method, r.URL.Path); op != "" {
		return "lambda:" + op
	}
	if svc == "" {
		svc = "unknown"
	}
	return svc + ":" + r.Method + " " + r.URL.Path
}

// lambdaOp maps a Lambda REST route to its operation name, "" if unknown.
func lambdaOp(method, path string) string {
	if isLambdaCollection(path) {
		return map[string]string{http.MethodPost: "CreateFunction", http.MethodGet: "ListFunctions"}[method]
	}
	if strings.HasPrefix(path, "/2017-03-31/tags/") {
		return map[string]string{http.MethodGet: "ListTags", http.MethodPost: "TagResource", http.MethodDelete: "UntagResource"}[method]
	}
	_, sub, ok := lambdaFunctionPath(path)
	if !ok {
		return ""
	}
	return map[string]string{
		http.MethodGet + " ":               "GetFunction",
		http.MethodDelete + " ":            "DeleteFunction",
		http.MethodGet + " configuration":  "GetFunctionConfiguration",
		http.MethodPut + " configuration":  "UpdateFunctionConfiguration",
		http.MethodPut + " code":           "UpdateFunctionCode",
		http.MethodPost + " invocations":   "Invoke",
		http.MethodGet + " versions":       "ListVersionsByFunction",
		http.MethodPost + " versions":      "PublishVersion",
		http.MethodGet + " aliases":        "ListAliases",
		http.MethodGet + " policy":         "GetPolicy",
		http.MethodPost + " policy":        "AddPermission",
		http.MethodGet + " concurrency":    "GetFunctionConcurrency",
		http.MethodPut + " concurrency":    "PutFunctionConcurrency",
		http.MethodDelete + " concurrency": "DeleteFunctionConcurrency",
		http.MethodGet + " url":            "GetFunctionUrlConfig",
		http.MethodPost + " url":           "CreateFunctionUrlConfig",
		http.MethodPut + " url":            "UpdateFunctionUrlConfig",
		http.MethodDelete + " url":         "DeleteFunctionUrlConfig",
	}[method+" "+sub]
}

// signingName returns the service from a SigV4 Authorization header's
// credential scope (Credential=AKID/date/region/service/aws4_request).
func signingName(auth string) string {
	_, scope, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	scope, _, _ = strings.Cut(scope, ",")
	parts := strings.Split(scope, "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// writeAWSError answers r with an AWS error in r's protocol: REST-JSON
// (Lambda), JSON 1.0/1.1 (X-Amz-Target), Smithy RPC v2 CBOR or Query (XML).
func writeAWSError(w http.ResponseWriter, r *http.Request, status int, errType, message string) {
	if errType == "" {
		errType = "ServiceException"
	}
	h := w.Header()
	h.Set("X-Amzn-RequestId", randomUUID())
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		h.Set("Content-Type", "application/x-amz-json-1.1")
		h.Set("X-Amzn-ErrorType", errType)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": errType, "message": message})
	case strings.HasPrefix(r.URL.Path, "/service/") && strings.Contains(r.URL.Path, "/operation/"):
		h.Set("Content-Type", "application/cbor")
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		body := cborTextMap([][2]string{{"__type", errType}, {"message", message}})
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		type errXML struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		doc := struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Error     errXML   `xml:"Error"`
			RequestID string   `xml:"RequestId"`
		}{Error: errXML{Type: "Sender", Code: errType, Message: message}, RequestID: randomUUID()}
		if status >= 500 {
			doc.Error.Type = "Receiver"
		}
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		_ = xml.NewEncoder(w).Encode(doc)
	default:
		h.Set("Content-Type", "application/json")
		h.Set("X-Amzn-ErrorType", errType)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": message})
	}
}

// cborTextMap encodes a CBOR map of text strings to text strings, enough for
// a Smithy RPC v2 error body.
func cborTextMap(pairs [][2]string) []byte {
	out := cborHead(nil, 5, len(pairs))
	for _, p := range pairs {
		for _, s := range p {
			out = cborHead(out, 3, len(s))
			out = append(out, s...)
		}
	}
	return out
}

// cborHead appends a CBOR initial byte and length for major type major.
func cborHead(out []byte, major byte, n int) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(out, m|byte(n))
	case n < 1<<8:
		return append(out, m|24, byte(n))
	case n < 1<<16:
		return append(out, m|25, byte(n>>8), byte(n))
	default:
		return append(out, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}
