package alarms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/valine/valine-check/internal/progress"
)

// InsightsAPI is the part of CloudWatch Logs the Runner calls, with the
// SDK's signatures: *cloudwatchlogs.Client satisfies it.
type InsightsAPI interface {
	StartQuery(ctx context.Context, in *cloudwatchlogs.StartQueryInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.StartQueryOutput, error)
	GetQueryResults(ctx context.Context, in *cloudwatchlogs.GetQueryResultsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetQueryResultsOutput, error)
	StopQuery(ctx context.Context, in *cloudwatchlogs.StopQueryInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.StopQueryOutput, error)
}

var (
	// ErrQueryTimeout is wrapped when a query did not finish within the
	// Runner's Deadline (it was then stopped), could not start within it
	// because the account's concurrent-query limit stayed reached, or
	// ended with CloudWatch's own status Timeout.
	ErrQueryTimeout = errors.New("logs insights query timed out")
	// ErrQueryFailed is wrapped when a query ended with status Failed or
	// Cancelled.
	ErrQueryFailed = errors.New("logs insights query failed")
)

// The Runner's defaults.
const (
	// DefaultMaxConcurrent stays well under CloudWatch Logs' account quota
	// on concurrent Insights queries (30 at the time of writing), which
	// dashboards and people share.
	DefaultMaxConcurrent = 10
	DefaultPollInitial   = 250 * time.Millisecond
	DefaultPollMax       = 5 * time.Second
	DefaultDeadline      = 2 * time.Minute
	// MaxLogGroupsPerQuery is StartQuery's limit on LogGroupNames.
	MaxLogGroupsPerQuery = 50
	// maxQueryRows is StartQuery's largest Limit: a day of 5-minute bins
	// is 288 rows, far below it.
	maxQueryRows = 10000
	// stopTimeout bounds the StopQuery sent after the deadline or a cancel.
	stopTimeout = 10 * time.Second
)

// Runner runs Logs Insights queries: StartQuery, then GetQueryResults polled
// with exponential backoff until the query ends, within a deadline. Share
// one *Runner between concurrent callers: its limit on queries in flight
// holds across all its Run calls. Do not copy a Runner after first use.
// Zero fields take the defaults above.
type Runner struct {
	Logs InsightsAPI
	// MaxConcurrent is how many queries may run at once; further Run calls
	// wait for a free slot (as long as their context lets them), they never
	// fail for it.
	MaxConcurrent int
	// PollInitial is the first wait between polls; each wait doubles up to PollMax.
	PollInitial, PollMax time.Duration
	// Deadline bounds one query from StartQuery (after its slot is free) to
	// its last poll, retries of a StartQuery refused for the account's limit
	// included. A query still running at the deadline is stopped.
	Deadline time.Duration
	// Now and Sleep are the clock, for tests; nil means the real one.
	// Sleep returns early with ctx's error when ctx ends.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Log receives the Runner's diagnostics; nil discards them.
	Log *slog.Logger
	// Progress is told of a query still running after a second, once per
	// query (once per snapshot for TakeSnapshot's); nil tells no one.
	Progress progress.Func

	once  sync.Once
	slots chan struct{}
}

