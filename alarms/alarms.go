// Package alarms keeps Valine's CloudWatch alarms and log metric filters as
// code: Desired turns a Config into Go values, Plan compares them with what
// CloudWatch holds under a name prefix, Apply makes CloudWatch match, and
// Status reads the alarms' states.
package alarms

import (
	"fmt"
	"math"
	"slices"
	"strings"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/valine/valine-check/internal/probemetric"
	"github.com/valine/valine-check/internal/profile"
)

// Defaults of a Config's optional fields.
const (
	DefaultPrefix         = "valine-check-"
	DefaultProbeNamespace = probemetric.DefaultNamespace
	DefaultLogsNamespace  = "Valine/Auth"
)

// The probe's metric, which the scheduled probe Lambda publishes once a run:
// SuccessPercent (0-100, the share of checks that passed) in the probe
// namespace with the dimensions Deployment=<Config.DeploymentName()> and
// Check=all. Both sides use these names, so they cannot drift apart.
const (
	ProbeMetric              = probemetric.SuccessPercent
	ProbeDimensionDeployment = probemetric.DimensionDeployment
	ProbeDimensionCheck      = probemetric.DimensionCheck
	ProbeCheckAll            = probemetric.CheckAll
)

// The metrics the functions' log metric filters publish, in the logs
// namespace, one of each per function with the function in the name (a
// metric filter on a plain-text pattern cannot set a dimension):
//
//   - JWTFailuresMetric: "JWTVerificationFailures-<function>", the failed
//     JWT verifications (Config.FailurePattern), with an alarm on it;
//   - JWTSecondaryUseMetric: "JWTSecondarySecretUse-<function>", the
//     verifications that passed with the grace-period secondary secret
//     (Config.SecondaryPattern), only for a profile with a secondary
//     variable; graphed, not alarmed (during a grace period it is
//     expected, and after one the comparison reports it).
const (
	JWTFailuresMetric     = "JWTVerificationFailures"
	JWTSecondaryUseMetric = "JWTSecondarySecretUse"
)

// TreatMissingData values.
const (
	MissingNotBreaching = "notBreaching"
	MissingBreaching    = "breaching"
	MissingMissing      = "missing"
)

// Dimension is a CloudWatch metric dimension.
type Dimension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Alarm is one desired metric alarm: a single metric with a simple
// statistic, as PutMetricAlarm takes it.
type Alarm struct {
	Name        string                     `json:"name"`
	Description string                     `json:"description"`
	Namespace   string                     `json:"namespace"`
	MetricName  string                     `json:"metricName"`
	Dimensions  []Dimension                `json:"dimensions"`
	Statistic   cwtypes.Statistic          `json:"statistic"`
	Period      int32                      `json:"period"`
	Evaluation  int32                      `json:"evaluationPeriods"`
	ToAlarm     int32                      `json:"datapointsToAlarm"`
	Threshold   float64                    `json:"threshold"`
	Comparison  cwtypes.ComparisonOperator `json:"comparisonOperator"`
	// TreatMissingData is always explicit: notBreaching for error counts
	// and rates (no traffic is no error), breaching for the probe (a
	// silent probe is a broken probe).
	TreatMissingData string   `json:"treatMissingData"`
	AlarmActions     []string `json:"alarmActions,omitempty"`
	OKActions        []string `json:"okActions,omitempty"`
}

// MetricFilter is one desired log metric filter with its one metric
// transformation.
type MetricFilter struct {
	LogGroup        string   `json:"logGroup"`
	Name            string   `json:"name"`
	Pattern         string   `json:"pattern"`
	MetricNamespace string   `json:"metricNamespace"`
	MetricName      string   `json:"metricName"`
	MetricValue     string   `json:"metricValue"`
	DefaultValue    *float64 `json:"defaultValue,omitempty"`
	Unit            string   `json:"unit,omitempty"`
}

