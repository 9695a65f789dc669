package testbed_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/valine/valine-check/internal/testbed"
)

// filterInput is a PutMetricFilter of pattern on group publishing 1 a match.
func filterInput(group, name, pattern, namespace, metric string) *cloudwatchlogs.PutMetricFilterInput {
	zero := 0.0
	return &cloudwatchlogs.PutMetricFilterInput{
		LogGroupName: aws.String(group), FilterName: aws.String(name), FilterPattern: aws.String(pattern),
		MetricTransformations: []cwltypes.MetricTransformation{{
			MetricNamespace: aws.String(namespace), MetricName: aws.String(metric), MetricValue: aws.String("1"),
			DefaultValue: &zero, Unit: cwltypes.StandardUnitCount,
		}},
	}
}

// filterNames lists the names of the filters DescribeMetricFilters pages through.
func filterNames(t *testing.T, logs *cloudwatchlogs.Client, in *cloudwatchlogs.DescribeMetricFiltersInput) []string {
	t.Helper()
	var names []string
	pages := cloudwatchlogs.NewDescribeMetricFiltersPaginator(logs, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatalf("DescribeMetricFilters: %v", err)
		}
		for _, f := range page.MetricFilters {
			names = append(names, aws.ToString(f.FilterName))
		}
	}
	return names
}

func TestMetricFiltersStoredListedDeleted(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	logs := cloudwatchlogs.NewFromConfig(w.AWS)
	ctx := t.Context()
	prefix := uniqueName("tb-mf") + "-"
	for _, n := range []string{"a", "b", "c"} {
		if _, err := logs.PutMetricFilter(ctx, filterInput(w.LogGroup, prefix+n, "JWT verification failed", "Test/MF", "F-"+n)); err != nil {
			t.Fatalf("PutMetricFilter: %v", err)
		}
	}
	if _, err := logs.PutMetricFilter(ctx, filterInput(w.LogGroup, "other-filter", "x", "Test/MF", "Other")); err != nil {
		t.Fatal(err)
	}
	names := filterNames(t, logs, &cloudwatchlogs.DescribeMetricFiltersInput{LogGroupName: aws.String(w.LogGroup), FilterNamePrefix: aws.String(prefix), Limit: aws.Int32(2)})
	if len(names) != 3 || names[0] != prefix+"a" || names[2] != prefix+"c" {
		t.Fatalf("filters under the prefix, two a page: %q", names)
	}

	// Replacing a filter keeps one filter, with the new pattern and its creation time.
	first, err := logs.DescribeMetricFilters(ctx, &cloudwatchlogs.DescribeMetricFiltersInput{LogGroupName: aws.String(w.LogGroup), FilterNamePrefix: aws.String(prefix + "a")})
	if err != nil || len(first.MetricFilters) != 1 {
		t.Fatalf("DescribeMetricFilters: %v", err)
	}
	if _, err := logs.PutMetricFilter(ctx, filterInput(w.LogGroup, prefix+"a", `"token expired"`, "Test/MF", "F-a")); err != nil {
		t.Fatal(err)
	}
	again, err := logs.DescribeMetricFilters(ctx, &cloudwatchlogs.DescribeMetricFiltersInput{LogGroupName: aws.String(w.LogGroup), FilterNamePrefix: aws.String(prefix + "a")})
	if err != nil || len(again.MetricFilters) != 1 {
		t.Fatalf("DescribeMetricFilters after replacing: %v", err)
	}
	f := again.MetricFilters[0]
	if aws.ToString(f.FilterPattern) != `"token expired"` || aws.ToInt64(f.CreationTime) != aws.ToInt64(first.MetricFilters[0].CreationTime) ||
		len(f.MetricTransformations) != 1 || aws.ToFloat64(f.MetricTransformations[0].DefaultValue) != 0 || f.MetricTransformations[0].Unit != cwltypes.StandardUnitCount {
		t.Errorf("replaced filter: %+v", f)
	}

	if _, err := logs.DeleteMetricFilter(ctx, &cloudwatchlogs.DeleteMetricFilterInput{LogGroupName: aws.String(w.LogGroup), FilterName: aws.String(prefix + "b")}); err != nil {
		t.Fatalf("DeleteMetricFilter: %v", err)
	}
	var nf *cwltypes.ResourceNotFoundException
	if _, err := logs.DeleteMetricFilter(ctx, &cloudwatchlogs.DeleteMetricFilterInput{LogGroupName: aws.String(w.LogGroup), FilterName: aws.String(prefix + "b")}); !errors.As(err, &nf) {
		t.Errorf("deleting a deleted filter: %v, want ResourceNotFoundException", err)
	}
	if names := filterNames(t, logs, &cloudwatchlogs.DescribeMetricFiltersInput{LogGroupName: aws.String(w.LogGroup), FilterNamePrefix: aws.String(prefix)}); len(names) != 2 {
		t.Errorf("after a delete: %q", names)
	}

	// What AWS refuses, and what the test double cannot apply.
	var invalid *cwltypes.InvalidParameterException
	for name, in := range map[string]*cloudwatchlogs.PutMetricFilterInput{
		"JSON pattern":      filterInput(w.LogGroup, prefix+"json", `{ $.level = "error" }`, "Test/MF", "J"),
		"space-delimited":   filterInput(w.LogGroup, prefix+"sd", `[ip, user, status=401]`, "Test/MF", "S"),
		"unclosed quote":    filterInput(w.LogGroup, prefix+"q", `"JWT verification`, "Test/MF", "Q"),
		"name with a colon": filterInput(w.LogGroup, prefix+"a:b", "x", "Test/MF", "C"),
	} {
		if _, err := logs.PutMetricFilter(ctx, in); !errors.As(err, &invalid) {
			t.Errorf("%s: %v, want InvalidParameterException", name, err)
		}
	}
	if _, err := logs.PutMetricFilter(ctx, filterInput("/aws/lambda/"+uniqueName("nowhere"), prefix+"x", "x", "Test/MF", "X")); !errors.As(err, &nf) {
		t.Errorf("a filter on a missing log group: %v, want ResourceNotFoundException", err)
	}
	if _, err := logs.DescribeMetricFilters(ctx, &cloudwatchlogs.DescribeMetricFiltersInput{LogGroupName: aws.String("/aws/lambda/" + uniqueName("nowhere"))}); !errors.As(err, &nf) {
		t.Errorf("describing a missing log group: %v, want ResourceNotFoundException", err)
	}

	// Deleting a log group deletes its filters.
	group := "/tb/" + uniqueName("group")
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.PutMetricFilter(ctx, filterInput(group, prefix+"gone", "x", "Test/MF", "G")); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = logs.DeleteLogGroup(t.Context(), &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(group)})
	})
	if names := filterNames(t, logs, &cloudwatchlogs.DescribeMetricFiltersInput{LogGroupName: aws.String(group)}); len(names) != 0 {
		t.Errorf("a re-created log group still has the old filters %q", names)
	}
	if got := w.AWSFront.Calls("logs:PutMetricFilter"); got < 5 {
		t.Errorf("Calls(logs:PutMetricFilter) = %d", got)
	}
}

