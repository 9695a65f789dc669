package alarms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
)

// deleteBatch is the most alarms one DeleteAlarms call takes.
const deleteBatch = 100

// Apply makes CloudWatch match a plan: PutMetricFilter for each filter to
// create or update, PutMetricAlarm for each alarm to create or update (the
// whole configuration, as AWS replaces it), DeleteAlarms (by 100) and
// DeleteMetricFilter for the deletes, then PutDashboard for the dashboard
// (whose DashboardValidationMessages are an error: see putDashboard).
// Unchanged resources are not touched,
// so applying a fresh plan twice writes nothing the second time. A failed
// change does not stop the others: Apply returns the changes it made and
// every failure joined. Something already deleted counts as deleted.
func Apply(ctx context.Context, cw CloudWatchAPI, logs MetricFilterAPI, plan Changes) ([]Change, error) {
	var done []Change
	var errs []error
	pending := plan.Pending()
	for _, ch := range pending {
		if ch.Resource != ResourceFilter || ch.Kind == Delete {
			continue
		}
		if ch.Filter == nil {
			errs = append(errs, fmt.Errorf("metric filter %s on %s: the plan carries no desired value", ch.Name, ch.LogGroup))
			continue
		}
		if _, err := logs.PutMetricFilter(ctx, putFilterInput(*ch.Filter)); err != nil {
			errs = append(errs, fmt.Errorf("putting metric filter %s on %s: %w", ch.Name, ch.LogGroup, err))
			continue
		}
		done = append(done, ch)
	}
	var deletes []string
	deleted := map[string]Change{}
	for _, ch := range pending {
		if ch.Resource != ResourceAlarm {
			continue
		}
		if ch.Kind == Delete {
			deletes = append(deletes, ch.Name)
			deleted[ch.Name] = ch
			continue
		}
		if ch.Alarm == nil {
			errs = append(errs, fmt.Errorf("alarm %s: the plan carries no desired value", ch.Name))
			continue
		}
		if _, err := cw.PutMetricAlarm(ctx, putAlarmInput(*ch.Alarm)); err != nil {
			errs = append(errs, fmt.Errorf("putting alarm %s: %w", ch.Name, err))
			continue
		}
		done = append(done, ch)
	}
	for len(deletes) > 0 {
		n := min(deleteBatch, len(deletes))
		ok, err := deleteAlarms(ctx, cw, deletes[:n])
		for _, name := range ok {
			done = append(done, deleted[name])
		}
		if err != nil {
			errs = append(errs, err)
		}
		deletes = deletes[n:]
	}
	for _, ch := range pending {
		if ch.Resource != ResourceFilter || ch.Kind != Delete {
			continue
		}
		_, err := logs.DeleteMetricFilter(ctx, &cloudwatchlogs.DeleteMetricFilterInput{
			FilterName: aws.String(ch.Name), LogGroupName: aws.String(ch.LogGroup),
		})
		var nf *cwltypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			errs = append(errs, fmt.Errorf("deleting metric filter %s on %s: %w", ch.Name, ch.LogGroup, err))
			continue
		}
		done = append(done, ch)
	}
	for _, ch := range pending {
		if ch.Resource != ResourceDashboard {
			continue
		}
		if ch.Kind == Delete || ch.Dashboard == nil {
			errs = append(errs, fmt.Errorf("dashboard %s: the plan carries no desired body (dashboards are never deleted)", ch.Name))
			continue
		}
		written, err := putDashboard(ctx, cw, *ch.Dashboard)
		if written {
			done = append(done, ch)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return done, errors.Join(errs...)
}

// deleteAlarms deletes names in one call; when CloudWatch answers that one
// of them does not exist (someone deleted it meanwhile), it deletes them
// one by one and counts the missing ones as deleted.
func deleteAlarms(ctx context.Context, cw CloudWatchAPI, names []string) ([]string, error) {
	_, err := cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: names})
	if err == nil {
		return names, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("deleting alarms %s: %w", strings.Join(names, ", "), err)
	}
	var ok []string
	var errs []error
	for _, n := range names {
		if _, err := cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{n}}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting alarm %s: %w", n, err))
			continue
		}
		ok = append(ok, n)
	}
	return ok, errors.Join(errs...)
}