// Run runs q over the log groups between start and end (whole seconds:
// start and end are truncated to the second, and CloudWatch includes both
// ends) and returns its result. It waits for a free slot first (see
// MaxConcurrent). When StartQuery is refused with LimitExceededException
// (the account's quota, reached by queries this Runner does not know of) it
// backs off and tries again until the deadline. Errors wrap ErrQueryTimeout,
// ErrQueryFailed, ctx's error or the SDK's.
func (r *Runner) Run(ctx context.Context, q Query, groups []string, start, end time.Time) (Result, error) {
	res := Result{Name: q.Name, Query: q.String, Field: q.Field, LogGroups: slices.Clone(groups), Start: start, End: end}
	switch {
	case len(groups) == 0:
		return res, fmt.Errorf("query %s: no log groups to query", q.Name)
	case len(groups) > MaxLogGroupsPerQuery:
		return res, fmt.Errorf("query %s: %d log groups, but one query reads at most %d", q.Name, len(groups), MaxLogGroupsPerQuery)
	case !end.After(start):
		return res, fmt.Errorf("query %s: the window's end %s is not after its start %s", q.Name, end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	release, err := r.acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("query %s: waiting for a free query slot: %w", q.Name, err)
	}
	defer release()
	began := r.now()
	deadline := began.Add(r.deadline())
	ctx, stopWaiting := r.Progress.Start(ctx, "Logs Insights query "+q.Name, deadline)
	defer stopWaiting()
	id, err := r.start(ctx, q, groups, start, end, deadline)
	if err == nil {
		err = r.poll(ctx, q, id, deadline, &res)
	}
	res.Duration = r.now().Sub(began)
	return res, err
}

// start sends StartQuery, retrying while the account's limit is reached.
func (r *Runner) start(ctx context.Context, q Query, groups []string, start, end, deadline time.Time) (string, error) {
	in := &cloudwatchlogs.StartQueryInput{
		LogGroupNames: groups,
		QueryString:   aws.String(q.String),
		StartTime:     aws.Int64(start.Unix()),
		EndTime:       aws.Int64(end.Unix()),
		Limit:         aws.Int32(maxQueryRows),
	}
	wait := r.pollInitial()
	for {
		// One layer retries: this loop, within the query's deadline. The
		// SDK's retryer would retry LimitExceeded again inside each try.
		out, err := r.Logs.StartQuery(ctx, in, func(o *cloudwatchlogs.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			return aws.ToString(out.QueryId), nil
		}
		var limit *cwltypes.LimitExceededException
		if !errors.As(err, &limit) {
			return "", fmt.Errorf("starting query %s: %w", q.Name, err)
		}
		now := r.now()
		if !now.Before(deadline) {
			return "", fmt.Errorf("query %s could not start within %s: the account's limit on concurrent Logs Insights queries stayed reached (%w): %w",
				q.Name, shortDuration(r.deadline()), err, ErrQueryTimeout)
		}
		r.log().Debug("logs insights query limit reached; waiting", "query", q.Name, "wait", wait)
		if err := r.sleep(ctx, min(wait, deadline.Sub(now))); err != nil {
			return "", fmt.Errorf("starting query %s: %w", q.Name, err)
		}
		wait = min(2*wait, r.pollMax())
	}
}

// poll reads the query's results until it ends or the deadline passes.
func (r *Runner) poll(ctx context.Context, q Query, id string, deadline time.Time, res *Result) error {
	wait := r.pollInitial()
	for {
		out, err := r.Logs.GetQueryResults(ctx, &cloudwatchlogs.GetQueryResultsInput{QueryId: aws.String(id)})
		res.Polls++
		if err != nil {
			r.stop(ctx, q, id)
			return fmt.Errorf("reading the results of query %s: %w", q.Name, err)
		}
		res.Status = string(out.Status)
		switch out.Status {
		case cwltypes.QueryStatusComplete:
			return r.complete(ctx, q, id, out, res)
		case cwltypes.QueryStatusFailed, cwltypes.QueryStatusCancelled:
			return fmt.Errorf("query %s ended with status %s: %w", q.Name, out.Status, ErrQueryFailed)
		case cwltypes.QueryStatusTimeout:
			return fmt.Errorf("query %s timed out in CloudWatch Logs (status Timeout): %w", q.Name, ErrQueryTimeout)
		}
		now := r.now()
		if !now.Before(deadline) {
			r.stop(ctx, q, id)
			return fmt.Errorf("query %s did not finish within %s (status %s after %d polls; it was stopped): %w",
				q.Name, shortDuration(r.deadline()), out.Status, res.Polls, ErrQueryTimeout)
		}
		if err := r.sleep(ctx, min(wait, deadline.Sub(now))); err != nil {
			r.stop(ctx, q, id)
			return fmt.Errorf("waiting for query %s: %w", q.Name, err)
		}
		wait = min(2*wait, r.pollMax())
	}
}

// complete fills res from a Complete answer, reading any further pages.
func (r *Runner) complete(ctx context.Context, q Query, id string, out *cloudwatchlogs.GetQueryResultsOutput, res *Result) error {
	if s := out.Statistics; s != nil {
		res.Statistics = Statistics{RecordsMatched: s.RecordsMatched, RecordsScanned: s.RecordsScanned,
			BytesScanned: s.BytesScanned, LogGroupsScanned: s.LogGroupsScanned}
	}
	res.Rows = []map[string]string{}
	for {
		for _, fields := range out.Results {
			row := map[string]string{}
			for _, f := range fields {
				if name := aws.ToString(f.Field); name != "@ptr" {
					row[name] = aws.ToString(f.Value)
				}
			}
			res.Rows = append(res.Rows, row)
		}
		if aws.ToString(out.NextToken) == "" {
			return nil
		}
		var err error
		out, err = r.Logs.GetQueryResults(ctx, &cloudwatchlogs.GetQueryResultsInput{QueryId: aws.String(id), NextToken: out.NextToken})
		if err != nil {
			return fmt.Errorf("reading the results of query %s: %w", q.Name, err)
		}
	}
}

// stop sends StopQuery, even when ctx has ended, and only logs a failure:
// the query ends on its own at CloudWatch's limit anyway.
func (r *Runner) stop(ctx context.Context, q Query, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if _, err := r.Logs.StopQuery(ctx, &cloudwatchlogs.StopQueryInput{QueryId: aws.String(id)}); err != nil {
		r.log().Warn("stopping a logs insights query failed", "query", q.Name, "queryId", id, "err", err)
	}
}

// acquire takes a query slot, waiting for one; it returns the release.
func (r *Runner) acquire(ctx context.Context) (func(), error) {
	r.once.Do(func() {
		n := r.MaxConcurrent
		if n <= 0 {
			n = DefaultMaxConcurrent
		}
		r.slots = make(chan struct{}, n)
	})
	select {
	case r.slots <- struct{}{}:
		return func() { <-r.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) deadline() time.Duration { return orDefault(r.Deadline, DefaultDeadline) }

// deadlineOf is when n queries run now give up at the latest: those beyond
// MaxConcurrent wait for a slot first.
func (r *Runner) deadlineOf(n int) time.Time {
	slots := r.MaxConcurrent
	if slots <= 0 {
		slots = DefaultMaxConcurrent
	}
	rounds := max(1, (n+slots-1)/slots)
	return r.now().Add(time.Duration(rounds) * r.deadline())
}
func (r *Runner) pollInitial() time.Duration { return orDefault(r.PollInitial, DefaultPollInitial) }
func (r *Runner) pollMax() time.Duration {
	return max(orDefault(r.PollMax, DefaultPollMax), r.pollInitial())
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// shortDuration prints 2m0s as 2m and 1h0m0s as 1h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Statistics are CloudWatch's figures about one query's scan.
type Statistics struct {
	RecordsMatched   float64 `json:"recordsMatched"`
	RecordsScanned   float64 `json:"recordsScanned"`
	BytesScanned     float64 `json:"bytesScanned"`
	LogGroupsScanned float64 `json:"logGroupsScanned"`
}

// Result is one query's answer. Run returns it filled as far as it got,
// with an error, when the query did not complete.
type Result struct {
	// Name, Query and Field are the query's (Field: its counted column,
	// the one to pass to Total, Bins, MaxPerBin and RatePer5m).
	Name  string `json:"name"`
	Query string `json:"query"`
	Field string `json:"field,omitempty"`
	// LogGroups, Start and End are what was asked for.
	LogGroups []string  `json:"logGroups"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	// Status is CloudWatch's last answer: Complete when Rows can be trusted.
	Status string `json:"status"`
	// Rows are the result rows, field name to value ("@ptr" left out).
	// Counting queries by bin have a "bin(5m)" field holding the bin's start
	// as "2006-01-02 15:04:05.000" in UTC.
	Rows       []map[string]string `json:"rows"`
	Statistics Statistics          `json:"statistics"`
	// Duration runs from StartQuery to the last answer; Polls counts the
	// GetQueryResults calls that waited for the query to end.
	Duration time.Duration `json:"-"`
	Polls    int           `json:"polls"`
}

type resultJSON Result

// MarshalJSON writes Duration as durationMs, like the probe reports.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		resultJSON
		DurationMS float64 `json:"durationMs"`
	}{resultJSON(r), float64(r.Duration) / float64(time.Millisecond)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Result) UnmarshalJSON(b []byte) error {
	var in struct {
		resultJSON
		DurationMS float64 `json:"durationMs"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = Result(in.resultJSON)
	r.Duration = time.Duration(in.DurationMS * float64(time.Millisecond))
	return nil
}

// binLayout is how Logs Insights prints a bin's start.
const binLayout = "2006-01-02 15:04:05.000"

// Total is the sum of field over the rows (rows where it is not a number
// count 0).
func (r Result) Total(field string) float64 {
	var sum float64
	for _, row := range r.Rows {
		sum += number(row[field])
	}
	return sum
}

// bins is field by bin start, for a query counting "by bin(...)"; it is
// empty for other shapes.
func (r Result) bins(field string) map[time.Time]float64 {
	bins := map[time.Time]float64{}
	for _, row := range r.Rows {
		for k, v := range row {
			if !strings.HasPrefix(k, "bin(") {
				continue
			}
			if t, err := time.ParseInLocation(binLayout, v, time.UTC); err == nil {
				bins[t] += number(row[field])
			}
		}
	}
	return bins
}

// MaxPerBin is the largest value of field in any one bin, and that bin's
// start (zero when there are no bins).
func (r Result) MaxPerBin(field string) (float64, time.Time) {
	var peak float64
	var at time.Time
	for t, v := range r.bins(field) {
		if v > peak || v == peak && v > 0 && t.Before(at) {
			peak, at = v, t
		}
	}
	return peak, at
}

// RatePer5m is field's total per 5 minutes of the window. A window shorter
// than 5 minutes counts as 5 minutes: a few events in a short window are not
// extrapolated into a burst.
func (r Result) RatePer5m(field string) float64 {
	window := max(r.End.Sub(r.Start), 5*time.Minute)
	return r.Total(field) * float64(5*time.Minute) / float64(window)
}

func number(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) {
		return 0
	}
	return v
}
