package testbed_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/valine/valine-check/internal/testbed"
)

// putAlarm creates a simple alarm on namespace/metric with the given
// threshold and missing-data treatment.
func putAlarm(t *testing.T, cw *cloudwatch.Client, name, namespace, metric string, stat cwtypes.Statistic, op cwtypes.ComparisonOperator, threshold float64, evals, toAlarm int32, missing string) {
	t.Helper()
	in := &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(name), Namespace: aws.String(namespace), MetricName: aws.String(metric),
		Statistic: stat, Period: aws.Int32(300), EvaluationPeriods: aws.Int32(evals), DatapointsToAlarm: aws.Int32(toAlarm),
		Threshold: aws.Float64(threshold), ComparisonOperator: op,
	}
	if missing != "" {
		in.TreatMissingData = aws.String(missing)
	}
	if _, err := cw.PutMetricAlarm(t.Context(), in); err != nil {
		t.Fatalf("PutMetricAlarm %s: %v", name, err)
	}
}

// describeAll lists the alarms under prefix with the SDK's paginator.
func describeAll(t *testing.T, cw *cloudwatch.Client, prefix string, pageSize int32) []cwtypes.MetricAlarm {
	t.Helper()
	var out []cwtypes.MetricAlarm
	pages := cloudwatch.NewDescribeAlarmsPaginator(cw, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(prefix), MaxRecords: aws.Int32(pageSize)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatalf("DescribeAlarms: %v", err)
		}
		if len(page.MetricAlarms) > int(pageSize) {
			t.Fatalf("a page of %d alarms, asked for %d", len(page.MetricAlarms), pageSize)
		}
		out = append(out, page.MetricAlarms...)
	}
	return out
}

func TestAlarmFieldsKumoDropsAreKeptAndPaged(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	cw := cloudwatch.NewFromConfig(w.AWS)
	prefix := uniqueName("tb-alarm") + "-"
	const n = 120
	for i := range n {
		putAlarm(t, cw, fmt.Sprintf("%s%03d", prefix, i), "Test/NS", "M", cwtypes.StatisticSum,
			cwtypes.ComparisonOperatorGreaterThanThreshold, 1, 3, 2, "breaching")
	}
	all := describeAll(t, cw, prefix, 50)
	if len(all) != n {
		t.Fatalf("listed %d alarms, want %d", len(all), n)
	}
	for i, a := range all {
		if want := fmt.Sprintf("%s%03d", prefix, i); aws.ToString(a.AlarmName) != want {
			t.Fatalf("alarm %d is %s, want %s (name order, each once)", i, aws.ToString(a.AlarmName), want)
		}
		if aws.ToString(a.TreatMissingData) != "breaching" || aws.ToInt32(a.DatapointsToAlarm) != 2 || aws.ToInt32(a.EvaluationPeriods) != 3 {
			t.Fatalf("%s: TreatMissingData %q, DatapointsToAlarm %d: the stored fields were lost",
				aws.ToString(a.AlarmName), aws.ToString(a.TreatMissingData), aws.ToInt32(a.DatapointsToAlarm))
		}
	}

	// A second PutMetricAlarm replaces the whole configuration, as on AWS.
	first := prefix + "000"
	if _, err := cw.PutMetricAlarm(t.Context(), &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(first), Namespace: aws.String("Test/NS"), MetricName: aws.String("M"), Statistic: cwtypes.StatisticSum,
		Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(2), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
	}); err != nil {
		t.Fatal(err)
	}
	got, err := cw.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{first}})
	if err != nil || len(got.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms by name: %v, %d alarms", err, len(got.MetricAlarms))
	}
	if a := got.MetricAlarms[0]; a.TreatMissingData != nil || a.DatapointsToAlarm != nil || aws.ToFloat64(a.Threshold) != 2 {
		t.Errorf("after replacing: TreatMissingData %v, DatapointsToAlarm %v, Threshold %v", a.TreatMissingData, a.DatapointsToAlarm, aws.ToFloat64(a.Threshold))
	}
	if _, err := cw.DeleteAlarms(t.Context(), &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{first}}); err != nil {
		t.Fatal(err)
	}
	if left := describeAll(t, cw, prefix, 100); len(left) != n-1 {
		t.Errorf("%d alarms after deleting one, want %d", len(left), n-1)
	}
	if _, err := cw.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{NextToken: aws.String("forged")}); err == nil {
		t.Error("a forged NextToken was accepted")
	}
}

func TestPutMetricAlarmIsCheckedAsOnAWS(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	cw := cloudwatch.NewFromConfig(w.AWS)
	base := func() *cloudwatch.PutMetricAlarmInput {
		return &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(uniqueName("tb-bad")), Namespace: aws.String("Test/NS"), MetricName: aws.String("M"),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(300), EvaluationPeriods: aws.Int32(2),
			Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*cloudwatch.PutMetricAlarmInput)
	}{
		{"unknown TreatMissingData", func(in *cloudwatch.PutMetricAlarmInput) { in.TreatMissingData = aws.String("sometimes") }},
		{"DatapointsToAlarm above EvaluationPeriods", func(in *cloudwatch.PutMetricAlarmInput) { in.DatapointsToAlarm = aws.Int32(3) }},
		{"Period not a multiple of 60", func(in *cloudwatch.PutMetricAlarmInput) { in.Period = aws.Int32(90) }},
	} {
		in := base()
		tc.edit(in)
		_, err := cw.PutMetricAlarm(t.Context(), in)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "InvalidParameterValue" {
			t.Errorf("%s: error %v, want InvalidParameterValue", tc.name, err)
		}
	}
	if _, err := cw.SetAlarmState(t.Context(), &cloudwatch.SetAlarmStateInput{
		AlarmName: aws.String("whatever"), StateValue: "BROKEN", StateReason: aws.String("x"),
	}); err == nil {
		t.Error("SetAlarmState accepted the state BROKEN")
	}
}

