package testbed_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/testbed"
)

// insightsClient is a Logs client against the World that does not retry,
// so a test sees each answer the Front gives.
func insightsClient(w *testbed.World) *cloudwatchlogs.Client {
	return cloudwatchlogs.NewFromConfig(w.AWS, func(o *cloudwatchlogs.Options) { o.RetryMaxAttempts = 1 })
}

// putEvents writes messages at the given times into a new stream of the
// World's log group.
func putEvents(t *testing.T, w *testbed.World, events map[time.Time]string) {
	t.Helper()
	logs := cloudwatchlogs.NewFromConfig(w.AWS)
	stream := uniqueName("insights")
	if _, err := logs.CreateLogStream(t.Context(), &cloudwatchlogs.CreateLogStreamInput{
		LogGroupName: aws.String(w.LogGroup), LogStreamName: aws.String(stream)}); err != nil {
		t.Fatalf("CreateLogStream: %v", err)
	}
	var in []cwltypes.InputLogEvent
	for at, msg := range events {
		in = append(in, cwltypes.InputLogEvent{Timestamp: aws.Int64(at.UnixMilli()), Message: aws.String(msg)})
	}
	// PutLogEvents wants the batch in time order.
	for i := range in {
		for j := i + 1; j < len(in); j++ {
			if *in[j].Timestamp < *in[i].Timestamp {
				in[i], in[j] = in[j], in[i]
			}
		}
	}
	if _, err := logs.PutLogEvents(t.Context(), &cloudwatchlogs.PutLogEventsInput{
		LogGroupName: aws.String(w.LogGroup), LogStreamName: aws.String(stream), LogEvents: in}); err != nil {
		t.Fatalf("PutLogEvents: %v", err)
	}
}

// runQuery starts a query and polls it (without waiting) until it ends.
func runQuery(t *testing.T, logs *cloudwatchlogs.Client, query string, groups []string, start, end time.Time) *cloudwatchlogs.GetQueryResultsOutput {
	t.Helper()
	started, err := logs.StartQuery(t.Context(), &cloudwatchlogs.StartQueryInput{
		LogGroupNames: groups, QueryString: aws.String(query), StartTime: aws.Int64(start.Unix()), EndTime: aws.Int64(end.Unix())})
	if err != nil {
		t.Fatalf("StartQuery %q: %v", query, err)
	}
	for range 10 {
		out, err := logs.GetQueryResults(t.Context(), &cloudwatchlogs.GetQueryResultsInput{QueryId: started.QueryId})
		if err != nil {
			t.Fatalf("GetQueryResults: %v", err)
		}
		if out.Status != cwltypes.QueryStatusRunning {
			return out
		}
	}
	t.Fatalf("query %q still running after 10 polls", query)
	return nil
}

// rows flattens results to "field=value field=value" lines.
func rows(out *cloudwatchlogs.GetQueryResultsOutput) []string {
	var lines []string
	for _, row := range out.Results {
		var parts []string
		for _, f := range row {
			parts = append(parts, aws.ToString(f.Field)+"="+aws.ToString(f.Value))
		}
		lines = append(lines, strings.Join(parts, " "))
	}
	return lines
}

