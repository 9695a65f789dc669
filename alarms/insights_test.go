package alarms_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// insightsWorld starts a testbed World for Logs Insights tests.
func insightsWorld(t *testing.T) *testbed.World {
	t.Helper()
	w, err := testbed.Start(t.Context(), testbed.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("starting the testbed: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

// logsClient is a Logs client against w; maxAttempts 0 keeps the SDK's retries.
func logsClient(w *testbed.World, maxAttempts int) *cloudwatchlogs.Client {
	return cloudwatchlogs.NewFromConfig(w.AWS, func(o *cloudwatchlogs.Options) {
		if maxAttempts > 0 {
			o.RetryMaxAttempts = maxAttempts
		}
	})
}

// fakeClock is a Runner clock whose Sleep records the wait and moves time
// on at once.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

// fakeRunner is a Runner on w with a fake clock.
func fakeRunner(w *testbed.World, c *fakeClock) *alarms.Runner {
	return &alarms.Runner{Logs: logsClient(w, 0), Now: c.Now, Sleep: c.Sleep}
}

// lastHour is a window around now wide enough for lines just written.
func lastHour() (time.Time, time.Time) {
	return time.Now().Add(-time.Hour), time.Now().Add(time.Minute)
}

func query(t *testing.T, p profile.Profile, name string, opts ...alarms.QueryOption) alarms.Query {
	t.Helper()
	q, ok := alarms.FindQuery(alarms.Queries(p, opts...), name)
	if !ok {
		t.Fatalf("no query %s", name)
	}
	return q
}

// apiTraffic makes the World's API log what a day of a rotation looks
// like: ordinary users, clients with tampered or missing tokens, an old
// token verified by the secondary secret after a zero-downtime stage, and
// one of the probe's deliberate rejections. It returns the probe's marker.
func apiTraffic(t *testing.T, w *testbed.World, users, tampered, missing int) string {
	t.Helper()
	ctx := t.Context()
	if err := w.SimulateUsers(ctx, users); err != nil {
		t.Fatalf("SimulateUsers: %v", err)
	}
	c := &probes.Client{BaseURL: w.APIURL, Profile: w.Profile}
	s, err := c.Login(ctx, w.ProbeEmail, secret.NewSecret(w.ProbePassword))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	bad, err := probes.TamperedSignature(s.Access)
	if err != nil {
		t.Fatalf("TamperedSignature: %v", err)
	}
	for i := range tampered + missing {
		tok := bad
		if i >= tampered {
			tok = secret.Token{}
		}
		if resp, err := c.Me(ctx, tok); err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("bad request: %+v, %v; want 401", resp, err)
		}
	}
	marker := probes.DeliberatePrefix + "0123456789abcdef" // one run's marker
	if resp, err := c.MeDeliberately(ctx, bad, marker); err != nil || resp.Status != http.StatusUnauthorized {
		t.Fatalf("deliberate bad request: %+v, %v; want 401", resp, err)
	}
	if err := w.SetSecrets(ctx, "new-secret-"+strings.Repeat("n", 40), w.InitialSecret()); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	if resp, err := c.Me(ctx, s.Access); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("old token during grace: %+v, %v; want 200", resp, err)
	}
	return marker
}

// The named queries, run by the Runner against the lines the testbed API
// wrote, count what happened: per 5-minute bin, by path, and in total.
func TestRunnerCountsTheAPIsLines(t *testing.T) {
	t.Parallel()
	w := insightsWorld(t)
	marker := apiTraffic(t, w, 2, 3, 1)
	start, end := lastHour()
	clock := newFakeClock()
	r := fakeRunner(w, clock)
	groups := []string{w.LogGroup}

	snap, err := alarms.TakeSnapshot(t.Context(), r, alarms.Queries(w.Profile), groups, start, end, nil)
	if err != nil {
		t.Fatalf("TakeSnapshot: %v", err)
	}
	want := map[string]float64{
		alarms.QueryJWTFailures:  5, // 3 tampered, 1 missing, 1 deliberate
		alarms.QuerySecondaryUse: 1,
		alarms.QueryUnauthorized: 5,
		alarms.QueryErrors:       0,
	}
	for name, n := range want {
		res, ok := snap.Queries[name]
		if !ok {
			t.Fatalf("no result for %s: %v", name, snap.Errors)
		}
		if got := res.Total(res.Field); got != n {
			t.Errorf("%s: total %g, want %g (rows %v)", name, got, n, res.Rows)
		}
		if res.Status != "Complete" || res.Polls != 2 {
			t.Errorf("%s: status %s after %d polls, want Complete after 2", name, res.Status, res.Polls)
		}
	}
	failures := snap.Queries[alarms.QueryJWTFailures]
	var sum float64
	for bin, n := range alarms.Bins(failures, "failures") {
		if !bin.Equal(bin.Truncate(5*time.Minute)) || bin.Before(start.Add(-5*time.Minute)) || bin.After(end) {
			t.Errorf("bin %s is not a 5-minute bin of the window", bin)
		}
		sum += n
	}
	if peak, at := failures.MaxPerBin("failures"); sum != 5 || peak < 3 || at.IsZero() {
		t.Errorf("bins sum to %g with peak %g at %s; want 5 with a peak of at least 3", sum, peak, at)
	}
	if s := failures.Statistics; s.RecordsMatched != 5 || s.RecordsScanned < 5+2+1 || s.LogGroupsScanned != 1 {
		t.Errorf("statistics %+v", s)
	}
	unauthorized := snap.Queries[alarms.QueryUnauthorized]
	if len(unauthorized.Rows) != 1 || unauthorized.Rows[0]["path"] != w.Profile.ProfilePath {
		t.Errorf("unauthorized rows %v, want one for %s", unauthorized.Rows, w.Profile.ProfilePath)
	}

	// Without the probe's deliberate rejection, four failures remain.
	res, err := r.Run(t.Context(), query(t, w.Profile, alarms.QueryJWTFailures, alarms.ExcludeDeliberate(marker)), groups, start, end)
	if err != nil || res.Total("failures") != 4 {
		t.Errorf("jwt-failures without deliberate rejections: %g, %v; want 4", res.Total("failures"), err)
	}
}

// While a query runs, the Runner polls with waits doubling up to PollMax,
// and stops polling when it completes.
func TestRunnerBacksOffWhilePolling(t *testing.T) {
	t.Parallel()
	w := insightsWorld(t)
	w.AWSFront.SetInsightsPollsUntilComplete(6)
	clock := newFakeClock()
	r := fakeRunner(w, clock)
	start, end := lastHour()
	res, err := r.Run(t.Context(), query(t, w.Profile, alarms.QueryJWTFailures), []string{w.LogGroup}, start, end)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := w.AWSFront.ClientCalls("logs:GetQueryResults"); got != 7 || res.Polls != 7 {
		t.Errorf("GetQueryResults called %d times (result says %d), want 7: 6 Running and 1 Complete", got, res.Polls)
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}
	if got := clock.Waits(); !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	if res.Duration != 12750*time.Millisecond {
		t.Errorf("duration %s, want the waits' sum 12.75s", res.Duration)
	}
}

// A query that never completes is stopped at the deadline, with an error
// that says so and wraps ErrQueryTimeout; the waits add up to the deadline.
func TestRunnerStopsAtTheDeadline(t *testing.T) {
	t.Parallel()
	w := insightsWorld(t)
	w.AWSFront.SetInsightsPollsUntilComplete(-1)
	clock := newFakeClock()
	r := fakeRunner(w, clock)
	start, end := lastHour()
	_, err := r.Run(t.Context(), query(t, w.Profile, alarms.QueryJWTFailures), []string{w.LogGroup}, start, end)
	if !errors.Is(err, alarms.ErrQueryTimeout) || !strings.Contains(err.Error(), "query jwt-failures did not finish within 2m") {
		t.Fatalf("Run: %v; want ErrQueryTimeout saying it did not finish within 2m", err)
	}
	if n := w.AWSFront.ClientCalls("logs:StopQuery"); n != 1 {
		t.Errorf("StopQuery called %d times, want 1", n)
	}
	var total time.Duration
	for _, d := range clock.Waits() {
		if d > alarms.DefaultPollMax {
			t.Errorf("a wait of %s exceeds PollMax", d)
		}
		total += d
	}
	polls := w.AWSFront.ClientCalls("logs:GetQueryResults")
	if total != 2*time.Minute || polls != len(clock.Waits())+1 {
		t.Errorf("waited %s over %d waits with %d polls; want exactly 2m and a last poll at the deadline", total, len(clock.Waits()), polls)
	}
}

// With MaxConcurrent 2, five queries started at once queue: never more
// than two run (the Front's limit of 2 would refuse a third), and all five
// complete.
func TestRunnerQueuesBeyondMaxConcurrent(t *testing.T) {
	t.Parallel()
	w := insightsWorld(t)
	w.AWSFront.SetInsightsPollsUntilComplete(3)
	w.AWSFront.SetInsightsConcurrencyLimit(2)
	r := &alarms.Runner{Logs: logsClient(w, 1), MaxConcurrent: 2, PollInitial: 10 * time.Millisecond, PollMax: 20 * time.Millisecond}
	start, end := lastHour()
	q := query(t, w.Profile, alarms.QueryJWTFailures)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = r.Run(t.Context(), q, []string{w.LogGroup}, start, end)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if peak := w.AWSFront.InsightsPeakRunning(); peak != 2 {
		t.Errorf("at most %d queries ran at once, want 2", peak)
	}
	if n := w.AWSFront.ClientCalls("logs:StartQuery"); n != 5 {
		t.Errorf("StartQuery called %d times, want 5 (none refused)", n)
	}
}

// StartQuery refused with LimitExceededException (the account's quota) is
// retried after a wait; when the quota stays reached, the Runner gives up
// at the deadline with ErrQueryTimeout.
func TestRunnerRetriesWhenTheAccountLimitIsReached(t *testing.T) {
	t.Parallel()
	t.Run("refused once", func(t *testing.T) {
		t.Parallel()
		w := insightsWorld(t)
		var mu sync.Mutex
		refused := false
		w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
			mu.Lock()
			defer mu.Unlock()
			if r.Header.Get("X-Amz-Target") != "Logs_20140328.StartQuery" || refused {
				return nil
			}
			refused = true
			return &testbed.Fault{Status: http.StatusBadRequest, ErrorType: "LimitExceededException", Message: "Account maximum query concurrency limit of [30] reached."}
		})
		clock := newFakeClock()
		r := &alarms.Runner{Logs: logsClient(w, 1), Now: clock.Now, Sleep: clock.Sleep}
		start, end := lastHour()
		res, err := r.Run(t.Context(), query(t, w.Profile, alarms.QueryJWTFailures), []string{w.LogGroup}, start, end)
		if err != nil || res.Status != "Complete" {
			t.Fatalf("Run: %s, %v; want Complete", res.Status, err)
		}
		if n := w.AWSFront.ClientCalls("logs:StartQuery"); n != 2 {
			t.Errorf("StartQuery called %d times, want 2", n)
		}
		if waits := clock.Waits(); len(waits) == 0 || waits[0] != alarms.DefaultPollInitial {
			t.Errorf("waits %v, want a first wait of %s before the retry", waits, alarms.DefaultPollInitial)
		}
	})
	t.Run("one layer retries, whatever the SDK's retryer", func(t *testing.T) {
		t.Parallel()
		w := insightsWorld(t)
		w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
			if r.Header.Get("X-Amz-Target") != "Logs_20140328.StartQuery" {
				return nil
			}
			return &testbed.Fault{Status: http.StatusBadRequest, ErrorType: "LimitExceededException", Message: "Account maximum query concurrency limit of [30] reached."}
		})
		clock := newFakeClock()
		// A client with the SDK's retries on (3 attempts), as the CLI's is.
		r := &alarms.Runner{Logs: logsClient(w, 3), Now: clock.Now, Sleep: clock.Sleep, Deadline: 10 * time.Second}
		start, end := lastHour()
		if _, err := r.Run(t.Context(), query(t, w.Profile, alarms.QueryJWTFailures), []string{w.LogGroup}, start, end); !errors.Is(err, alarms.ErrQueryTimeout) {
			t.Fatalf("Run: %v; want ErrQueryTimeout", err)
		}
		// Each try of the Runner's loop is one StartQuery: the SDK does not
		// retry inside it (which multiplied the calls, outside the deadline).
		if n, tries := w.AWSFront.ClientCalls("logs:StartQuery"), len(clock.Waits())+1; n != tries {
			t.Errorf("StartQuery called %d times for %d tries of the Runner", n, tries)
		}
	})
	t.Run("refused until the deadline", func(t *testing.T) {
		t.Parallel()
		w := insightsWorld(t)
		w.AWSFront.SetInsightsConcurrencyLimit(1)
		w.AWSFront.SetInsightsPollsUntilComplete(-1)
		logs := logsClient(w, 1)
		start, end := lastHour()
		if _, err := logs.StartQuery(t.Context(), &cloudwatchlogs.StartQueryInput{LogGroupNames: []string{w.LogGroup},
			QueryString: aws.String(`filter @message like /x/ | stats count(*)`), StartTime: aws.Int64(start.Unix()), EndTime: aws.Int64(end.Unix())}); err != nil {
			t.Fatalf("the query holding the account's only slot: %v", err)
		}
		clock := newFakeClock()
		r := &alarms.Runner{Logs: logs, Now: clock.Now, Sleep: clock.Sleep, Deadline: 30 * time.Second}
		_, err := r.Run(t.Context(), query(t, w.Profile, alarms.QueryJWTFailures), []string{w.LogGroup}, start, end)
		var limit *cwltypes.LimitExceededException
		if !errors.Is(err, alarms.ErrQueryTimeout) || !errors.As(err, &limit) || !strings.Contains(err.Error(), "could not start within 30s") {
			t.Fatalf("Run: %v; want ErrQueryTimeout and the LimitExceededException", err)
		}
	})
}