func TestRunMetricFiltersFeedsAnAlarm(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	logs := cloudwatchlogs.NewFromConfig(w.AWS)
	cw := cloudwatch.NewFromConfig(w.AWS)
	ctx := t.Context()
	ns := "Test/" + uniqueName("runmf")
	prefix := uniqueName("tb-runmf") + "-"
	if _, err := logs.PutMetricFilter(ctx, filterInput(w.LogGroup, prefix+"failures", w.Profile.LogFailurePattern, ns, "Failures")); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.PutMetricFilter(ctx, filterInput(w.LogGroup, prefix+"never", "?nothing ?never", ns, "Never")); err != nil {
		t.Fatal(err)
	}
	putAlarm(t, cw, prefix+"failures", ns, "Failures", cwtypes.StatisticSum, cwtypes.ComparisonOperatorGreaterThanThreshold, 2, 1, 1, "notBreaching")
	putAlarm(t, cw, prefix+"never", ns, "Never", cwtypes.StatisticSum, cwtypes.ComparisonOperatorGreaterThanThreshold, 0, 1, 1, "breaching")

	since := time.Now().Add(-time.Second)
	mustLogin(t, w)
	for range 3 {
		getProfile(t, w, "not-a-token")
	}
	runs, err := w.RunMetricFilters(ctx, w.LogGroup, since)
	if err != nil {
		t.Fatalf("RunMetricFilters: %v", err)
	}
	if len(runs) != 2 || runs[0].Matched != 3 || runs[0].Value != 3 || !runs[1].Published || runs[1].Matched != 0 || runs[1].Value != 0 {
		t.Fatalf("runs %+v: want 3 failures matched, and the default 0 published for the other", runs)
	}
	if _, err := w.EvaluateAlarms(ctx, prefix); err != nil {
		t.Fatal(err)
	}
	want := map[string]cwtypes.StateValue{prefix + "failures": cwtypes.StateValueAlarm, prefix + "never": cwtypes.StateValueOk}
	for _, a := range describeAll(t, cw, prefix, 10) {
		if a.StateValue != want[aws.ToString(a.AlarmName)] {
			t.Errorf("%s: %s (%s)", aws.ToString(a.AlarmName), a.StateValue, aws.ToString(a.StateReason))
		}
	}
}
