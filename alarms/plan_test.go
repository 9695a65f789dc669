package alarms_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
)

// alarmsEnv is a testbed world with two functions and the configuration
// and clients to manage its alarms under a prefix of its own.
type alarmsEnv struct {
	w    *testbed.World
	cw   *cloudwatch.Client
	logs *cloudwatchlogs.Client
	cfg  alarms.Config
}

func newAlarmsEnv(t *testing.T) alarmsEnv {
	t.Helper()
	id := strings.ToLower(rand.Text()[:8])
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := testbed.Start(ctx, testbed.Options{
		Functions: []string{"pv-al-" + id + "-auth", "pv-al-" + id + "-profiles"},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return alarmsEnv{
		w: w, cw: cloudwatch.NewFromConfig(w.AWS), logs: cloudwatchlogs.NewFromConfig(w.AWS),
		cfg: alarms.Config{APIName: "valine-" + id, Stage: "test", Functions: w.Functions,
			Prefix: "vc-" + id + "-", FailurePattern: w.Profile.LogFailurePattern, SecondaryPattern: alarms.SecondaryUsePattern(w.Profile)},
	}
}

// plan plans cfg against the world.
func (e alarmsEnv) plan(t *testing.T, cfg alarms.Config) alarms.Changes {
	t.Helper()
	as, fs, err := alarms.Desired(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := alarms.Plan(t.Context(), e.cw, e.logs, as, fs, cfg.Prefix)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return ch
}

// apply plans and applies cfg, and returns what was done.
func (e alarmsEnv) apply(t *testing.T, cfg alarms.Config) []alarms.Change {
	t.Helper()
	done, err := alarms.Apply(t.Context(), e.cw, e.logs, e.plan(t, cfg))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return done
}

// summary renders changes as "kind resource name [fields]" lines, pending only.
func summary(ch alarms.Changes) []string {
	var out []string
	for _, c := range ch.Pending() {
		line := string(c.Kind) + " " + string(c.Resource) + " " + c.Name
		if c.LogGroup != "" {
			line += " on " + c.LogGroup
		}
		if len(c.Fields) > 0 {
			line += " (" + strings.Join(c.Fields, ", ") + ")"
		}
		out = append(out, line)
	}
	return out
}

func TestPlanApplyPlanChangesNothing(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	first := e.plan(t, e.cfg)
	if got := first.Count(alarms.Create); got != 13 || len(first.Changes) != 13 {
		t.Fatalf("first plan: %d creates of %d changes, want 9 alarms and 4 filters (failures and secondary use, per function) to create:\n%s", got, len(first.Changes), strings.Join(summary(first), "\n"))
	}
	done, err := alarms.Apply(t.Context(), e.cw, e.logs, first)
	if err != nil || len(done) != 13 {
		t.Fatalf("Apply: %d done, %v", len(done), err)
	}
	again := e.plan(t, e.cfg)
	if p := again.Pending(); len(p) != 0 || again.Count(alarms.Unchanged) != 13 {
		t.Fatalf("plan after apply is not empty:\n%s", strings.Join(summary(again), "\n"))
	}
	puts, filters := e.w.AWSFront.Calls("monitoring:PutMetricAlarm"), e.w.AWSFront.Calls("logs:PutMetricFilter")
	if done := e.apply(t, e.cfg); len(done) != 0 {
		t.Errorf("second apply did %d changes", len(done))
	}
	if p, f := e.w.AWSFront.Calls("monitoring:PutMetricAlarm")-puts, e.w.AWSFront.Calls("logs:PutMetricFilter")-filters; p != 0 || f != 0 {
		t.Errorf("second apply called PutMetricAlarm %d and PutMetricFilter %d times, want 0", p, f)
	}

	// What was written is what Desired says, read back from CloudWatch.
	out, err := e.cw.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{e.cfg.Prefix + "probe-success-" + e.cfg.APIName + "-test"}})
	if err != nil || len(out.MetricAlarms) != 1 {
		t.Fatalf("the probe alarm: %v", err)
	}
	if a := out.MetricAlarms[0]; aws.ToString(a.TreatMissingData) != "breaching" || aws.ToInt32(a.DatapointsToAlarm) != 2 || a.ComparisonOperator != cwtypes.ComparisonOperatorLessThanThreshold {
		t.Errorf("the probe alarm as stored: TreatMissingData %q, DatapointsToAlarm %d, %s", aws.ToString(a.TreatMissingData), aws.ToInt32(a.DatapointsToAlarm), a.ComparisonOperator)
	}
}

// putLike writes alarm a back with edit applied, as someone in the console would.
func putLike(t *testing.T, cw *cloudwatch.Client, name string, edit func(*cloudwatch.PutMetricAlarmInput)) {
	t.Helper()
	out, err := cw.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil || len(out.MetricAlarms) != 1 {
		t.Fatalf("reading %s: %v", name, err)
	}
	a := out.MetricAlarms[0]
	in := &cloudwatch.PutMetricAlarmInput{
		AlarmName: a.AlarmName, AlarmDescription: a.AlarmDescription, Namespace: a.Namespace, MetricName: a.MetricName,
		Dimensions: a.Dimensions, Statistic: a.Statistic, Period: a.Period, EvaluationPeriods: a.EvaluationPeriods,
		DatapointsToAlarm: a.DatapointsToAlarm, Threshold: a.Threshold, ComparisonOperator: a.ComparisonOperator,
		TreatMissingData: a.TreatMissingData, ActionsEnabled: a.ActionsEnabled, AlarmActions: a.AlarmActions, OKActions: a.OKActions,
	}
	edit(in)
	if _, err := cw.PutMetricAlarm(t.Context(), in); err != nil {
		t.Fatalf("PutMetricAlarm %s: %v", name, err)
	}
}

func TestPlanNamesWhatChangedByHand(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	e.apply(t, e.cfg)
	p := e.cfg.Prefix
	rate := p + "apigw-4xx-rate-" + e.cfg.APIName + "-test"
	errs := p + "lambda-errors-" + e.w.Functions[0]
	putLike(t, e.cw, rate, func(in *cloudwatch.PutMetricAlarmInput) { in.Threshold = aws.Float64(50) })
	putLike(t, e.cw, errs, func(in *cloudwatch.PutMetricAlarmInput) {
		in.EvaluationPeriods, in.DatapointsToAlarm = aws.Int32(3), aws.Int32(3)
		in.TreatMissingData = nil
		in.AlarmActions = []string{"arn:aws:sns:us-east-1:000000000000:someone-else"}
	})
	putLike(t, e.cw, errs, func(*cloudwatch.PutMetricAlarmInput) {}) // a no-op write changes nothing more
	putLike(t, e.cw, rate, func(in *cloudwatch.PutMetricAlarmInput) { in.AlarmName = aws.String(p + "stale") })
	outside := "other-" + p + "keep"
	putLike(t, e.cw, rate, func(in *cloudwatch.PutMetricAlarmInput) { in.AlarmName = aws.String(outside) })
	t.Cleanup(func() {
		_, _ = e.cw.DeleteAlarms(context.Background(), &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{outside}})
	})
	group := profile.LogGroup(e.w.Functions[1])
	zero := 0.0
	putFilter := func(name, pattern string) {
		t.Helper()
		if _, err := e.logs.PutMetricFilter(t.Context(), &cloudwatchlogs.PutMetricFilterInput{
			LogGroupName: aws.String(group), FilterName: aws.String(name), FilterPattern: aws.String(pattern),
			MetricTransformations: []cwltypes.MetricTransformation{{MetricNamespace: aws.String("Valine/Auth"),
				MetricName: aws.String(alarms.JWTFailuresMetric + "-" + e.w.Functions[1]), MetricValue: aws.String("1"), DefaultValue: &zero, Unit: cwltypes.StandardUnitCount}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	putFilter(p+"jwt-verification-failures", "JWT failed")
	putFilter(p+"jwt-secondary-secret-use", e.cfg.SecondaryPattern) // counted into the failures' metric
	putFilter(p+"old-filter", "x")
	putFilter("someone-elses-filter", "x")

	got := summary(e.plan(t, e.cfg))
	want := []string{
		"update alarm " + rate + " (Threshold)",
		"update alarm " + errs + " (EvaluationPeriods, DatapointsToAlarm, TreatMissingData, AlarmActions)",
		"delete alarm " + p + "stale",
		"update metric-filter " + p + "jwt-secondary-secret-use on " + group + " (MetricName)",
		"update metric-filter " + p + "jwt-verification-failures on " + group + " (FilterPattern)",
		"delete metric-filter " + p + "old-filter on " + group,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	done := e.apply(t, e.cfg)
	if len(done) != len(want) {
		t.Errorf("apply did %d changes, want %d", len(done), len(want))
	}
	if left := summary(e.plan(t, e.cfg)); len(left) != 0 {
		t.Errorf("plan after apply:\n%s", strings.Join(left, "\n"))
	}
	if out, err := e.cw.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{outside}}); err != nil || len(out.MetricAlarms) != 1 {
		t.Errorf("the alarm outside the prefix was touched: %v", err)
	}
	fs, err := e.logs.DescribeMetricFilters(t.Context(), &cloudwatchlogs.DescribeMetricFiltersInput{LogGroupName: aws.String(group), FilterNamePrefix: aws.String("someone-elses")})
	if err != nil || len(fs.MetricFilters) != 1 {
		t.Errorf("the filter outside the prefix was touched: %v", err)
	}
}

func TestAFunctionLeavingTheFleetLosesItsAlarmsAndFilter(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	e.apply(t, e.cfg)
	smaller := e.cfg
	smaller.Functions = e.w.Functions[:1]
	gone := e.w.Functions[1]
	got := summary(e.plan(t, smaller))
	want := []string{
		"delete alarm " + e.cfg.Prefix + "jwt-failures-" + gone,
		"delete alarm " + e.cfg.Prefix + "lambda-errors-" + gone,
		"delete alarm " + e.cfg.Prefix + "lambda-throttles-" + gone,
		"delete metric-filter " + e.cfg.Prefix + "jwt-secondary-secret-use on " + profile.LogGroup(gone),
		"delete metric-filter " + e.cfg.Prefix + "jwt-verification-failures on " + profile.LogGroup(gone),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	e.apply(t, smaller)
	if left := summary(e.plan(t, smaller)); len(left) != 0 {
		t.Errorf("plan after apply:\n%s", strings.Join(left, "\n"))
	}
}

// A deployment whose profile no longer names a secondary (one that moved
// to the cookie shape) keeps its failure filters and loses the secondary-use
// ones, and gets them back when the secondary returns.
func TestSecondaryUseFiltersFollowTheProfile(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	e.apply(t, e.cfg)
	without := e.cfg
	without.SecondaryPattern = alarms.SecondaryUsePattern(profile.Presets["cookie"])
	got := summary(e.plan(t, without))
	var want []string
	for _, fn := range e.w.Functions {
		want = append(want, "delete metric-filter "+e.cfg.Prefix+"jwt-secondary-secret-use on "+profile.LogGroup(fn))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan without a secondary:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	e.apply(t, without)
	if left := summary(e.plan(t, without)); len(left) != 0 {
		t.Errorf("plan after apply:\n%s", strings.Join(left, "\n"))
	}
	back := summary(e.plan(t, e.cfg))
	for i := range want {
		want[i] = strings.Replace(want[i], "delete", "create", 1)
	}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("plan with the secondary back:\n%s\nwant:\n%s", strings.Join(back, "\n"), strings.Join(want, "\n"))
	}
}

func TestApplyCarriesOnPastAMissingLogGroup(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	cfg := e.cfg
	never := "pv-never-ran-" + strings.ToLower(rand.Text()[:6])
	cfg.Functions = append([]string{never}, cfg.Functions...)
	plan := e.plan(t, cfg)
	var notes []string
	for _, c := range plan.Changes {
		if c.Resource == alarms.ResourceFilter && c.LogGroup == profile.LogGroup(never) {
			notes = append(notes, c.Note)
		}
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "does not exist yet") || notes[1] != notes[0] {
		t.Errorf("no note on the filters (failures and secondary use) of a log group that does not exist: %q", notes)
	}
	done, err := alarms.Apply(t.Context(), e.cw, e.logs, plan)
	var nf *cwltypes.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), profile.LogGroup(never)) {
		t.Errorf("Apply: %v, want a ResourceNotFoundException naming the log group", err)
	}
	if len(done) != len(plan.Changes)-2 {
		t.Errorf("Apply did %d of %d changes, want all but the 2 filters", len(done), len(plan.Changes))
	}
	if left := e.plan(t, cfg).Pending(); len(left) != 2 || left[0].LogGroup != profile.LogGroup(never) || left[1].LogGroup != profile.LogGroup(never) {
		t.Errorf("left after apply: %v", summary(e.plan(t, cfg)))
	}
}

func TestPlanRefusesWhatItCouldNotManage(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	as, fs, err := alarms.Desired(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alarms.Plan(t.Context(), e.cw, e.logs, as, fs, ""); !errors.Is(err, alarms.ErrInvalidConfig) {
		t.Errorf("empty prefix: %v", err)
	}
	if _, err := alarms.Plan(t.Context(), e.cw, e.logs, as, fs, "other-"); !errors.Is(err, alarms.ErrInvalidConfig) {
		t.Errorf("alarms outside the prefix: %v", err)
	}
	if _, err := alarms.Plan(t.Context(), e.cw, e.logs, append(as, as[0]), fs, e.cfg.Prefix); !errors.Is(err, alarms.ErrInvalidConfig) {
		t.Errorf("an alarm desired twice: %v", err)
	}
}

func TestStatusShowsEvaluatedStates(t *testing.T) {
	t.Parallel()
	e := newAlarmsEnv(t)
	cfg := e.cfg
	th := alarms.DefaultThresholds()
	th.JWTFailures = 2
	cfg.Thresholds = &th
	e.apply(t, cfg)

	// 3 requests in 4 refused: a 75% 4XX rate, far above 5%.
	dims := []cwtypes.Dimension{{Name: aws.String("ApiName"), Value: aws.String(cfg.APIName)}, {Name: aws.String("Stage"), Value: aws.String("test")}}
	for _, v := range []float64{1, 1, 1, 0} {
		if _, err := e.cw.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/ApiGateway"),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("4XXError"), Dimensions: dims, Value: aws.Float64(v)}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Three failed verifications in the first function's log.
	since := time.Now().Add(-time.Second)
	for range 3 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.w.APIURL+e.w.Profile.ProfilePath, nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := e.w.RunMetricFilters(t.Context(), e.w.LogGroup, since); err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.EvaluateAlarms(t.Context(), cfg.Prefix); err != nil {
		t.Fatal(err)
	}
	states, err := alarms.Status(t.Context(), e.cw, cfg.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 9 {
		t.Fatalf("%d alarms, want 9", len(states))
	}
	want := []string{
		cfg.Prefix + "apigw-4xx-rate-" + cfg.APIName + "-test",
		cfg.Prefix + "jwt-failures-" + e.w.Functions[0],
		cfg.Prefix + "probe-success-" + cfg.APIName + "-test", // no probe data: a silent probe is a broken probe
	}
	if got := alarms.InAlarm(states); !reflect.DeepEqual(got, want) {
		t.Errorf("in ALARM: %v, want %v", got, want)
	}
	for _, s := range states {
		if s.State == "" || s.Reason == "" || s.UpdatedAt.IsZero() {
			t.Errorf("status without state, reason or time: %+v", s)
		}
	}
}
