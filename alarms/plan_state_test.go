package alarms_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/valine/valine-check/alarms"
)

// fullPlan plans the env's alarms, filters and dashboard.
func (e alarmsEnv) fullPlan(t *testing.T) alarms.Changes {
	t.Helper()
	opt := dashboardOptions()
	opt.Region, opt.Account = "us-east-1", "000000000000"
	d, err := alarms.DesiredDashboard(e.cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	as, fs, err := alarms.Desired(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := alarms.Plan(t.Context(), e.cw, e.logs, as, fs, e.cfg.Prefix, alarms.WithDashboard(d))
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return ch
}

// roundTrip saves a plan to JSON and reads it back, as plan --out and
// apply FILE do.
func roundTrip(t *testing.T, plan alarms.Changes) alarms.SavedPlan {
	t.Helper()
	var buf bytes.Buffer
	if err := alarms.WriteSavedPlan(&buf, alarms.NewSavedPlan(plan, "us-east-1", time.Now())); err != nil {
		t.Fatal(err)
	}
	saved, err := alarms.ReadSavedPlan(&buf)
	if err != nil {
		t.Fatalf("ReadSavedPlan: %v", err)
	}
	return saved
}

func TestSavedPlanAppliesOnlyWhileTheWorldStaysPut(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	first := roundTrip(t, e.fullPlan(t))
	if err := alarms.CheckFresh(t.Context(), e.cw, e.logs, first.Changes); err != nil {
		t.Fatalf("a plan just made is not fresh: %v", err)
	}
	if first.State == "" || len(first.Pending()) != 14 { // 9 alarms, 4 filters, the dashboard
		t.Fatalf("saved plan: state %q, %d pending", first.State, len(first.Pending()))
	}
	if done, err := alarms.Apply(t.Context(), e.cw, e.logs, first.Changes); err != nil || len(done) != 14 {
		t.Fatalf("applying the saved plan: %d done, %v", len(done), err)
	}
	// Applied, the plan describes a world that is gone: everything it
	// would create now exists.
	err := alarms.CheckFresh(t.Context(), e.cw, e.logs, first.Changes)
	if !errors.Is(err, alarms.ErrStalePlan) || !strings.Contains(err.Error(), "dashboard "+alarms.DashboardName(e.cfg.Prefix)+" appeared") {
		t.Fatalf("the applied plan again: %v, want stale (the dashboard appeared)", err)
	}

	rate := e.cfg.Prefix + "apigw-4xx-rate-" + e.cfg.APIName + "-test"
	for _, tc := range []struct {
		name  string
		move  func(t *testing.T)
		stale string // "" = still fresh
	}{
		{"an alarm changes state", func(t *testing.T) {
			if _, err := e.cw.SetAlarmState(t.Context(), &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(rate),
				StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("test")}); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"a threshold is edited", func(t *testing.T) {
			out, err := e.cw.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{rate}})
			if err != nil || len(out.MetricAlarms) != 1 {
				t.Fatalf("DescribeAlarms: %v", err)
			}
			a := out.MetricAlarms[0]
			if _, err := e.cw.PutMetricAlarm(t.Context(), &cloudwatch.PutMetricAlarmInput{AlarmName: a.AlarmName, AlarmDescription: a.AlarmDescription,
				Namespace: a.Namespace, MetricName: a.MetricName, Dimensions: a.Dimensions, Statistic: a.Statistic, Period: a.Period,
				EvaluationPeriods: a.EvaluationPeriods, DatapointsToAlarm: a.DatapointsToAlarm, Threshold: aws.Float64(0.5),
				ComparisonOperator: a.ComparisonOperator, TreatMissingData: a.TreatMissingData, AlarmActions: a.AlarmActions, OKActions: a.OKActions}); err != nil {
				t.Fatal(err)
			}
		}, "alarm " + rate + " changed"},
		{"an alarm appears under the prefix", func(t *testing.T) {
			if _, err := e.cw.PutMetricAlarm(t.Context(), &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(e.cfg.Prefix + "by-hand"),
				Namespace: aws.String("X"), MetricName: aws.String("Y"), Statistic: cwtypes.StatisticSum, Period: aws.Int32(60),
				EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold}); err != nil {
				t.Fatal(err)
			}
		}, "alarm " + e.cfg.Prefix + "by-hand appeared"},
		{"a metric filter is deleted", func(t *testing.T) {
			if _, err := e.logs.DeleteMetricFilter(t.Context(), &cloudwatchlogs.DeleteMetricFilterInput{LogGroupName: aws.String("/aws/lambda/" + e.cfg.Functions[0]),
				FilterName: aws.String(e.cfg.Prefix + "jwt-verification-failures")}); err != nil {
				t.Fatal(err)
			}
		}, "metric-filter " + e.cfg.Prefix + "jwt-verification-failures on /aws/lambda/" + e.cfg.Functions[0] + " disappeared"},
		{"a secondary-use filter is edited", func(t *testing.T) {
			zero := 0.0
			if _, err := e.logs.PutMetricFilter(t.Context(), &cloudwatchlogs.PutMetricFilterInput{LogGroupName: aws.String("/aws/lambda/" + e.cfg.Functions[1]),
				FilterName: aws.String(e.cfg.Prefix + "jwt-secondary-secret-use"), FilterPattern: aws.String(`"secret=secondary"`),
				MetricTransformations: []cwltypes.MetricTransformation{{MetricNamespace: aws.String(alarms.DefaultLogsNamespace),
					MetricName: aws.String(alarms.JWTSecondaryUseMetric + "-" + e.cfg.Functions[1]), MetricValue: aws.String("1"), DefaultValue: &zero, Unit: cwltypes.StandardUnitCount}},
			}); err != nil {
				t.Fatal(err)
			}
		}, "metric-filter " + e.cfg.Prefix + "jwt-secondary-secret-use on /aws/lambda/" + e.cfg.Functions[1] + " changed"},
		{"the dashboard is edited", func(t *testing.T) {
			if _, err := e.cw.PutDashboard(t.Context(), &cloudwatch.PutDashboardInput{DashboardName: aws.String(alarms.DashboardName(e.cfg.Prefix)),
				DashboardBody: aws.String(`{"widgets":[]}`)}); err != nil {
				t.Fatal(err)
			}
		}, "dashboard " + alarms.DashboardName(e.cfg.Prefix) + " changed"},
	} {
		// Sequential: each step moves the world the next one plans from.
		saved := roundTrip(t, e.fullPlan(t))
		tc.move(t)
		err := alarms.CheckFresh(t.Context(), e.cw, e.logs, saved.Changes)
		switch {
		case tc.stale == "" && err != nil:
			t.Errorf("%s: %v, want the plan still fresh", tc.name, err)
		case tc.stale != "" && (!errors.Is(err, alarms.ErrStalePlan) || !strings.Contains(err.Error(), tc.stale)):
			t.Errorf("%s: %v, want stale naming %q", tc.name, err, tc.stale)
		}
	}

	// A plan edited after it was saved does not match its fingerprint.
	saved := roundTrip(t, e.fullPlan(t))
	saved.Changes.Changes[0].Current = "sha256:0000000000000000"
	if err := alarms.CheckFresh(t.Context(), e.cw, e.logs, saved.Changes); !errors.Is(err, alarms.ErrStalePlan) || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("an edited plan: %v", err)
	}
}

