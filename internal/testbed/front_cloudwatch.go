package testbed

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch (Smithy RPC v2 CBOR, POST
// /service/GraniteServiceVersion20100801/operation/<Op>) gaps that Front
// fills, each measured against kumo v0.33.1:
//
//   - Alarm fields kumo drops. kumo's PutMetricAlarm keeps name,
//     description, metric, dimensions, statistic, period, evaluation
//     periods, threshold, comparison, actions-enabled and the alarm and OK
//     actions, and forgets TreatMissingData, DatapointsToAlarm,
//     ExtendedStatistic, Unit, InsufficientDataActions,
//     EvaluateLowSampleCountPercentile, ThresholdMetricId and Metrics, so
//     DescribeAlarms never shows them and a plan would always find them
//     changed. Front keeps those fields of each PutMetricAlarm (by alarm
//     name; the next PutMetricAlarm replaces them all, as AWS replaces the
//     whole configuration) and adds them to DescribeAlarms' answer.
//     PutMetricAlarm is checked as AWS checks it: TreatMissingData one of
//     breaching, notBreaching, ignore, missing; DatapointsToAlarm from 1 to
//     EvaluationPeriods; Period 10, 20, 30 or a multiple of 60; otherwise
//     InvalidParameterValue.
//   - DescribeAlarms paging. kumo cuts the list at MaxRecords (default 50)
//     and returns no NextToken, so the 51st alarm is never seen. Front asks
//     kumo for every match, applies ActionPrefix and AlarmTypes (kumo
//     ignores both) and serves pages of MaxRecords (1-100, default 50) in
//     name order with an opaque NextToken.
//   - PutMetricData with an explicit Timestamp: kumo cannot decode the
//     CBOR timestamp and fails the call. Front rewrites it as the RFC 3339
//     text kumo stores (to the second).
//   - Compressed requests: the SDK gzips PutMetricData bodies of 10 KiB or
//     more and kumo rejects them. Front inflates any gzip body first.
//   - GetMetricStatistics periods: kumo ignores Period and returns one
//     datapoint for the whole range. Front asks kumo once per period
//     (at most 1440, as AWS allows) and returns one datapoint per period
//     that holds data, stamped with the period's start.
//   - SetAlarmState accepts any state in kumo; Front allows only OK, ALARM
//     and INSUFFICIENT_DATA. It also races with kumo.NewServer, which
//     re-wires the process-wide alarm storage's SNS publisher unlocked
//     (seen by the race detector with Worlds starting in parallel): Front
//     forwards it under kumoMu, the lock Start holds around NewServer.
//
// Not modelled: a PutMetricAlarm on an existing alarm resets its state to
// INSUFFICIENT_DATA in kumo (AWS keeps the state); tags on alarms;
// composite alarms; percentiles (ExtendedStatistics); a StatisticValues
// datum is stored as its average, so SampleCount and Sum are per datum.
// Alarms are never evaluated by themselves: see World.EvaluateAlarms.

// cloudWatchOpPrefix starts the path of every CloudWatch RPC v2 request.
const cloudWatchOpPrefix = "/service/GraniteServiceVersion20100801/operation/"

// cloudWatchMu serialises the alarm operations Front serves, in every
// World: kumo's storage and the extras below are process-wide.
var cloudWatchMu sync.Mutex

// alarmExtras holds, by alarm name, the PutMetricAlarm fields kumo drops;
// guarded by cloudWatchMu.
var alarmExtras = map[string]cbor.Map{}

// alarmExtraFields are the PutMetricAlarm fields kumo does not keep.
var alarmExtraFields = []string{"TreatMissingData", "DatapointsToAlarm", "ExtendedStatistic", "Unit",
	"InsufficientDataActions", "EvaluateLowSampleCountPercentile", "ThresholdMetricId", "Metrics"}

// alarmPageMax and alarmPageDefault bound DescribeAlarms' MaxRecords.
const (
	alarmPageMax     = 100
	alarmPageDefault = 50
	alarmTokenPrefix = "tba1:"
	// statsMaxPoints is the most datapoints GetMetricStatistics returns.
	statsMaxPoints = 1440
)

// serveCloudWatch answers r when it is a CloudWatch or CloudWatch Logs
// operation this front fills in (see above and front_metric_filters.go),
// reaching kumo through next, and reports whether it did.
func serveCloudWatch(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) bool {
	if target := r.Header.Get("X-Amz-Target"); strings.HasPrefix(target, "Logs_20140328.") {
		return serveMetricFilters(w, r, strings.TrimPrefix(target, "Logs_20140328."), body, next)
	}
	op, ok := strings.CutPrefix(r.URL.Path, cloudWatchOpPrefix)
	if !ok {
		return false
	}
	body, ok = inflateCloudWatch(w, r, body)
	if !ok {
		return true
	}
	switch op {
	case "PutMetricAlarm", "DeleteAlarms", "DescribeAlarms":
		cloudWatchMu.Lock()
		defer cloudWatchMu.Unlock()
	}
	var req cbor.Map
	if len(body) > 0 {
		v, err := cbor.Decode(body)
		m, isMap := v.(cbor.Map)
		if err != nil || !isMap {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", "the request body is not a CBOR map")
			return true
		}
		req = m
	}
	switch op {
	case "PutMetricAlarm":
		putMetricAlarm(w, r, req, next)
	case "DescribeAlarms":
		describeAlarms(w, r, req, next)
	case "DeleteAlarms":
		rec := cwCall(r, op, body, next)
		if rec.Code == http.StatusOK {
			for _, n := range cborStrings(req["AlarmNames"]) {
				delete(alarmExtras, n)
			}
		}
		relay(w, rec)
	case "PutMetricData":
		fixTimestamps(req)
		next.ServeHTTP(w, withBody(r, cbor.Encode(req)))
	case "GetMetricStatistics":
		getMetricStatistics(w, r, req, next)
	case "SetAlarmState":
		if s, _ := req["StateValue"].(cbor.String); s != "OK" && s != "ALARM" && s != "INSUFFICIENT_DATA" {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("StateValue %q must be OK, ALARM or INSUFFICIENT_DATA", string(s)))
			return true
		}
		// kumo.NewServer re-wires the process-wide alarm storage's SNS
		// publisher without a lock, and SetAlarmState reads it: keep
		// them apart (Start holds kumoMu around NewServer).
		kumoMu.Lock()
		defer kumoMu.Unlock()
		next.ServeHTTP(w, r)
	default:
		next.ServeHTTP(w, r)
	}
	return true
}