// Desired returns the alarms and metric filters cfg calls for, sorted by
// name (filters by log group, then name): per function a filter counting
// failed verifications and, when cfg.SecondaryPattern is set, one counting
// verifications by the secondary secret. It is pure: the same Config
// always gives the same values. Every name starts with cfg.Prefix.
func Desired(cfg Config) ([]Alarm, []MetricFilter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	c := cfg.withDefaults()
	t := *c.Thresholds
	var actions []string
	if c.SNSTopicARN != "" {
		actions = []string{c.SNSTopicARN}
	}
	api, stage := c.apiKey(), safe(c.Stage)
	apiDims := []Dimension{{"ApiName", c.APIName}, {"Stage", c.Stage}}
	m4xx, m5xx := "4XXError", "5XXError"
	if c.APIID != "" {
		apiDims = []Dimension{{"ApiId", c.APIID}, {"Stage", c.Stage}}
		m4xx, m5xx = "4xx", "5xx"
	}
	alarm := func(a Alarm) Alarm {
		a.Dimensions = sortedDims(a.Dimensions)
		a.AlarmActions = slices.Clone(actions)
		a.OKActions = slices.Clone(actions)
		return a
	}
	out := []Alarm{
		alarm(Alarm{
			Name:        c.Prefix + "apigw-4xx-rate-" + api + "-" + stage,
			Description: fmt.Sprintf("4XX responses above %s of requests over 5 minutes on %s stage %s: clients are being refused (after a rotation: tokens signed with the old secret). Managed by valine-check.", pct(t.Client4xxRate), c.APIName+c.APIID, c.Stage),
			Namespace:   "AWS/ApiGateway", MetricName: m4xx, Dimensions: slices.Clone(apiDims),
			Statistic: cwtypes.StatisticAverage, Period: 300, Evaluation: 1, ToAlarm: 1,
			Threshold: t.Client4xxRate, Comparison: cwtypes.ComparisonOperatorGreaterThanThreshold,
			TreatMissingData: MissingNotBreaching,
		}),
		alarm(Alarm{
			Name:        c.Prefix + "apigw-5xx-rate-" + api + "-" + stage,
			Description: fmt.Sprintf("5XX responses above %s of requests over 5 minutes on %s stage %s. Managed by valine-check.", pct(t.Server5xxRate), c.APIName+c.APIID, c.Stage),
			Namespace:   "AWS/ApiGateway", MetricName: m5xx, Dimensions: slices.Clone(apiDims),
			Statistic: cwtypes.StatisticAverage, Period: 300, Evaluation: 1, ToAlarm: 1,
			Threshold: t.Server5xxRate, Comparison: cwtypes.ComparisonOperatorGreaterThanThreshold,
			TreatMissingData: MissingNotBreaching,
		}),
		alarm(Alarm{
			Name:        c.Prefix + "probe-success-" + safe(c.DeploymentName()),
			Description: fmt.Sprintf("The scheduled probe of %s passed less than %v%% of its checks in 2 of the last 3 5-minute periods, or published nothing (a silent probe is a broken probe). Managed by valine-check.", c.DeploymentName(), t.ProbeSuccessPercent),
			Namespace:   c.ProbeNamespace, MetricName: ProbeMetric,
			Dimensions: []Dimension{{ProbeDimensionDeployment, c.DeploymentName()}, {ProbeDimensionCheck, ProbeCheckAll}},
			Statistic:  cwtypes.StatisticAverage, Period: 300, Evaluation: 3, ToAlarm: 2,
			Threshold: t.ProbeSuccessPercent, Comparison: cwtypes.ComparisonOperatorLessThanThreshold,
			TreatMissingData: MissingBreaching,
		}),
	}
	var filters []MetricFilter
	for _, fn := range c.Functions {
		fnDims := []Dimension{{"FunctionName", fn}}
		out = append(out,
			alarm(Alarm{
				Name:        c.Prefix + "lambda-errors-" + fn,
				Description: fmt.Sprintf("Lambda %s: more than %v failed invocations in 5 minutes. Managed by valine-check.", fn, t.LambdaErrors),
				Namespace:   "AWS/Lambda", MetricName: "Errors", Dimensions: fnDims,
				Statistic: cwtypes.StatisticSum, Period: 300, Evaluation: 1, ToAlarm: 1,
				Threshold: t.LambdaErrors, Comparison: cwtypes.ComparisonOperatorGreaterThanThreshold,
				TreatMissingData: MissingNotBreaching,
			}),
			alarm(Alarm{
				Name:        c.Prefix + "lambda-throttles-" + fn,
				Description: fmt.Sprintf("Lambda %s: more than %v throttled invocations in 5 minutes. Managed by valine-check.", fn, t.LambdaThrottles),
				Namespace:   "AWS/Lambda", MetricName: "Throttles", Dimensions: slices.Clone(fnDims),
				Statistic: cwtypes.StatisticSum, Period: 300, Evaluation: 1, ToAlarm: 1,
				Threshold: t.LambdaThrottles, Comparison: cwtypes.ComparisonOperatorGreaterThanThreshold,
				TreatMissingData: MissingNotBreaching,
			}),
			alarm(Alarm{
				Name:        c.Prefix + "jwt-failures-" + fn,
				Description: fmt.Sprintf("Lambda %s logged more than %v failed JWT verifications in 5 minutes (metric filter %s). Managed by valine-check.", fn, t.JWTFailures, failureFilterName(c.Prefix)),
				Namespace:   c.LogsNamespace, MetricName: JWTFailuresMetric + "-" + fn,
				Statistic: cwtypes.StatisticSum, Period: 300, Evaluation: 1, ToAlarm: 1,
				Threshold: t.JWTFailures, Comparison: cwtypes.ComparisonOperatorGreaterThanThreshold,
				TreatMissingData: MissingNotBreaching,
			}),
		)
		filters = append(filters, countFilter(c, fn, failureFilterName(c.Prefix), c.FailurePattern, JWTFailuresMetric))
		if c.SecondaryPattern != "" {
			filters = append(filters, countFilter(c, fn, secondaryFilterName(c.Prefix), c.SecondaryPattern, JWTSecondaryUseMetric))
		}
	}
	slices.SortFunc(out, func(a, b Alarm) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(filters, compareFilters)
	for _, a := range out {
		if len(a.Name) > maxAlarmName {
			return nil, nil, fmt.Errorf("%w: alarm name %q is longer than %d characters", ErrInvalidConfig, a.Name, maxAlarmName)
		}
	}
	if dup := duplicateName(out); dup != "" {
		return nil, nil, fmt.Errorf("%w: two alarms would be named %q (names are made safe by replacing punctuation)", ErrInvalidConfig, dup)
	}
	return out, filters, nil
}

// LogGroups are the functions' log groups, in their order.
func LogGroups(functions []string) []string {
	groups := make([]string, len(functions))
	for i, fn := range functions {
		groups[i] = profile.LogGroup(fn)
	}
	return groups
}

// countFilter is fn's metric filter named name: one count of metric-<fn>
// per line matching pattern, and 0 for a period whose lines match none
// (so a graph shows zero, not a gap, while the function logs).
func countFilter(c Config, fn, name, pattern, metric string) MetricFilter {
	return MetricFilter{
		LogGroup: profile.LogGroup(fn), Name: name, Pattern: pattern,
		MetricNamespace: c.LogsNamespace, MetricName: metric + "-" + fn,
		MetricValue: "1", DefaultValue: ptr(0.0), Unit: string(cwtypes.StandardUnitCount),
	}
}

// failureFilterName and secondaryFilterName are the metric filters' names
// in every function's log group.
func failureFilterName(prefix string) string   { return prefix + "jwt-verification-failures" }
func secondaryFilterName(prefix string) string { return prefix + "jwt-secondary-secret-use" }

// functionOfMetric returns the function whose JWT-failure metric is
// metricName, if it is one.
func functionOfMetric(metricName string) (string, bool) {
	return metricFunction(metricName, JWTFailuresMetric)
}

// metricFunction returns the function whose metric of the family
// (JWTFailuresMetric, JWTSecondaryUseMetric) metricName is, if it is one.
func metricFunction(metricName, family string) (string, bool) {
	fn, ok := strings.CutPrefix(metricName, family+"-")
	return fn, ok && validFunc.MatchString(fn)
}

func compareFilters(a, b MetricFilter) int {
	if c := strings.Compare(a.LogGroup, b.LogGroup); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func sortedDims(d []Dimension) []Dimension {
	d = slices.Clone(d)
	slices.SortFunc(d, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
	return d
}

func duplicateName(as []Alarm) string {
	for i := 1; i < len(as); i++ {
		if as[i].Name == as[i-1].Name {
			return as[i].Name
		}
	}
	return ""
}

// pct prints a fraction as a percentage.
func pct(f float64) string { return fmt.Sprintf("%g%%", math.Round(f*1e6)/1e4) }