// A query waiting for a slot gives up when its context ends, without
// calling AWS.
func TestRunnerWaitsForASlotOnlyAsLongAsTheContext(t *testing.T) {
	t.Parallel()
	api := &blockingAPI{release: make(chan struct{}), started: make(chan struct{}, 1)}
	r := &alarms.Runner{Logs: api, MaxConcurrent: 1}
	q := alarms.Query{Name: "q", String: "filter @message like /x/ | stats count(*)"}
	now := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), q, []string{"g"}, now.Add(-time.Hour), now)
		done <- err
	}()
	<-api.started
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := r.Run(ctx, q, []string{"g"}, now.Add(-time.Hour), now)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for a free query slot") {
		t.Errorf("queued Run: %v; want the context's deadline while waiting for a slot", err)
	}
	close(api.release)
	if err := <-done; err != nil {
		t.Errorf("first Run: %v", err)
	}
	if n := api.starts.Load(); n != 1 {
		t.Errorf("StartQuery called %d times, want 1", n)
	}
}

// How a query ends decides the error: Failed and Cancelled wrap
// ErrQueryFailed, CloudWatch's own Timeout wraps ErrQueryTimeout, a
// malformed query is the SDK's error; bad arguments call nothing.
func TestRunnerErrors(t *testing.T) {
	t.Parallel()
	now := time.Now()
	q := alarms.Query{Name: "q", String: "filter @message like /x/ | stats count(*)"}
	for _, tt := range []struct {
		name   string
		status cwltypes.QueryStatus
		want   error
	}{
		{"failed", cwltypes.QueryStatusFailed, alarms.ErrQueryFailed},
		{"cancelled by someone else", cwltypes.QueryStatusCancelled, alarms.ErrQueryFailed},
		{"timed out in CloudWatch", cwltypes.QueryStatusTimeout, alarms.ErrQueryTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := &blockingAPI{status: tt.status}
			_, err := (&alarms.Runner{Logs: api}).Run(t.Context(), q, []string{"g"}, now.Add(-time.Hour), now)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), string(tt.status)) {
				t.Errorf("Run: %v; want %v naming status %s", err, tt.want, tt.status)
			}
		})
	}
	t.Run("malformed", func(t *testing.T) {
		w := insightsWorld(t)
		r := &alarms.Runner{Logs: logsClient(w, 1)}
		_, err := r.Run(t.Context(), alarms.Query{Name: "bad", String: "fields @message"}, []string{w.LogGroup}, now.Add(-time.Hour), now)
		var malformed *cwltypes.MalformedQueryException
		if !errors.As(err, &malformed) || errors.Is(err, alarms.ErrQueryTimeout) || !strings.Contains(err.Error(), "starting query bad") {
			t.Errorf("Run: %v; want the MalformedQueryException", err)
		}
	})
	for _, tt := range []struct {
		name       string
		groups     []string
		start, end time.Time
		want       string
	}{
		{"no log group", nil, now.Add(-time.Hour), now, "no log groups"},
		{"too many log groups", make([]string, 51), now.Add(-time.Hour), now, "at most 50"},
		{"end before start", []string{"g"}, now, now.Add(-time.Hour), "is not after its start"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := &blockingAPI{}
			_, err := (&alarms.Runner{Logs: api}).Run(t.Context(), q, tt.groups, tt.start, tt.end)
			if err == nil || !strings.Contains(err.Error(), tt.want) || api.starts.Load() != 0 {
				t.Errorf("Run: %v (StartQuery called %d times); want %q and no call", err, api.starts.Load(), tt.want)
			}
		})
	}
}
