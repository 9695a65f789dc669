package testbed

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// AlarmEvaluation is what EvaluateAlarms concluded for one alarm.
type AlarmEvaluation struct {
	Name string
	// Values holds one entry per evaluated period, oldest first; nil for a
	// period without data.
	Values []*float64
	// State is the state the alarm is in after the evaluation, Previous the
	// one before; SetAlarmState was called only when they differ.
	State, Previous string
	Reason          string
}

// EvaluateAlarms is a test double for CloudWatch's alarm evaluation, which
// kumo lacks (its alarms stay INSUFFICIENT_DATA). For each metric alarm
// whose name starts with prefix it reads the alarm (DescribeAlarms), asks
// GetMetricStatistics for the alarm's statistic over its last
// EvaluationPeriods periods, ending now, and sets the state with
// SetAlarmState when it changes:
//
//   - ALARM when at least DatapointsToAlarm periods (default
//     EvaluationPeriods) breach the threshold, a period without data
//     counting as breaching under TreatMissingData "breaching";
//   - else, when no period has data: OK under "notBreaching", unchanged
//     under "ignore", INSUFFICIENT_DATA under "missing" (the default);
//   - else OK.
//
// Its limits, so a test does not read more into it: one evaluation when
// called (no schedule); the last N periods are counted from now, not
// aligned to the minute; a partly missing window is judged on the periods
// that have data (AWS may look further back); simple statistics only (no
// percentiles, no metric math, no anomaly detection: such an alarm is an
// error). Its requests are the testbed's own (FromTestbedAPI).
func (w *World) EvaluateAlarms(ctx context.Context, prefix string) ([]AlarmEvaluation, error) {
	cw := cloudwatch.NewFromConfig(awsConfig(w.Region, w.AWSURL, testbedAPIAppID))
	var alarms []cwtypes.MetricAlarm
	pages := cloudwatch.NewDescribeAlarmsPaginator(cw, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("testbed: listing alarms to evaluate: %w", err)
		}
		alarms = append(alarms, page.MetricAlarms...)
	}
	now := time.Now().Truncate(time.Second).Add(time.Second)
	var out []AlarmEvaluation
	for _, a := range alarms {
		ev, err := evaluateAlarm(ctx, cw, a, now)
		if err != nil {
			return out, err
		}
		if ev.State != ev.Previous {
			if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{
				AlarmName: a.AlarmName, StateValue: cwtypes.StateValue(ev.State), StateReason: aws.String(ev.Reason),
			}); err != nil {
				return out, fmt.Errorf("testbed: setting the state of %s: %w", ev.Name, err)
			}
		}
		out = append(out, ev)
	}
	return out, nil
}

// evaluateAlarm judges one alarm over the periods ending at end.
func evaluateAlarm(ctx context.Context, cw *cloudwatch.Client, a cwtypes.MetricAlarm, end time.Time) (AlarmEvaluation, error) {
	name := aws.ToString(a.AlarmName)
	ev := AlarmEvaluation{Name: name, Previous: string(a.StateValue)}
	if len(a.Metrics) > 0 || aws.ToString(a.ExtendedStatistic) != "" || a.Statistic == "" || a.Threshold == nil {
		return ev, fmt.Errorf("testbed: alarm %s: only single-metric alarms with a simple statistic and a threshold are evaluated", name)
	}
	breaches, err := comparator(a.ComparisonOperator, *a.Threshold)
	if err != nil {
		return ev, fmt.Errorf("testbed: alarm %s: %w", name, err)
	}
	n := aws.ToInt32(a.EvaluationPeriods)
	m := aws.ToInt32(a.DatapointsToAlarm)
	if m == 0 {
		m = n
	}
	period := time.Duration(aws.ToInt32(a.Period)) * time.Second
	if n < 1 || period <= 0 {
		return ev, fmt.Errorf("testbed: alarm %s has no evaluation periods", name)
	}
	start := end.Add(-time.Duration(n) * period)
	stats, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace: a.Namespace, MetricName: a.MetricName, Dimensions: a.Dimensions,
		StartTime: aws.Time(start), EndTime: aws.Time(end), Period: a.Period,
		Statistics: []cwtypes.Statistic{a.Statistic},
	})
	if err != nil {
		return ev, fmt.Errorf("testbed: reading the metric of %s: %w", name, err)
	}
	ev.Values = make([]*float64, n)
	for _, dp := range stats.Datapoints {
		i := int(aws.ToTime(dp.Timestamp).Sub(start) / period)
		if i >= 0 && i < int(n) {
			ev.Values[i] = statistic(dp, a.Statistic)
		}
	}
	missing := aws.ToString(a.TreatMissingData)
	var breaching, present int
	var shown []string
	for _, v := range ev.Values {
		switch {
		case v == nil:
			shown = append(shown, "missing")
			if missing == "breaching" {
				breaching++
			}
		default:
			present++
			shown = append(shown, strconv.FormatFloat(*v, 'g', 6, 64))
			if breaches(*v) {
				breaching++
			}
		}
	}
	cmp := fmt.Sprintf("%s %g", a.ComparisonOperator, *a.Threshold)
	switch {
	case breaching >= int(m):
		ev.State = string(cwtypes.StateValueAlarm)
		ev.Reason = fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] breached (%s); %d needed (testbed evaluation)", breaching, n, strings.Join(shown, ", "), cmp, m)
	case present == 0 && missing == "notBreaching":
		ev.State = string(cwtypes.StateValueOk)
		ev.Reason = fmt.Sprintf("no data in the last %d periods, treated as not breaching (testbed evaluation)", n)
	case present == 0 && missing == "ignore":
		ev.State = ev.Previous
		ev.Reason = "no data, ignored: state kept (testbed evaluation)"
	case present == 0:
		ev.State = string(cwtypes.StateValueInsufficientData)
		ev.Reason = fmt.Sprintf("Insufficient Data: no datapoint in the last %d periods (testbed evaluation)", n)
	default:
		ev.State = string(cwtypes.StateValueOk)
		ev.Reason = fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] breached (%s); %d needed (testbed evaluation)", breaching, n, strings.Join(shown, ", "), cmp, m)
	}
	return ev, nil
}