func TestReadSavedPlanRefusesWhatItCannotApply(t *testing.T) {
	t.Parallel()
	as, fs, err := alarms.Desired(restConfig())
	if err != nil {
		t.Fatal(err)
	}
	plan := alarms.Changes{Prefix: "valine-check-", State: "sha256:x", Changes: []alarms.Change{
		{Kind: alarms.Create, Resource: alarms.ResourceAlarm, Name: as[0].Name, Alarm: &as[0]},
		{Kind: alarms.Create, Resource: alarms.ResourceFilter, Name: fs[0].Name, LogGroup: fs[0].LogGroup, Filter: &fs[0]},
	}}
	var good bytes.Buffer
	if err := alarms.WriteSavedPlan(&good, alarms.NewSavedPlan(plan, "eu-west-1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := alarms.ReadSavedPlan(bytes.NewReader(good.Bytes())); err != nil {
		t.Fatalf("a good plan: %v", err)
	}
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(good.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	for name, body := range map[string]string{
		"not JSON":       "plan: 2 to create",
		"another schema": edit(func(m map[string]any) { m["schema"] = "valine-check/alarms-plan/v1" }),
		"unknown field":  edit(func(m map[string]any) { m["force"] = true }),
		"no region":      edit(func(m map[string]any) { delete(m, "region") }),
		"no fingerprint": edit(func(m map[string]any) { delete(m, "state") }),
		"a create without its value": edit(func(m map[string]any) {
			delete(m["changes"].([]any)[0].(map[string]any), "alarm")
		}),
		"an unknown kind": edit(func(m map[string]any) { m["changes"].([]any)[1].(map[string]any)["kind"] = "replace" }),
	} {
		if _, err := alarms.ReadSavedPlan(strings.NewReader(body)); !errors.Is(err, alarms.ErrBadSavedPlan) {
			t.Errorf("%s: %v, want ErrBadSavedPlan", name, err)
		}
	}
}
