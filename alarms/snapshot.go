package alarms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// Window is a snapshot's time range.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Snapshot is what the logs and the alarms said about one window: the named
// queries' results and the alarms' states. Rotation takes one before it
// changes anything and one after verification, and compares them.
type Snapshot struct {
	// Taken is when the snapshot was started.
	Taken  time.Time `json:"taken"`
	Window Window    `json:"window"`
	// Queries holds each query that completed, by name.
	Queries map[string]Result `json:"queries"`
	// Errors says, by query name, why a query has no result.
	Errors map[string]string `json:"errors,omitempty"`
	// Alarms are the states read, by name; empty when no AlarmLister was
	// given or reading failed (then AlarmsError says why).
	Alarms      []AlarmStatus `json:"alarms"`
	AlarmsError string        `json:"alarmsError,omitempty"`
}

// AlarmLister reads the alarm states a snapshot records.
type AlarmLister interface {
	AlarmStates(ctx context.Context) ([]AlarmStatus, error)
}

// AlarmDescriber is the CloudWatch method AlarmsByPrefix calls, with the
// SDK's signature: *cloudwatch.Client satisfies it.
type AlarmDescriber interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// AlarmsByPrefix lists the states of the alarms under prefix (those
// Apply manages), through Status.
func AlarmsByPrefix(api AlarmDescriber, prefix string) AlarmLister {
	return prefixLister{api: api, prefix: prefix}
}

type prefixLister struct {
	api    AlarmDescriber
	prefix string
}

func (l prefixLister) AlarmStates(ctx context.Context) ([]AlarmStatus, error) {
	return Status(ctx, l.api, l.prefix)
}

// IngestionDelay is how long to let CloudWatch Logs ingest a window's last
// lines before querying it: events usually become queryable within seconds
// of PutLogEvents, and rarely take more than half a minute. Prefer
// WaitForIngestion, which returns as soon as the lines are visible, with
// this as its bound.
const IngestionDelay = 30 * time.Second

// LogEventsFilterer is the CloudWatch Logs method WaitForIngestion calls.
type LogEventsFilterer interface {
	FilterLogEvents(ctx context.Context, in *cloudwatchlogs.FilterLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error)
}

// WaitForIngestion waits until one of the log groups shows an event at or
// after mark, or until maxWait (IngestionDelay when 0) has passed. Choose a
// mark that a known line follows (the start of the probe's verification,
// whose requests the API logs): once a line after it is visible, the lines
// before it are, as far as CloudWatch's ordering lets one tell. It reports
// how long it waited and whether it saw such a line; not seeing one is not
// an error (the caller says so and queries anyway); ctx ending or every
// group failing to be read is.
func WaitForIngestion(ctx context.Context, logs LogEventsFilterer, groups []string, mark time.Time, maxWait time.Duration) (time.Duration, bool, error) {
	if maxWait <= 0 {
		maxWait = IngestionDelay
	}
	began := time.Now()
	wait := DefaultPollInitial
	for {
		var errs []error
		for _, g := range groups {
			out, err := logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{
				LogGroupName: aws.String(g), StartTime: aws.Int64(mark.UnixMilli()), Limit: aws.Int32(1)})
			if err != nil {
				errs = append(errs, fmt.Errorf("reading %s: %w", g, err))
				continue
			}
			if len(out.Events) > 0 {
				return time.Since(began), true, nil
			}
		}
		if len(groups) > 0 && len(errs) == len(groups) {
			return time.Since(began), false, fmt.Errorf("waiting for log ingestion: %w", errors.Join(errs...))
		}
		left := maxWait - time.Since(began)
		if left <= 0 {
			return time.Since(began), false, nil
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return time.Since(began), false, fmt.Errorf("waiting for log ingestion: %w", ctx.Err())
		}
		wait = min(2*wait, DefaultPollMax)
	}
}

// TakeSnapshot runs the queries over the log groups between start and end,
// at once (the Runner's MaxConcurrent queues them), and reads the alarms'
// states when alarms is not nil. It always returns the snapshot with what
// it could read; the error joins the failures (also recorded in the
// snapshot's Errors and AlarmsError), so a caller can keep a partial
// snapshot and say what is missing. Query the "after" window only once its
// lines are ingested (see WaitForIngestion).
func TakeSnapshot(ctx context.Context, runner *Runner, queries []Query, groups []string, start, end time.Time, alarms AlarmLister) (Snapshot, error) {
	s := Snapshot{Taken: runner.now(), Window: Window{Start: start, End: end}, Queries: map[string]Result{}, Alarms: []AlarmStatus{}}
	// One line for the snapshot, not one per query.
	ctx, stopWaiting := runner.Progress.Start(ctx, fmt.Sprintf("%d Logs Insights queries over %d log group(s)", len(queries), len(groups)), runner.deadlineOf(len(queries)))
	defer stopWaiting()
	errs := make([]error, len(queries)+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, q := range queries {
		wg.Go(func() {
			res, err := runner.Run(ctx, q, groups, start, end)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if s.Errors == nil {
					s.Errors = map[string]string{}
				}
				s.Errors[q.Name] = err.Error()
				errs[i] = err
				return
			}
			s.Queries[q.Name] = res
		})
	}
	if alarms != nil {
		wg.Go(func() {
			states, err := alarms.AlarmStates(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.AlarmsError = err.Error()
				errs[len(queries)] = fmt.Errorf("reading alarm states: %w", err)
				return
			}
			s.Alarms = states
		})
	}
	wg.Wait()
	return s, errors.Join(errs...)
}