// The double computes the project's query shapes from the events stored in
// kumo: counts per 5-minute bin formatted as CloudWatch formats them, counts
// by a parsed field, a plain count, within the window (both ends whole
// seconds, inclusive) and with CloudWatch's statistics.
func TestInsightsComputesTheProjectsShapes(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	base := time.Now().Add(-3 * time.Hour).UTC().Truncate(5 * time.Minute)
	failed := func(path string) string {
		return `JWT verification failed reason="signature is invalid" path=` + path + ` ua=Go-http-client/1.1`
	}
	putEvents(t, w, map[time.Time]string{
		base.Add(-time.Second):                          failed("/profile/me"), // before the window
		base.Add(time.Minute):                           failed("/profile/me"),
		base.Add(4 * time.Minute):                       failed("/auth/refresh"),
		base.Add(4*time.Minute + 30*time.Second):        "JWT verification ok secret=secondary sub=usr_1 path=/profile/me",
		base.Add(6 * time.Minute):                       failed("/profile/me"),
		base.Add(12 * time.Minute):                      "JWT verification ok secret=primary sub=usr_2 path=/profile/me",
		base.Add(15*time.Minute + 999*time.Millisecond): "START RequestId: 1 Version: $LATEST",
		base.Add(16 * time.Minute):                      failed("/profile/me"), // after the window
	})
	logs := insightsClient(w)
	groups := []string{w.LogGroup}
	start, end := base, base.Add(15*time.Minute)
	queries := alarms.Queries(w.Profile)
	find := func(name string) string {
		q, ok := alarms.FindQuery(queries, name)
		if !ok {
			t.Fatalf("no query %s", name)
		}
		return q.String
	}
	bin := func(d time.Duration) string { return base.Add(d).Format("2006-01-02 15:04:05.000") }

	tests := []struct {
		name    string
		query   string
		want    []string
		matched float64
	}{
		{name: "failures by bin", query: find(alarms.QueryJWTFailures),
			want: []string{"bin(5m)=" + bin(0) + " failures=2", "bin(5m)=" + bin(5*time.Minute) + " failures=1"}, matched: 3},
		{name: "secondary use by bin", query: find(alarms.QuerySecondaryUse),
			want: []string{"bin(5m)=" + bin(0) + " secondaryUses=1"}, matched: 1},
		{name: "unauthorized by path", query: find(alarms.QueryUnauthorized),
			want: []string{"path=/profile/me unauthorized=2", "path=/auth/refresh unauthorized=1"}, matched: 3},
		{name: "errors, none", query: find(alarms.QueryErrors), want: nil, matched: 0},
		{name: "plain count", query: `filter @message like /JWT verification/ | stats count(*) as lines`,
			want: []string{"lines=5"}, matched: 5},
		{name: "count without a name, by 1-minute bin", query: `filter @message like /ok secret=/ and @message not like /secondary/ | stats count(*) by bin(1m)`,
			want: []string{"bin(1m)=" + bin(12*time.Minute) + " count(*)=1"}, matched: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := runQuery(t, logs, tt.query, groups, start, end)
			if out.Status != cwltypes.QueryStatusComplete {
				t.Fatalf("status %s", out.Status)
			}
			if got := rows(out); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			s := out.Statistics
			if s == nil || s.RecordsMatched != tt.matched || s.RecordsScanned != 6 || s.LogGroupsScanned != 1 || s.BytesScanned == 0 {
				t.Errorf("statistics %+v, want %g matched of 6 scanned in 1 group", s, tt.matched)
			}
		})
	}
}

// A query is Running for the configured number of polls, then Complete;
// StopQuery cancels a running query and refuses an ended one; an unknown
// query id is ResourceNotFoundException.
func TestInsightsStatusesAndStop(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	logs := insightsClient(w)
	ctx := t.Context()
	start := func() *string {
		out, err := logs.StartQuery(ctx, &cloudwatchlogs.StartQueryInput{LogGroupNames: []string{w.LogGroup},
			QueryString: aws.String(`filter @message like /x/ | stats count(*)`),
			StartTime:   aws.Int64(time.Now().Add(-time.Hour).Unix()), EndTime: aws.Int64(time.Now().Unix())})
		if err != nil {
			t.Fatalf("StartQuery: %v", err)
		}
		return out.QueryId
	}
	poll := func(id *string) cwltypes.QueryStatus {
		out, err := logs.GetQueryResults(ctx, &cloudwatchlogs.GetQueryResultsInput{QueryId: id})
		if err != nil {
			t.Fatalf("GetQueryResults: %v", err)
		}
		return out.Status
	}

	w.AWSFront.SetInsightsPollsUntilComplete(3)
	id := start()
	var got []string
	for range 5 {
		got = append(got, string(poll(id)))
	}
	if strings.Join(got, ",") != "Running,Running,Running,Complete,Complete" {
		t.Errorf("statuses %s, want Running three times, then Complete", strings.Join(got, ","))
	}
	var invalid *cwltypes.InvalidParameterException
	if _, err := logs.StopQuery(ctx, &cloudwatchlogs.StopQueryInput{QueryId: id}); !errors.As(err, &invalid) {
		t.Errorf("StopQuery on a complete query: %v, want InvalidParameterException", err)
	}

	w.AWSFront.SetInsightsPollsUntilComplete(-1)
	id = start()
	for range 4 {
		if s := poll(id); s != cwltypes.QueryStatusRunning {
			t.Fatalf("status %s, want Running forever", s)
		}
	}
	stopped, err := logs.StopQuery(ctx, &cloudwatchlogs.StopQueryInput{QueryId: id})
	if err != nil || !stopped.Success {
		t.Fatalf("StopQuery: %+v, %v", stopped, err)
	}
	if s := poll(id); s != cwltypes.QueryStatusCancelled {
		t.Errorf("status after StopQuery %s, want Cancelled", s)
	}

	var notFound *cwltypes.ResourceNotFoundException
	if _, err := logs.GetQueryResults(ctx, &cloudwatchlogs.GetQueryResultsInput{QueryId: aws.String("nope")}); !errors.As(err, &notFound) {
		t.Errorf("GetQueryResults of an unknown id: %v, want ResourceNotFoundException", err)
	}
}

