package alarms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/valine/valine-check/alarms"
)

var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

// counted is a by-bin result of query over [start, end] with the given
// counts per 5-minute bin from start.
func counted(query, field string, start, end time.Time, perBin ...int) alarms.Result {
	r := alarms.Result{Name: query, Field: field, Start: start, End: end, Status: "Complete", Rows: []map[string]string{}}
	for i, n := range perBin {
		if n == 0 {
			continue
		}
		bin := start.Add(time.Duration(i) * 5 * time.Minute).Format("2006-01-02 15:04:05.000")
		r.Rows = append(r.Rows, map[string]string{"bin(5m)": bin, field: strconv.Itoa(n)})
	}
	return r
}

// snap is a snapshot of [start, start+length] holding failures, errors and
// secondary uses per bin, and alarm states ("name=STATE").
func snap(start time.Time, length time.Duration, failures, errs, secondary []int, alarmStates ...string) alarms.Snapshot {
	end := start.Add(length)
	s := alarms.Snapshot{Taken: end, Window: alarms.Window{Start: start, End: end}, Queries: map[string]alarms.Result{
		alarms.QueryJWTFailures:  counted(alarms.QueryJWTFailures, "failures", start, end, failures...),
		alarms.QueryErrors:       counted(alarms.QueryErrors, "errors", start, end, errs...),
		alarms.QuerySecondaryUse: counted(alarms.QuerySecondaryUse, "secondaryUses", start, end, secondary...),
	}}
	for _, a := range alarmStates {
		name, state, _ := strings.Cut(a, "=")
		s.Alarms = append(s.Alarms, alarms.AlarmStatus{Name: name, State: state, Reason: "Threshold Crossed: 1 datapoint [9.0] was greater than the threshold (5.0)."})
	}
	return s
}

