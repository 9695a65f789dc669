package alarms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/valine/valine-check/internal/profile"
)

// CloudWatchAPI is the part of the CloudWatch client Plan and Apply call,
// with the SDK's signatures.
type CloudWatchAPI interface {
	DescribeAlarms(ctx context.Context, params *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	PutMetricAlarm(ctx context.Context, params *cloudwatch.PutMetricAlarmInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error)
	DeleteAlarms(ctx context.Context, params *cloudwatch.DeleteAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error)
	GetDashboard(ctx context.Context, params *cloudwatch.GetDashboardInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetDashboardOutput, error)
	PutDashboard(ctx context.Context, params *cloudwatch.PutDashboardInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutDashboardOutput, error)
}

// MetricFilterAPI is the part of the CloudWatch Logs client Plan and Apply
// call, with the SDK's signatures.
type MetricFilterAPI interface {
	DescribeMetricFilters(ctx context.Context, params *cloudwatchlogs.DescribeMetricFiltersInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeMetricFiltersOutput, error)
	PutMetricFilter(ctx context.Context, params *cloudwatchlogs.PutMetricFilterInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.PutMetricFilterOutput, error)
	DeleteMetricFilter(ctx context.Context, params *cloudwatchlogs.DeleteMetricFilterInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DeleteMetricFilterOutput, error)
}

// Kind is what a change does.
type Kind string

// The kinds of change.
const (
	Create    Kind = "create"
	Update    Kind = "update"
	Delete    Kind = "delete"
	Unchanged Kind = "unchanged"
)

// Resource is what a change is about.
type Resource string

// The resources Plan manages.
const (
	ResourceAlarm     Resource = "alarm"
	ResourceFilter    Resource = "metric-filter"
	ResourceDashboard Resource = "dashboard"
)

// resourceOrder is the order of a plan's resources: alarms, their metric
// filters, then the dashboard that shows them.
var resourceOrder = map[Resource]int{ResourceAlarm: 0, ResourceFilter: 1, ResourceDashboard: 2}

// Change is one difference between the desired and the actual state.
type Change struct {
	Kind     Kind     `json:"kind"`
	Resource Resource `json:"resource"`
	Name     string   `json:"name"`
	// LogGroup is a metric filter's log group.
	LogGroup string `json:"logGroup,omitempty"`
	// Fields name what differs, for an update, with AWS's field names
	// ("Threshold", "EvaluationPeriods", "FilterPattern", …).
	Fields []string `json:"fields,omitempty"`
	// Note explains a change that Apply may not be able to make, such as
	// a metric filter for a log group that does not exist yet.
	Note string `json:"note,omitempty"`
	// Current is a digest of the resource's configuration as Plan read it
	// ("" when it did not exist): what CheckFresh compares.
	Current string `json:"current,omitempty"`
	// Alarm, Filter or Dashboard is the desired value, for a create or an
	// update.
	Alarm     *Alarm        `json:"alarm,omitempty"`
	Filter    *MetricFilter `json:"filter,omitempty"`
	Dashboard *Dashboard    `json:"dashboard,omitempty"`
}

// Changes is a plan: every desired and every managed resource, each with
// its change, alarms first, then metric filters, then the dashboard, each
// sorted by name.
type Changes struct {
	Prefix  string   `json:"prefix"`
	Changes []Change `json:"changes"`
	// State fingerprints what the plan was computed from (the changes'
	// Current digests): see CheckFresh.
	State string `json:"state,omitempty"`
	// LogGroups are the log groups whose metric filters Plan read.
	LogGroups []string `json:"logGroups,omitempty"`
}

// Count returns how many changes are of kind k.
func (c Changes) Count(k Kind) int {
	n := 0
	for _, ch := range c.Changes {
		if ch.Kind == k {
			n++
		}
	}
	return n
}

// Pending returns the changes that are not Unchanged.
func (c Changes) Pending() []Change {
	var out []Change
	for _, ch := range c.Changes {
		if ch.Kind != Unchanged {
			out = append(out, ch)
		}
	}
	return out
}

// Plan compares the desired alarms and metric filters with what CloudWatch
// holds under prefix: alarms listed with DescribeAlarms(AlarmNamePrefix),
// metric filters with DescribeMetricFilters(FilterNamePrefix) in each
// desired filter's log group and in the log group of every managed
// JWT-failure alarm (so a function dropped from the fleet loses its filter
// too), and, WithDashboard, the dashboard by its name (GetDashboard).
// Anything under the prefix that is not desired is a Delete; anything
// outside it is never looked at. The dashboard is one resource with a
// fixed name, so it is created, updated or unchanged, never deleted. Plan
// only reads.
func Plan(ctx context.Context, cw CloudWatchAPI, logs MetricFilterAPI, alarms []Alarm, filters []MetricFilter, prefix string, opts ...PlanOption) (Changes, error) {
	var o planOptions
	for _, opt := range opts {
		opt(&o)
	}
	if prefix == "" {
		return Changes{}, fmt.Errorf("%w: empty prefix: every alarm in the account would be managed", ErrInvalidConfig)
	}
	if err := checkUnder(alarms, filters, prefix); err != nil {
		return Changes{}, err
	}
	actual, err := listAlarms(ctx, cw, prefix)
	if err != nil {
		return Changes{}, err
	}
	out := Changes{Prefix: prefix, Changes: []Change{}}
	byName := map[string]cwtypes.MetricAlarm{}
	for _, a := range actual {
		byName[aws.ToString(a.AlarmName)] = a
	}
	for _, want := range alarms {
		ch := Change{Kind: Create, Resource: ResourceAlarm, Name: want.Name, Alarm: &want}
		if have, ok := byName[want.Name]; ok {
			delete(byName, want.Name)
			if ch.Fields = alarmDiff(want, have); len(ch.Fields) > 0 {
				ch.Kind = Update
			} else {
				ch = Change{Kind: Unchanged, Resource: ResourceAlarm, Name: want.Name}
			}
			ch.Current = alarmDigest(have)
		}
		out.Changes = append(out.Changes, ch)
	}
	groups := map[string]bool{}
	for _, f := range filters {
		groups[f.LogGroup] = true
	}
	for _, a := range actual {
		if fn, ok := functionOfMetric(aws.ToString(a.MetricName)); ok {
			groups[profile.LogGroup(fn)] = true
		}
	}
	for _, name := range sortedKeys(byName) {
		out.Changes = append(out.Changes, Change{Kind: Delete, Resource: ResourceAlarm, Name: name, Current: alarmDigest(byName[name])})
	}

	haveFilters, missingGroups, err := listFilters(ctx, logs, sortedKeys(groups), prefix)
	if err != nil {
		return Changes{}, err
	}
	for _, want := range filters {
		key := want.LogGroup + "\x00" + want.Name
		ch := Change{Kind: Create, Resource: ResourceFilter, Name: want.Name, LogGroup: want.LogGroup, Filter: &want}
		if missingGroups[want.LogGroup] {
			ch.Note = "log group " + want.LogGroup + " does not exist yet (the function has never logged): apply will fail for it until it does"
		}
		if have, ok := haveFilters[key]; ok {
			delete(haveFilters, key)
			if ch.Fields = filterDiff(want, have); len(ch.Fields) > 0 {
				ch.Kind = Update
			} else {
				ch = Change{Kind: Unchanged, Resource: ResourceFilter, Name: want.Name, LogGroup: want.LogGroup}
			}
			ch.Current = filterDigest(have)
		}
		out.Changes = append(out.Changes, ch)
	}
	for _, key := range sortedKeys(haveFilters) {
		f := haveFilters[key]
		out.Changes = append(out.Changes, Change{Kind: Delete, Resource: ResourceFilter, Name: aws.ToString(f.FilterName),
			LogGroup: aws.ToString(f.LogGroupName), Current: filterDigest(f)})
	}
	if d := o.dashboard; d != nil {
		if d.Name != DashboardName(prefix) {
			return Changes{}, fmt.Errorf("%w: dashboard %q is not the prefix's (%s)", ErrInvalidConfig, d.Name, DashboardName(prefix))
		}
		ch, err := planDashboard(ctx, cw, *d)
		if err != nil {
			return Changes{}, err
		}
		out.Changes = append(out.Changes, ch)
	}
	slices.SortStableFunc(out.Changes, func(a, b Change) int {
		if a.Resource != b.Resource {
			return resourceOrder[a.Resource] - resourceOrder[b.Resource]
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.LogGroup, b.LogGroup)
	})
	out.LogGroups = sortedKeys(groups)
	out.State = stateFingerprint(planState(out.Changes))
	return out, nil
}

// PlanOption adds to what Plan compares.
type PlanOption func(*planOptions)

type planOptions struct{ dashboard *Dashboard }

// WithDashboard makes Plan compare the deployment's dashboard too (see
// DesiredDashboard); its name must be DashboardName(prefix).
func WithDashboard(d Dashboard) PlanOption {
	return func(o *planOptions) { o.dashboard = &d }
}

// checkUnder refuses desired resources outside the prefix (a later plan
// could not see them) and duplicates.
func checkUnder(alarms []Alarm, filters []MetricFilter, prefix string) error {
	seen := map[string]bool{}
	for _, a := range alarms {
		if !strings.HasPrefix(a.Name, prefix) {
			return fmt.Errorf("%w: alarm %q is not under the prefix %q", ErrInvalidConfig, a.Name, prefix)
		}
		if seen[a.Name] {
			return fmt.Errorf("%w: alarm %q is desired twice", ErrInvalidConfig, a.Name)
		}
		seen[a.Name] = true
	}
	for _, f := range filters {
		if !strings.HasPrefix(f.Name, prefix) {
			return fmt.Errorf("%w: metric filter %q is not under the prefix %q", ErrInvalidConfig, f.Name, prefix)
		}
		if len(f.Name) > maxFilterName || strings.ContainsAny(f.Name, ":*") {
			return fmt.Errorf("%w: metric filter name %q is longer than %d characters or holds : or *", ErrInvalidConfig, f.Name, maxFilterName)
		}
		key := "filter\x00" + f.LogGroup + "\x00" + f.Name
		if seen[key] {
			return fmt.Errorf("%w: metric filter %q on %s is desired twice", ErrInvalidConfig, f.Name, f.LogGroup)
		}
		seen[key] = true
	}
	return nil
}

// listAlarms returns the metric alarms whose names start with prefix.
func listAlarms(ctx context.Context, cw cloudwatch.DescribeAlarmsAPIClient, prefix string) ([]cwtypes.MetricAlarm, error) {
	var out []cwtypes.MetricAlarm
	pages := cloudwatch.NewDescribeAlarmsPaginator(cw, &cloudwatch.DescribeAlarmsInput{
		AlarmNamePrefix: aws.String(prefix), MaxRecords: aws.Int32(100),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing alarms under %q: %w", prefix, err)
		}
		for _, a := range page.MetricAlarms {
			// Guard against an endpoint that ignores the prefix: never
			// manage what is outside it.
			if strings.HasPrefix(aws.ToString(a.AlarmName), prefix) {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// listFilters returns the metric filters under prefix in each log group,
// keyed by log group and name, and the log groups that do not exist.
func listFilters(ctx context.Context, logs MetricFilterAPI, groups []string, prefix string) (map[string]cwltypes.MetricFilter, map[string]bool, error) {
	out := map[string]cwltypes.MetricFilter{}
	missing := map[string]bool{}
	for _, g := range groups {
		pages := cloudwatchlogs.NewDescribeMetricFiltersPaginator(logs, &cloudwatchlogs.DescribeMetricFiltersInput{
			LogGroupName: aws.String(g), FilterNamePrefix: aws.String(prefix),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			var nf *cwltypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				missing[g] = true
				break
			}
			if err != nil {
				return nil, nil, fmt.Errorf("listing metric filters of %s: %w", g, err)
			}
			for _, f := range page.MetricFilters {
				name := aws.ToString(f.FilterName)
				if strings.HasPrefix(name, prefix) {
					out[g+"\x00"+name] = f
				}
			}
		}
	}
	return out, missing, nil
}

// alarmDiff names the fields in which have differs from want, with AWS's
// defaults applied to have (DatapointsToAlarm = EvaluationPeriods,
// TreatMissingData = missing, ActionsEnabled = true) and lists compared as
// sets.
func alarmDiff(want Alarm, have cwtypes.MetricAlarm) []string {
	var fields []string
	diff := func(name string, same bool) {
		if !same {
			fields = append(fields, name)
		}
	}
	toAlarm := have.DatapointsToAlarm
	if toAlarm == nil {
		toAlarm = have.EvaluationPeriods
	}
	missing := aws.ToString(have.TreatMissingData)
	if missing == "" {
		missing = MissingMissing
	}
	diff("AlarmDescription", want.Description == aws.ToString(have.AlarmDescription))
	diff("Namespace", want.Namespace == aws.ToString(have.Namespace))
	diff("MetricName", want.MetricName == aws.ToString(have.MetricName))
	diff("Dimensions", sameDims(want.Dimensions, have.Dimensions))
	diff("Metrics", len(have.Metrics) == 0)
	diff("Statistic", want.Statistic == have.Statistic)
	diff("ExtendedStatistic", aws.ToString(have.ExtendedStatistic) == "")
	diff("Unit", have.Unit == "")
	diff("Period", have.Period != nil && want.Period == *have.Period)
	diff("EvaluationPeriods", have.EvaluationPeriods != nil && want.Evaluation == *have.EvaluationPeriods)
	diff("DatapointsToAlarm", toAlarm != nil && want.ToAlarm == *toAlarm)
	diff("Threshold", have.Threshold != nil && want.Threshold == *have.Threshold && aws.ToString(have.ThresholdMetricId) == "")
	diff("ComparisonOperator", want.Comparison == have.ComparisonOperator)
	diff("TreatMissingData", want.TreatMissingData == missing)
	diff("ActionsEnabled", have.ActionsEnabled == nil || *have.ActionsEnabled)
	diff("AlarmActions", sameSet(want.AlarmActions, have.AlarmActions))
	diff("OKActions", sameSet(want.OKActions, have.OKActions))
	diff("InsufficientDataActions", len(have.InsufficientDataActions) == 0)
	return fields
}

// filterDiff names the fields in which have differs from want.
func filterDiff(want MetricFilter, have cwltypes.MetricFilter) []string {
	var fields []string
	diff := func(name string, same bool) {
		if !same {
			fields = append(fields, name)
		}
	}
	diff("FilterPattern", want.Pattern == aws.ToString(have.FilterPattern))
	if len(have.MetricTransformations) != 1 {
		return append(fields, "MetricTransformations")
	}
	t := have.MetricTransformations[0]
	diff("MetricNamespace", want.MetricNamespace == aws.ToString(t.MetricNamespace))
	diff("MetricName", want.MetricName == aws.ToString(t.MetricName))
	diff("MetricValue", want.MetricValue == aws.ToString(t.MetricValue))
	diff("DefaultValue", (want.DefaultValue == nil) == (t.DefaultValue == nil) &&
		(want.DefaultValue == nil || *want.DefaultValue == *t.DefaultValue))
	diff("Unit", want.Unit == string(t.Unit) || want.Unit == "" && t.Unit == cwltypes.StandardUnitNone)
	diff("Dimensions", len(t.Dimensions) == 0)
	return fields
}

func sameDims(want []Dimension, have []cwtypes.Dimension) bool {
	if len(want) != len(have) {
		return false
	}
	w := make([]string, 0, len(want))
	for _, d := range want {
		w = append(w, d.Name+"="+d.Value)
	}
	h := make([]string, 0, len(have))
	for _, d := range have {
		h = append(h, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
	}
	return sameSet(w, h)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