// Any shape the project does not use is refused with a message naming the
// supported shapes; an unknown log group is ResourceNotFoundException.
func TestInsightsRefusesWhatItCannotCompute(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	logs := insightsClient(w)
	for _, tt := range []struct{ name, query string }{
		{"fields", `fields @timestamp, @message | sort @timestamp desc | limit 20`},
		{"filter without stats", `filter @message like /JWT/`},
		{"another aggregate", `filter @message like /JWT/ | stats sum(duration)`},
		{"stats alone", `stats count(*) by bin(5m)`},
		{"by a field nothing parses", `filter @message like /JWT/ | stats count(*) by path`},
		{"a field other than @message", `filter @logStream like /x/ | stats count(*)`},
		{"an invalid regex", `filter @message like /(/ | stats count(*)`},
		{"a regex left open", `filter @message like /JWT | stats count(*)`},
		{"a sort after stats", `filter @message like /JWT/ | stats count(*) as n by bin(5m) | sort n desc`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := logs.StartQuery(t.Context(), &cloudwatchlogs.StartQueryInput{LogGroupNames: []string{w.LogGroup},
				QueryString: aws.String(tt.query), StartTime: aws.Int64(0), EndTime: aws.Int64(time.Now().Unix())})
			var malformed *cwltypes.MalformedQueryException
			if !errors.As(err, &malformed) || !strings.Contains(err.Error(), "filter @message [not] like /RE/") {
				t.Errorf("StartQuery %q: %v, want MalformedQueryException naming the supported shapes", tt.query, err)
			}
		})
	}
	_, err := logs.StartQuery(t.Context(), &cloudwatchlogs.StartQueryInput{LogGroupNames: []string{"/aws/lambda/" + uniqueName("absent")},
		QueryString: aws.String(`filter @message like /x/ | stats count(*)`), StartTime: aws.Int64(0), EndTime: aws.Int64(time.Now().Unix())})
	var notFound *cwltypes.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("StartQuery on an unknown log group: %v, want ResourceNotFoundException", err)
	}
	if n := w.AWSFront.InsightsPeakRunning(); n != 0 {
		t.Errorf("refused queries count as running: peak %d", n)
	}
}

// With a concurrency limit set, StartQuery beyond it is
// LimitExceededException until a running query ends.
func TestInsightsConcurrencyLimit(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	logs := insightsClient(w)
	w.AWSFront.SetInsightsConcurrencyLimit(1)
	w.AWSFront.SetInsightsPollsUntilComplete(-1)
	in := &cloudwatchlogs.StartQueryInput{LogGroupNames: []string{w.LogGroup},
		QueryString: aws.String(`filter @message like /x/ | stats count(*)`), StartTime: aws.Int64(0), EndTime: aws.Int64(time.Now().Unix())}
	first, err := logs.StartQuery(t.Context(), in)
	if err != nil {
		t.Fatalf("first StartQuery: %v", err)
	}
	var limit *cwltypes.LimitExceededException
	if _, err := logs.StartQuery(t.Context(), in); !errors.As(err, &limit) {
		t.Fatalf("second StartQuery: %v, want LimitExceededException", err)
	}
	if _, err := logs.StopQuery(t.Context(), &cloudwatchlogs.StopQueryInput{QueryId: first.QueryId}); err != nil {
		t.Fatalf("StopQuery: %v", err)
	}
	if _, err := logs.StartQuery(t.Context(), in); err != nil {
		t.Errorf("StartQuery after the first stopped: %v", err)
	}
	if n := w.AWSFront.InsightsPeakRunning(); n != 1 {
		t.Errorf("peak running %d, want 1", n)
	}
}