// comparator returns the test of a datapoint against threshold.
func comparator(op cwtypes.ComparisonOperator, threshold float64) (func(float64) bool, error) {
	switch op {
	case cwtypes.ComparisonOperatorGreaterThanThreshold:
		return func(v float64) bool { return v > threshold }, nil
	case cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold:
		return func(v float64) bool { return v >= threshold }, nil
	case cwtypes.ComparisonOperatorLessThanThreshold:
		return func(v float64) bool { return v < threshold }, nil
	case cwtypes.ComparisonOperatorLessThanOrEqualToThreshold:
		return func(v float64) bool { return v <= threshold }, nil
	}
	return nil, fmt.Errorf("comparison %q is not modelled", op)
}

// statistic picks stat out of a datapoint.
func statistic(dp cwtypes.Datapoint, stat cwtypes.Statistic) *float64 {
	switch stat {
	case cwtypes.StatisticAverage:
		return dp.Average
	case cwtypes.StatisticSum:
		return dp.Sum
	case cwtypes.StatisticMinimum:
		return dp.Minimum
	case cwtypes.StatisticMaximum:
		return dp.Maximum
	case cwtypes.StatisticSampleCount:
		return dp.SampleCount
	}
	return nil
}

// MetricFilterRun is what RunMetricFilters published for one filter.
type MetricFilterRun struct {
	Filter, Namespace, Metric string
	// Matched counts the matching events; Value is what was published.
	Matched   int
	Value     float64
	Published bool
}

// RunMetricFilters is a test double for CloudWatch Logs turning events
// into metrics, which kumo lacks. For each metric filter of logGroup (see
// front_metric_filters.go) it counts the group's events since since that match
// the filter's pattern (reading at most 10,000 events with FilterLogEvents)
// and publishes Matched × the numeric metric value with PutMetricData, now;
// when nothing matched it publishes the default value, if the filter has
// one, and else nothing. Metric values taken from the event ($.field) and
// dimensions are not modelled (an error). Call it after the events are
// written and before EvaluateAlarms; each call publishes again.
func (w *World) RunMetricFilters(ctx context.Context, logGroup string, since time.Time) ([]MetricFilterRun, error) {
	cfg := awsConfig(w.Region, w.AWSURL, testbedAPIAppID)
	logs := cloudwatchlogs.NewFromConfig(cfg)
	cw := cloudwatch.NewFromConfig(cfg)
	filters := storedFiltersOf(logGroup)
	if len(filters) == 0 {
		return nil, nil
	}
	events, err := logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(logGroup), StartTime: aws.Int64(since.UnixMilli()), Limit: aws.Int32(10000),
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: reading %s: %w", logGroup, err)
	}
	var out []MetricFilterRun
	for _, f := range filters {
		t := f.MetricTransformations[0]
		value, err := strconv.ParseFloat(t.MetricValue, 64)
		if err != nil || len(t.Dimensions) > 0 {
			return out, fmt.Errorf("testbed: metric filter %s: only a numeric metric value without dimensions is modelled", f.FilterName)
		}
		run := MetricFilterRun{Filter: f.FilterName, Namespace: t.MetricNamespace, Metric: t.MetricName}
		for _, e := range events.Events {
			if f.pattern.match(aws.ToString(e.Message)) {
				run.Matched++
			}
		}
		switch {
		case run.Matched > 0:
			run.Value, run.Published = float64(run.Matched)*value, true
		case t.DefaultValue != nil:
			run.Value, run.Published = *t.DefaultValue, true
		}
		if run.Published {
			_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
				Namespace: aws.String(t.MetricNamespace),
				MetricData: []cwtypes.MetricDatum{{
					MetricName: aws.String(t.MetricName), Value: aws.Float64(run.Value), Unit: cwtypes.StandardUnit(t.Unit),
				}},
			})
			if err != nil {
				return out, fmt.Errorf("testbed: publishing %s: %w", t.MetricName, err)
			}
		}
		out = append(out, run)
	}
	return out, nil
}