func TestCompare(t *testing.T) {
	t.Parallel()
	hourBefore := func(failures ...int) alarms.Snapshot { return snap(t0, time.Hour, failures, nil, nil) }
	after := t0.Add(time.Hour)
	th := alarms.DefaultCompareThresholds()
	finalized := th
	finalized.SecondaryUseIsFinding = true
	tests := []struct {
		name          string
		before, after alarms.Snapshot
		th            alarms.CompareThresholds
		findings      []string // substrings, one per finding, in order
		unchecked     []string
		figures       map[string][2]float64
	}{
		{
			name:   "quiet before and after",
			before: hourBefore(), after: snap(after, 10*time.Minute, nil, nil, nil), th: th,
			figures: map[string][2]float64{"jwt-failures per 5m": {0, 0}, "jwt-failures total": {0, 0}},
		},
		{
			// 12 in an hour is 1 per 5 minutes; 8 in 10 minutes is 4.
			name:   "a rise within the threshold, windows of different lengths",
			before: hourBefore(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), after: snap(after, 10*time.Minute, []int{5, 3}, nil, nil), th: th,
			figures: map[string][2]float64{"jwt-failures per 5m": {1, 4}, "jwt-failures total": {12, 8}},
		},
		{
			name:   "a rise of exactly the threshold",
			before: hourBefore(), after: snap(after, 5*time.Minute, []int{5}, nil, nil), th: th,
		},
		{
			name:   "failures rose beyond the threshold",
			before: hourBefore(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), after: snap(after, 10*time.Minute, []int{9, 5}, nil, nil), th: th,
			findings: []string{"failed JWT verifications rose from 1 to 7 per 5 minutes (12 in the 1h before, 14 in the 10m after), more than the 5 allowed"},
			figures:  map[string][2]float64{"jwt-failures per 5m": {1, 7}},
		},
		{
			// A short window is not extrapolated: 3 in 2 minutes is 3 per 5.
			name:   "a short after window",
			before: hourBefore(), after: snap(after, 2*time.Minute, []int{3}, nil, nil), th: th,
			figures: map[string][2]float64{"jwt-failures per 5m": {0, 3}},
		},
		{
			name:   "function errors rose",
			before: hourBefore(), after: snap(after, 5*time.Minute, nil, []int{6}, nil), th: th,
			findings: []string{"function errors rose from 0 to 6 per 5 minutes"},
		},
		{
			name:   "secondary use during grace is no finding",
			before: hourBefore(), after: snap(after, 10*time.Minute, nil, nil, []int{0, 4}), th: th,
			figures: map[string][2]float64{"secondary-use total": {0, 4}},
		},
		{
			name:   "secondary use after finalize",
			before: hourBefore(), after: snap(after, 10*time.Minute, nil, nil, []int{1, 4}), th: finalized,
			findings: []string{"5 verification(s) still used the secondary secret between 2026-11-29 04:00:00Z and 2026-11-29 04:10:00Z (peak 4 in the 5 minutes from 2026-11-29 04:05:00Z)"},
		},
		{
			name:   "old tokens keep arriving after finalize",
			before: hourBefore(), after: snap(after, 5*time.Minute, []int{40}, nil, nil), th: finalized,
			findings: []string{"failed JWT verifications rose from 0 to 40 per 5 minutes"},
		},
		{
			name:     "an alarm went to ALARM, another stayed there, a new one is in ALARM",
			before:   snap(t0, time.Hour, nil, nil, nil, "valine-check-4xx=OK", "valine-check-5xx=ALARM"),
			after:    snap(after, 5*time.Minute, nil, nil, nil, "valine-check-4xx=ALARM", "valine-check-5xx=ALARM", "valine-check-new=ALARM"),
			th:       th,
			findings: []string{"alarm valine-check-4xx went from OK to ALARM between the snapshots: Threshold Crossed", "alarm valine-check-new went from absent to ALARM"},
			figures:  map[string][2]float64{"alarms in ALARM": {1, 3}},
		},
		{
			name:   "a query missing after",
			before: hourBefore(),
			after: func() alarms.Snapshot {
				s := snap(after, 5*time.Minute, nil, nil, nil)
				delete(s.Queries, alarms.QueryJWTFailures)
				s.Errors = map[string]string{alarms.QueryJWTFailures: "query jwt-failures did not finish within 2m"}
				return s
			}(),
			th:        th,
			unchecked: []string{"jwt-failures: no result after (query jwt-failures did not finish within 2m)"},
		},
		{
			name:   "alarms unreadable",
			before: hourBefore(),
			after: func() alarms.Snapshot {
				s := snap(after, 5*time.Minute, nil, nil, nil)
				s.AlarmsError = "describing alarms valine-check-*: AccessDenied"
				return s
			}(),
			th:        th,
			unchecked: []string{"alarms: describing alarms valine-check-*: AccessDenied"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := alarms.Compare(tt.before, tt.after, tt.th)
			if v.OK != (len(tt.findings) == 0) || len(v.Findings) != len(tt.findings) {
				t.Fatalf("OK %v with findings %q; want %d finding(s)", v.OK, v.Findings, len(tt.findings))
			}
			for i, want := range tt.findings {
				if !strings.Contains(v.Findings[i], want) {
					t.Errorf("finding %d:\n%s\nwant it to contain:\n%s", i, v.Findings[i], want)
				}
			}
			if !reflect.DeepEqual(v.Unchecked, tt.unchecked) {
				t.Errorf("unchecked %q, want %q", v.Unchecked, tt.unchecked)
			}
			figures := map[string][2]float64{}
			for _, f := range v.Figures {
				figures[f.Name] = [2]float64{f.Before, f.After}
			}
			for name, want := range tt.figures {
				if got, ok := figures[name]; !ok || got != want {
					t.Errorf("figure %s = %v (present %v), want %v", name, got, ok, want)
				}
			}
			if s := v.Summary(); v.OK != strings.Contains(s, "no finding") {
				t.Errorf("summary %q does not match OK %v", s, v.OK)
			}
		})
	}
}

