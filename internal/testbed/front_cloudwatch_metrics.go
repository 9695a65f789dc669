package testbed

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// The metric data half of the CloudWatch gaps Front fills (see
// front_cloudwatch.go): explicit PutMetricData timestamps, gzip bodies and
// GetMetricStatistics by period.

// fixTimestamps rewrites each datum's CBOR timestamp as RFC 3339 text.
func fixTimestamps(req cbor.Map) {
	data, _ := req["MetricData"].(cbor.List)
	for _, item := range data {
		d, ok := item.(cbor.Map)
		if !ok {
			continue
		}
		if t, err := cbor.AsTime(d["Timestamp"]); err == nil {
			d["Timestamp"] = cbor.String(t.UTC().Format(time.RFC3339))
		}
	}
}

// getMetricStatistics serves GetMetricStatistics one period at a time.
func getMetricStatistics(w http.ResponseWriter, r *http.Request, req cbor.Map, next http.Handler) {
	start, err1 := cbor.AsTime(req["StartTime"])
	end, err2 := cbor.AsTime(req["EndTime"])
	period, err3 := cbor.AsInt32(req["Period"])
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		writeAWSError(w, r, http.StatusBadRequest, "MissingParameter", "StartTime, EndTime and Period are required")
		return
	case period < 1 || period >= 60 && period%60 != 0 || period < 60 && !slices.Contains([]int32{1, 5, 10, 30}, period):
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", "Period must be 1, 5, 10, 30 or a multiple of 60")
		return
	case !end.After(start):
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", "EndTime must be after StartTime")
		return
	case req["ExtendedStatistics"] != nil:
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterValue", "testbed: ExtendedStatistics (percentiles) are not modelled")
		return
	}
	step := time.Duration(period) * time.Second
	start = start.Truncate(time.Second)
	if n := end.Sub(start) / step; n > statsMaxPoints {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterCombination",
			fmt.Sprintf("You have requested up to %d datapoints, which exceeds the limit of %d.", n, statsMaxPoints))
		return
	}
	points := cbor.List{}
	for from := start; from.Before(end); from = from.Add(step) {
		to := from.Add(step)
		if to.After(end) {
			to = end
		}
		if to = to.Add(-time.Second); to.Before(from) {
			to = from
		}
		one := cbor.Map{}
		for k, v := range req {
			one[k] = v
		}
		one["StartTime"] = cborTime(from)
		one["EndTime"] = cborTime(to)
		rec := cwCall(r, "GetMetricStatistics", cbor.Encode(one), next)
		if rec.Code != http.StatusOK {
			relay(w, rec)
			return
		}
		v, err := cbor.Decode(rec.Body.Bytes())
		doc, _ := v.(cbor.Map)
		if err != nil || doc == nil {
			writeAWSError(w, r, http.StatusInternalServerError, "InternalServiceError", "the emulator's statistics are not a CBOR map")
			return
		}
		dps, _ := doc["Datapoints"].(cbor.List)
		for _, dp := range dps {
			if m, ok := dp.(cbor.Map); ok {
				m["Timestamp"] = cborTime(from)
				points = append(points, m)
			}
		}
	}
	label := req["MetricName"]
	if label == nil {
		label = cbor.String("")
	}
	writeCBOR(w, http.StatusOK, cbor.Map{"Label": label, "Datapoints": points})
}

// gunzip inflates a gzip body.
func gunzip(body []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(io.LimitReader(zr, 64<<20))
}