func TestMetricDataByPeriodWithTimestampsAndCompression(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	// Compress every body, as an aws.Config literal does by default.
	cfg := w.AWS.Copy()
	cfg.DisableRequestCompression = false
	cfg.RequestMinCompressSizeBytes = 0
	cw := cloudwatch.NewFromConfig(cfg)
	ns := "Test/" + uniqueName("stats")
	dims := []cwtypes.Dimension{{Name: aws.String("Check"), Value: aws.String("all")}}
	now := time.Now()
	put := func(v float64, at *time.Time) {
		t.Helper()
		d := cwtypes.MetricDatum{MetricName: aws.String("M"), Dimensions: dims, Value: aws.Float64(v)}
		if at != nil {
			d.Timestamp = aws.Time(*at)
		}
		if _, err := cw.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: []cwtypes.MetricDatum{d}}); err != nil {
			t.Fatalf("PutMetricData: %v", err)
		}
	}
	tenAgo := now.Add(-10 * time.Minute)
	put(1, &tenAgo)
	put(3, &tenAgo)
	put(10, nil)
	start := now.Add(-15 * time.Minute).Truncate(time.Second)
	out, err := cw.GetMetricStatistics(t.Context(), &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String(ns), MetricName: aws.String("M"), Dimensions: dims,
		StartTime: aws.Time(start), EndTime: aws.Time(now.Add(time.Minute)), Period: aws.Int32(300),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticAverage, cwtypes.StatisticSampleCount},
	})
	if err != nil {
		t.Fatalf("GetMetricStatistics: %v", err)
	}
	type point struct{ at, avg, count float64 }
	var got []point
	for _, dp := range out.Datapoints {
		got = append(got, point{aws.ToTime(dp.Timestamp).Sub(start).Minutes(), aws.ToFloat64(dp.Average), aws.ToFloat64(dp.SampleCount)})
	}
	slices.SortFunc(got, func(a, b point) int { return int(a.at - b.at) })
	want := []point{{5, 2, 2}, {15, 10, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("datapoints (minutes after start, average, count) %v, want %v", got, want)
	}
}

func TestEvaluateAlarms(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	cw := cloudwatch.NewFromConfig(w.AWS)
	prefix := uniqueName("tb-eval") + "-"
	ns := "Test/" + uniqueName("eval")
	gt, lt := cwtypes.ComparisonOperatorGreaterThanThreshold, cwtypes.ComparisonOperatorLessThanThreshold
	putAlarm(t, cw, prefix+"rate-high", ns, "Rate", cwtypes.StatisticAverage, gt, 0.05, 1, 1, "notBreaching")
	putAlarm(t, cw, prefix+"rate-low", ns, "Quiet", cwtypes.StatisticAverage, gt, 0.05, 1, 1, "notBreaching")
	putAlarm(t, cw, prefix+"silent-breaching", ns, "Silent", cwtypes.StatisticAverage, lt, 100, 3, 2, "breaching")
	putAlarm(t, cw, prefix+"silent-missing", ns, "Silent", cwtypes.StatisticAverage, lt, 100, 3, 2, "")
	putAlarm(t, cw, prefix+"silent-ok", ns, "Silent", cwtypes.StatisticSum, gt, 0, 1, 1, "notBreaching")
	for _, v := range []float64{1, 0, 0, 1} { // 50% of requests failed
		if _, err := cw.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Rate"), Value: aws.Float64(v)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cw.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Quiet"), Value: aws.Float64(0.01)}}}); err != nil {
		t.Fatal(err)
	}
	evals, err := w.EvaluateAlarms(t.Context(), prefix)
	if err != nil {
		t.Fatalf("EvaluateAlarms: %v", err)
	}
	want := map[string]string{"rate-high": "ALARM", "rate-low": "OK", "silent-breaching": "ALARM", "silent-missing": "INSUFFICIENT_DATA", "silent-ok": "OK"}
	if len(evals) != len(want) {
		t.Fatalf("%d evaluations, want %d", len(evals), len(want))
	}
	for _, a := range describeAll(t, cw, prefix, 100) {
		name := strings.TrimPrefix(aws.ToString(a.AlarmName), prefix)
		if string(a.StateValue) != want[name] {
			t.Errorf("%s: state %s (%s), want %s", name, a.StateValue, aws.ToString(a.StateReason), want[name])
		}
	}
	if w.AWSFront.ClientCalls("monitoring:SetAlarmState") != 0 || w.AWSFront.Calls("monitoring:SetAlarmState") == 0 {
		t.Error("EvaluateAlarms' requests should count as the testbed's own")
	}
}