// putMetricAlarm checks the fields kumo ignores, forwards the alarm and
// keeps what kumo drops.
func putMetricAlarm(w http.ResponseWriter, r *http.Request, req cbor.Map, next http.Handler) {
	if msg := checkAlarm(req); msg != "" {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", msg)
		return
	}
	rec := cwCall(r, "PutMetricAlarm", cbor.Encode(req), next)
	if rec.Code == http.StatusOK {
		extras := cbor.Map{}
		for _, f := range alarmExtraFields {
			if v, ok := req[f]; ok {
				extras[f] = v
			}
		}
		name, _ := req["AlarmName"].(cbor.String)
		alarmExtras[string(name)] = extras
	}
	relay(w, rec)
}

// checkAlarm returns why AWS would refuse the alarm's fields that kumo
// does not check, or "".
func checkAlarm(req cbor.Map) string {
	if v, ok := req["TreatMissingData"]; ok {
		s, _ := v.(cbor.String)
		if !slices.Contains([]string{"breaching", "notBreaching", "ignore", "missing"}, string(s)) {
			return fmt.Sprintf("TreatMissingData %q must be breaching, notBreaching, ignore or missing", string(s))
		}
	}
	evals, err := cbor.AsInt32(req["EvaluationPeriods"])
	if err != nil || evals < 1 {
		return "EvaluationPeriods must be at least 1"
	}
	if v, ok := req["DatapointsToAlarm"]; ok {
		if n, err := cbor.AsInt32(v); err != nil || n < 1 || n > evals {
			return "DatapointsToAlarm must be from 1 to EvaluationPeriods"
		}
	}
	if v, ok := req["Period"]; ok {
		p, err := cbor.AsInt32(v)
		if err != nil || !(p == 10 || p == 20 || p == 30 || p >= 60 && p%60 == 0) {
			return "Period must be 10, 20, 30 or a multiple of 60"
		}
	}
	return ""
}

