package alarms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/valine/valine-check/internal/profile"
)

// A plan remembers the state it was computed from: each change's Current
// is a digest of the resource's configuration as Plan read it (none for
// a resource that did not exist), and Changes.State a digest of them all.
// States, reasons and timestamps are left out: an alarm changing state
// does not make a plan stale, a changed threshold, a new alarm under the
// prefix or an edited dashboard does. CheckFresh reads the same resources
// again and compares, as terraform refuses a stale saved plan.

// ErrStalePlan is wrapped by CheckFresh's answer when CloudWatch no longer
// holds what the plan was computed from, and by a plan whose fingerprint
// does not match its changes.
var ErrStalePlan = errors.New("the plan is stale")

// digest is a short stable fingerprint of v's JSON.
func digest(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf("%#v", v))
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// alarmDigest fingerprints an alarm's configuration: what PutMetricAlarm
// sets, lists as sets, without its state.
func alarmDigest(a cwtypes.MetricAlarm) string {
	dims := make([]string, 0, len(a.Dimensions))
	for _, d := range a.Dimensions {
		dims = append(dims, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
	}
	sorted := func(s []string) []string {
		s = slices.Clone(s)
		slices.Sort(s)
		return s
	}
	return digest(struct {
		Name, Description, Namespace, Metric, Statistic, ExtendedStatistic, Unit string
		Dimensions                                                               []string
		Period, Evaluation, ToAlarm                                              *int32
		Threshold                                                                *float64
		ThresholdMetricID, Comparison, TreatMissingData, LowSampleCount          string
		ActionsEnabled                                                           *bool
		AlarmActions, OKActions, InsufficientDataActions                         []string
		Metrics                                                                  []cwtypes.MetricDataQuery
	}{
		aws.ToString(a.AlarmName), aws.ToString(a.AlarmDescription), aws.ToString(a.Namespace), aws.ToString(a.MetricName),
		string(a.Statistic), aws.ToString(a.ExtendedStatistic), string(a.Unit), sorted(dims),
		a.Period, a.EvaluationPeriods, a.DatapointsToAlarm, a.Threshold,
		aws.ToString(a.ThresholdMetricId), string(a.ComparisonOperator), aws.ToString(a.TreatMissingData), aws.ToString(a.EvaluateLowSampleCountPercentile),
		a.ActionsEnabled, sorted(a.AlarmActions), sorted(a.OKActions), sorted(a.InsufficientDataActions), a.Metrics,
	})
}

// filterDigest fingerprints a metric filter, without its creation time.
func filterDigest(f cwltypes.MetricFilter) string {
	return digest(struct {
		Group, Name, Pattern, Selection string
		Transformed                     bool
		SystemDimensions                []string
		Transformations                 []cwltypes.MetricTransformation
	}{aws.ToString(f.LogGroupName), aws.ToString(f.FilterName), aws.ToString(f.FilterPattern), aws.ToString(f.FieldSelectionCriteria),
		f.ApplyOnTransformedLogs, f.EmitSystemFieldDimensions, f.MetricTransformations})
}

// dashboardDigest fingerprints a dashboard body as JSON (spacing and key
// order do not count), or as text when it is not JSON.
func dashboardDigest(body string) string {
	var v any
	if json.Unmarshal([]byte(body), &v) != nil {
		return digest(body)
	}
	return digest(v)
}

// stateKey names a resource in a plan's state.
func stateKey(r Resource, logGroup, name string) string {
	return string(r) + "\x00" + logGroup + "\x00" + name
}

// planState is the digest of every resource a plan read, by stateKey.
func planState(changes []Change) map[string]string {
	out := map[string]string{}
	for _, c := range changes {
		if c.Current != "" {
			out[stateKey(c.Resource, c.LogGroup, c.Name)] = c.Current
		}
	}
	return out
}

// stateFingerprint is one digest of a state, independent of order.
func stateFingerprint(state map[string]string) string {
	var lines []string
	for _, k := range sortedKeys(state) {
		lines = append(lines, k+"\x00"+state[k])
	}
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CheckFresh reads again what plan was computed from (the alarms under
// its prefix, the metric filters under it in its log groups and those of
// the JWT-failure alarms, its dashboard) and returns nil when CloudWatch
// still holds exactly that, or an error wrapping ErrStalePlan that names
// each resource which changed, appeared or disappeared since. It only
// reads.
func CheckFresh(ctx context.Context, cw CloudWatchAPI, logs MetricFilterAPI, plan Changes) error {
	if plan.Prefix == "" {
		return fmt.Errorf("%w: empty prefix", ErrInvalidConfig)
	}
	then := planState(plan.Changes)
	if plan.State == "" || stateFingerprint(then) != plan.State {
		return fmt.Errorf("%w: its fingerprint %q does not match its changes (was the plan edited?)", ErrStalePlan, plan.State)
	}
	now := map[string]string{}
	actual, err := listAlarms(ctx, cw, plan.Prefix)
	if err != nil {
		return err
	}
	groups := map[string]bool{}
	for _, g := range plan.LogGroups {
		groups[g] = true
	}
	for _, a := range actual {
		now[stateKey(ResourceAlarm, "", aws.ToString(a.AlarmName))] = alarmDigest(a)
		if fn, ok := functionOfMetric(aws.ToString(a.MetricName)); ok {
			groups[profile.LogGroup(fn)] = true
		}
	}
	filters, _, err := listFilters(ctx, logs, sortedKeys(groups), plan.Prefix)
	if err != nil {
		return err
	}
	for _, f := range filters {
		now[stateKey(ResourceFilter, aws.ToString(f.LogGroupName), aws.ToString(f.FilterName))] = filterDigest(f)
	}
	for _, c := range plan.Changes {
		if c.Resource != ResourceDashboard {
			continue
		}
		out, err := cw.GetDashboard(ctx, &cloudwatch.GetDashboardInput{DashboardName: aws.String(c.Name)})
		switch {
		case isDashboardNotFound(err):
		case err != nil:
			return fmt.Errorf("reading dashboard %s: %w", c.Name, err)
		default:
			now[stateKey(ResourceDashboard, "", c.Name)] = dashboardDigest(aws.ToString(out.DashboardBody))
		}
	}
	var moved []string
	keys := map[string]bool{}
	for k := range then {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		parts := strings.SplitN(k, "\x00", 3)
		what := parts[0] + " " + parts[2]
		if parts[1] != "" {
			what += " on " + parts[1]
		}
		switch was, is := then[k], now[k]; {
		case was == is:
		case was == "":
			moved = append(moved, what+" appeared")
		case is == "":
			moved = append(moved, what+" disappeared")
		default:
			moved = append(moved, what+" changed")
		}
	}
	if len(moved) > 0 {
		return fmt.Errorf("%w: since it was made, %s", ErrStalePlan, strings.Join(moved, "; "))
	}
	return nil
}