// Snapshots and verdicts are stored in reports and audit records: they
// survive JSON.
func TestSnapshotAndVerdictJSON(t *testing.T) {
	t.Parallel()
	before := snap(t0, time.Hour, []int{1, 2}, nil, nil, "valine-check-4xx=OK")
	r := before.Queries[alarms.QueryJWTFailures]
	r.Duration = 1500 * time.Millisecond
	r.Statistics = alarms.Statistics{RecordsMatched: 3, RecordsScanned: 10, BytesScanned: 700, LogGroupsScanned: 1}
	before.Queries[alarms.QueryJWTFailures] = r
	raw, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"durationMs":1500`) {
		t.Errorf("duration not in milliseconds: %s", raw)
	}
	var back alarms.Snapshot
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, before) {
		t.Errorf("snapshot after a JSON round trip:\n%+v\nwant:\n%+v", back, before)
	}
	v := alarms.Compare(before, snap(t0.Add(time.Hour), 5*time.Minute, []int{30}, nil, nil), alarms.DefaultCompareThresholds())
	raw, err = json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var vb alarms.Verdict
	if err := json.Unmarshal(raw, &vb); err != nil || !reflect.DeepEqual(vb, v) || vb.OK {
		t.Errorf("verdict after a JSON round trip: %+v, %v", vb, err)
	}
}

// fakeAlarms is an AlarmLister.
type fakeAlarms struct {
	states []alarms.AlarmStatus
	err    error
}

func (f fakeAlarms) AlarmStates(context.Context) ([]alarms.AlarmStatus, error) {
	return f.states, f.err
}

// TakeSnapshot keeps what it could read and says what it could not.
func TestTakeSnapshotKeepsWhatItCouldRead(t *testing.T) {
	t.Parallel()
	w := insightsWorld(t)
	apiTraffic(t, w, 1, 2, 0)
	start, end := lastHour()
	queries := append(alarms.Queries(w.Profile), alarms.Query{Name: "broken", String: "fields @message"})
	r := fakeRunner(w, newFakeClock())

	states := []alarms.AlarmStatus{{Name: "valine-check-4xx", State: "OK"}}
	s, err := alarms.TakeSnapshot(t.Context(), r, queries, []string{w.LogGroup}, start, end, fakeAlarms{states: states})
	if err == nil || !strings.Contains(err.Error(), "starting query broken") {
		t.Errorf("error %v, want the broken query's", err)
	}
	if len(s.Queries) != len(queries)-1 || s.Errors["broken"] == "" || len(s.Errors) != 1 {
		t.Errorf("queries %d, errors %v; want the %d good ones and the broken one's error", len(s.Queries), s.Errors, len(queries)-1)
	}
	if !reflect.DeepEqual(s.Alarms, states) || !s.Window.Start.Equal(start) || !s.Window.End.Equal(end) {
		t.Errorf("alarms %v, window %v", s.Alarms, s.Window)
	}

	s, err = alarms.TakeSnapshot(t.Context(), r, alarms.Queries(w.Profile)[:1], []string{w.LogGroup}, start, end, fakeAlarms{err: errors.New("AccessDenied")})
	if err == nil || s.AlarmsError != "AccessDenied" || len(s.Alarms) != 0 || len(s.Queries) != 1 {
		t.Errorf("snapshot with unreadable alarms: %+v, %v", s, err)
	}
}

// AlarmsByPrefix reads the alarms under a prefix, every page, by name.
func TestAlarmsByPrefix(t *testing.T) {
	t.Parallel()
	w := insightsWorld(t)
	cw := cloudwatch.NewFromConfig(w.AWS)
	prefix := fmt.Sprintf("snap-%d-", time.Now().UnixNano())
	for _, name := range []string{prefix + "b", prefix + "a", "other-" + prefix} {
		_, err := cw.PutMetricAlarm(t.Context(), &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(name), Namespace: aws.String("AWS/Lambda"), MetricName: aws.String("Errors"),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(300), EvaluationPeriods: aws.Int32(1),
			Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
		})
		if err != nil {
			t.Fatalf("PutMetricAlarm: %v", err)
		}
	}
	t.Cleanup(func() {
		_, _ = cw.DeleteAlarms(context.Background(), &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{prefix + "a", prefix + "b", "other-" + prefix}})
	})
	states, err := alarms.AlarmsByPrefix(cw, prefix).AlarmStates(t.Context())
	if err != nil {
		t.Fatalf("AlarmStates: %v", err)
	}
	if len(states) != 2 || states[0].Name != prefix+"a" || states[1].Name != prefix+"b" || states[0].State == "" {
		t.Errorf("states %+v, want %sa and %sb with a state", states, prefix, prefix)
	}
}

// WaitForIngestion returns as soon as a line after the mark is visible, and
// gives up quietly at its bound when none is.
func TestWaitForIngestion(t *testing.T) {
	t.Parallel()
	w := insightsWorld(t)
	logs := cloudwatchlogs.NewFromConfig(w.AWS)
	mark := time.Now().Add(-time.Second)
	apiTraffic(t, w, 1, 0, 0)
	waited, seen, err := alarms.WaitForIngestion(t.Context(), logs, []string{w.LogGroup}, mark, time.Minute)
	if err != nil || !seen || waited > 10*time.Second {
		t.Errorf("lines already there: waited %s, seen %v, %v", waited, seen, err)
	}
	waited, seen, err = alarms.WaitForIngestion(t.Context(), logs, []string{w.LogGroup}, time.Now().Add(time.Hour), 300*time.Millisecond)
	if err != nil || seen || waited < 300*time.Millisecond {
		t.Errorf("no line after the mark: waited %s, seen %v, %v; want the bound, unseen, no error", waited, seen, err)
	}
	if _, _, err := alarms.WaitForIngestion(t.Context(), logs, []string{"/aws/lambda/absent-" + strconv.FormatInt(time.Now().UnixNano(), 36)}, mark, time.Second); err == nil {
		t.Error("no error when no log group can be read")
	}
}

// A window with no verification line at all is blind, and the comparison
// says so instead of "no finding" from queries that could match nothing.
// Where the API logs no User-Agent (no line carries the probe's marker),
// the probe's own refusals in the after window are left out of the
// failure count; where it does, the queries left them out already.
func TestCompareBlindnessAndTheProbesOwnRefusals(t *testing.T) {
	t.Parallel()
	after := t0.Add(time.Hour)
	with := func(s alarms.Snapshot, query, field string, n ...int) alarms.Snapshot {
		s.Queries[query] = counted(query, field, s.Window.Start, s.Window.End, n...)
		return s
	}
	quietBefore := with(snap(t0, time.Hour, nil, nil, nil), alarms.QueryVerifications, "verifications", 40)

	blind := alarms.Compare(quietBefore, with(snap(after, 5*time.Minute, nil, nil, nil), alarms.QueryVerifications, "verifications"), alarms.DefaultCompareThresholds())
	if !blind.Blind || !strings.Contains(strings.Join(blind.Unchecked, "\n"), "BLIND after the change") || !strings.Contains(blind.Summary(), "BLIND") {
		t.Errorf("a window without verification lines: blind %v, %s", blind.Blind, blind.Summary())
	}

	// Twelve refusals by the probe, logged without a User-Agent.
	th := alarms.DefaultCompareThresholds()
	th.ProbeRefusalsAfter = 12
	noUA := with(with(snap(after, 5*time.Minute, []int{12}, nil, nil), alarms.QueryVerifications, "verifications", 30), alarms.QueryProbeRefusals, "probeRefusals")
	if v := alarms.Compare(quietBefore, noUA, th); !v.OK || v.Blind {
		t.Errorf("the probe's own refusals counted as a rise: %s", v.Summary())
	}
	// Twelve more than the probe's: a finding.
	worse := with(with(snap(after, 5*time.Minute, []int{24}, nil, nil), alarms.QueryVerifications, "verifications", 30), alarms.QueryProbeRefusals, "probeRefusals")
	if v := alarms.Compare(quietBefore, worse, th); v.OK || !strings.Contains(v.Summary(), "rose from 0 to 12") {
		t.Errorf("real failures beyond the probe's: %s", v.Summary())
	}
	// The API logs the marker: the queries excluded the probe's lines, so
	// nothing more is left out and these 12 are real.
	marked := with(with(snap(after, 5*time.Minute, []int{12}, nil, nil), alarms.QueryVerifications, "verifications", 30), alarms.QueryProbeRefusals, "probeRefusals", 12)
	if v := alarms.Compare(quietBefore, marked, th); v.OK {
		t.Errorf("with the marker logged, 12 unmarked failures must count: %s", v.Summary())
	}
}