// isNotFound reports CloudWatch's "no such alarm".
func isNotFound(err error) bool {
	var nf *cwtypes.ResourceNotFound
	var nfe *cwtypes.ResourceNotFoundException
	var api smithy.APIError
	return errors.As(err, &nf) || errors.As(err, &nfe) ||
		errors.As(err, &api) && (api.ErrorCode() == "ResourceNotFound" || api.ErrorCode() == "ResourceNotFoundException")
}

// putAlarmInput is the whole configuration of a, as PutMetricAlarm takes it.
func putAlarmInput(a Alarm) *cloudwatch.PutMetricAlarmInput {
	dims := make([]cwtypes.Dimension, 0, len(a.Dimensions))
	for _, d := range a.Dimensions {
		dims = append(dims, cwtypes.Dimension{Name: aws.String(d.Name), Value: aws.String(d.Value)})
	}
	return &cloudwatch.PutMetricAlarmInput{
		AlarmName:          aws.String(a.Name),
		AlarmDescription:   aws.String(a.Description),
		Namespace:          aws.String(a.Namespace),
		MetricName:         aws.String(a.MetricName),
		Dimensions:         dims,
		Statistic:          a.Statistic,
		Period:             aws.Int32(a.Period),
		EvaluationPeriods:  aws.Int32(a.Evaluation),
		DatapointsToAlarm:  aws.Int32(a.ToAlarm),
		Threshold:          aws.Float64(a.Threshold),
		ComparisonOperator: a.Comparison,
		TreatMissingData:   aws.String(a.TreatMissingData),
		ActionsEnabled:     aws.Bool(true),
		AlarmActions:       a.AlarmActions,
		OKActions:          a.OKActions,
	}
}

// putFilterInput is f as PutMetricFilter takes it.
func putFilterInput(f MetricFilter) *cloudwatchlogs.PutMetricFilterInput {
	return &cloudwatchlogs.PutMetricFilterInput{
		LogGroupName:  aws.String(f.LogGroup),
		FilterName:    aws.String(f.Name),
		FilterPattern: aws.String(f.Pattern),
		MetricTransformations: []cwltypes.MetricTransformation{{
			MetricNamespace: aws.String(f.MetricNamespace),
			MetricName:      aws.String(f.MetricName),
			MetricValue:     aws.String(f.MetricValue),
			DefaultValue:    f.DefaultValue,
			Unit:            cwltypes.StandardUnit(f.Unit),
		}},
	}
}

// AlarmStatus is one managed alarm as Status reports it: its state and what it watches.
type AlarmStatus struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Reason     string    `json:"reason"`
	UpdatedAt  time.Time `json:"updatedAt"`
	Namespace  string    `json:"namespace"`
	MetricName string    `json:"metricName"`
	Statistic  string    `json:"statistic"`
	Comparison string    `json:"comparisonOperator"`
	Threshold  float64   `json:"threshold"`
}

// Status lists the metric alarms under prefix, by name, with their states
// (OK, ALARM or INSUFFICIENT_DATA) and CloudWatch's reasons.
func Status(ctx context.Context, cw cloudwatch.DescribeAlarmsAPIClient, prefix string) ([]AlarmStatus, error) {
	if prefix == "" {
		return nil, fmt.Errorf("%w: empty prefix", ErrInvalidConfig)
	}
	alarms, err := listAlarms(ctx, cw, prefix)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(alarms, func(a, b cwtypes.MetricAlarm) int {
		return strings.Compare(aws.ToString(a.AlarmName), aws.ToString(b.AlarmName))
	})
	out := make([]AlarmStatus, 0, len(alarms))
	for _, a := range alarms {
		out = append(out, AlarmStatus{
			Name: aws.ToString(a.AlarmName), State: string(a.StateValue), Reason: aws.ToString(a.StateReason),
			UpdatedAt: aws.ToTime(a.StateUpdatedTimestamp).UTC(), Namespace: aws.ToString(a.Namespace),
			MetricName: aws.ToString(a.MetricName), Statistic: string(a.Statistic),
			Comparison: string(a.ComparisonOperator), Threshold: aws.ToFloat64(a.Threshold),
		})
	}
	return out, nil
}

// InAlarm returns the names of the alarms in the ALARM state.
func InAlarm(states []AlarmStatus) []string {
	var out []string
	for _, s := range states {
		if s.State == string(cwtypes.StateValueAlarm) {
			out = append(out, s.Name)
		}
	}
	return out
}