// describeAlarms serves DescribeAlarms: every match from kumo, with the
// extras, filtered and paged as AWS does.
func describeAlarms(w http.ResponseWriter, r *http.Request, req cbor.Map, next http.Handler) {
	size := alarmPageDefault
	if v, ok := req["MaxRecords"]; ok {
		n, err := cbor.AsInt32(v)
		if err != nil || n < 1 || n > alarmPageMax {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("MaxRecords must be from 1 to %d", alarmPageMax))
			return
		}
		size = int(n)
	}
	after := ""
	if v, ok := req["NextToken"]; ok {
		tok, _ := v.(cbor.String)
		name, ok := parseToken(string(tok), alarmTokenPrefix)
		if !ok {
			writeAWSError(w, r, http.StatusBadRequest, "InvalidNextToken", "NextToken is not a token DescribeAlarms returned")
			return
		}
		after = name
	}
	metricTypes := true
	if v, ok := req["AlarmTypes"]; ok {
		metricTypes = slices.Contains(cborStrings(v), "MetricAlarm")
	}
	kreq := cbor.Map{"MaxRecords": cbor.Uint(1 << 30)}
	for _, k := range []string{"AlarmNames", "AlarmNamePrefix", "StateValue"} {
		if v, ok := req[k]; ok {
			kreq[k] = v
		}
	}
	rec := cwCall(r, "DescribeAlarms", cbor.Encode(kreq), next)
	if rec.Code != http.StatusOK {
		relay(w, rec)
		return
	}
	v, err := cbor.Decode(rec.Body.Bytes())
	doc, isMap := v.(cbor.Map)
	if err != nil || !isMap {
		writeAWSError(w, r, http.StatusInternalServerError, "InternalServiceError", "the emulator's alarm list is not a CBOR map")
		return
	}
	actionPrefix, _ := req["ActionPrefix"].(cbor.String)
	var all []cbor.Map
	list, _ := doc["MetricAlarms"].(cbor.List)
	for _, item := range list {
		a, ok := item.(cbor.Map)
		if !ok || !metricTypes {
			continue
		}
		name, _ := a["AlarmName"].(cbor.String)
		if string(name) <= after && after != "" {
			continue
		}
		for k, v := range alarmExtras[string(name)] {
			a[k] = v
		}
		if actionPrefix != "" && !hasActionPrefix(a, string(actionPrefix)) {
			continue
		}
		all = append(all, a)
	}
	slices.SortFunc(all, func(a, b cbor.Map) int {
		x, _ := a["AlarmName"].(cbor.String)
		y, _ := b["AlarmName"].(cbor.String)
		return strings.Compare(string(x), string(y))
	})
	page := cbor.List{}
	for _, a := range all[:min(size, len(all))] {
		page = append(page, a)
	}
	out := cbor.Map{"MetricAlarms": page, "CompositeAlarms": cbor.List{}}
	if len(all) > size {
		last, _ := all[size-1]["AlarmName"].(cbor.String)
		out["NextToken"] = cbor.String(makeToken(alarmTokenPrefix, string(last)))
	}
	writeCBOR(w, http.StatusOK, out)
}

// hasActionPrefix reports whether one of the alarm's actions starts with p.
func hasActionPrefix(a cbor.Map, p string) bool {
	for _, k := range []string{"AlarmActions", "OKActions", "InsufficientDataActions"} {
		for _, act := range cborStrings(a[k]) {
			if strings.HasPrefix(act, p) {
				return true
			}
		}
	}
	return false
}

// cwCall sends a CloudWatch operation with a CBOR body to kumo through
// next and returns kumo's answer, bypassing Front's counting and faults.
func cwCall(r *http.Request, op string, body []byte, next http.Handler) *httptest.ResponseRecorder {
	in := r.Clone(r.Context())
	in.URL.Path = cloudWatchOpPrefix + op
	in.URL.RawPath = ""
	in.Header.Del("Content-Length")
	setBody(in, body)
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, in)
	return rec
}

// withBody returns r carrying body.
func withBody(r *http.Request, body []byte) *http.Request {
	in := r.Clone(r.Context())
	in.Header.Del("Content-Length")
	setBody(in, body)
	return in
}

// relay writes a recorded answer to the client as it is.
func relay(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	h := w.Header()
	for k, v := range rec.Result().Header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(rec.Body.Len()))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// writeCBOR answers with a Smithy RPC v2 CBOR body.
func writeCBOR(w http.ResponseWriter, status int, v cbor.Value) {
	body := cbor.Encode(v)
	h := w.Header()
	h.Set("Content-Type", "application/cbor")
	h.Set("Smithy-Protocol", "rpc-v2-cbor")
	h.Set("X-Amzn-RequestId", randomUUID())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// cborTime is t as a CBOR epoch-seconds timestamp (tag 1).
func cborTime(t time.Time) cbor.Value {
	return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(t.UnixMilli()) / 1000)}
}

// cborStrings returns the strings of a CBOR list (others skipped).
func cborStrings(v cbor.Value) []string {
	list, _ := v.(cbor.List)
	var out []string
	for _, item := range list {
		if s, ok := item.(cbor.String); ok {
			out = append(out, string(s))
		}
	}
	return out
}

// makeToken is an opaque paging token after key.
func makeToken(prefix, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + key))
}

// parseToken returns the key a makeToken holds.
func parseToken(tok, prefix string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), prefix)
}

// inflateCloudWatch undoes a gzipped CloudWatch request body (kumo rejects
// one), leaving r with the plain body. false means it could not be read
// and an error was written.
func inflateCloudWatch(w http.ResponseWriter, r *http.Request, body []byte) ([]byte, bool) {
	if !strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		return body, true
	}
	inflated, err := gunzip(body)
	if err != nil {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", "the gzip request body cannot be read")
		return nil, false
	}
	r.Header.Del("Content-Encoding")
	setBody(r, inflated)
	return inflated, true
}
