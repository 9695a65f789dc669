package testbed_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/valine/valine-check/internal/testbed"
)

// putPagingEvents creates a log group holding matching events "match <i>" and
// others "other <i>", spread over two streams with three events to a
// millisecond, so that the order must break ties; it returns the group.
func putPagingEvents(t *testing.T, w *testbed.World, matching, others int) string {
	t.Helper()
	c := cloudwatchlogs.NewFromConfig(w.AWS)
	ctx := t.Context()
	group := uniqueName("/tb/filter-paging")
	if _, err := c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatalf("CreateLogGroup: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteLogGroup(t.Context(), &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(group)})
	})
	streams := []string{"2026/01/01/[$LATEST]a", "2026/01/01/[$LATEST]b"}
	batches := make([][]cwltypes.InputLogEvent, len(streams))
	base := time.Now().Add(-time.Minute).UnixMilli()
	for i := range matching + others {
		msg := fmt.Sprint("match ", i)
		if i >= matching {
			msg = fmt.Sprint("other ", i)
		}
		batches[i%2] = append(batches[i%2], cwltypes.InputLogEvent{Message: aws.String(msg), Timestamp: aws.Int64(base + int64(i/3))})
	}
	for i, s := range streams {
		if _, err := c.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(s)}); err != nil {
			t.Fatalf("CreateLogStream: %v", err)
		}
		if _, err := c.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(s), LogEvents: batches[i]}); err != nil {
			t.Fatalf("PutLogEvents: %v", err)
		}
	}
	return group
}

// filterAll follows nextToken to the end and returns the messages and the
// size of each page.
func filterAll(t *testing.T, w *testbed.World, in *cloudwatchlogs.FilterLogEventsInput) (msgs []string, pages []int) {
	t.Helper()
	p := cloudwatchlogs.NewFilterLogEventsPaginator(cloudwatchlogs.NewFromConfig(w.AWS), in)
	last := int64(0)
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("FilterLogEvents page %d: %v", len(pages)+1, err)
		}
		pages = append(pages, len(out.Events))
		for _, e := range out.Events {
			if ts := aws.ToInt64(e.Timestamp); ts < last {
				t.Errorf("event %q at %d after one at %d: not in time order", aws.ToString(e.Message), ts, last)
			} else {
				last = ts
			}
			msgs = append(msgs, aws.ToString(e.Message))
		}
	}
	return msgs, pages
}

func TestFilterLogEventsPagesEveryMatchingEvent(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	const matching = 120
	group := putPagingEvents(t, w, matching, 30)
	tests := []struct {
		name  string
		limit *int32
		pages []int
	}{
		{"default page size", nil, []int{50, 50, 20}},
		{"limit 7", aws.Int32(7), nil},
		{"limit 10000", aws.Int32(10000), []int{matching}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msgs, pages := filterAll(t, w, &cloudwatchlogs.FilterLogEventsInput{
				LogGroupName: aws.String(group), FilterPattern: aws.String("match"), Limit: tt.limit,
			})
			seen := map[string]bool{}
			for _, m := range msgs {
				if seen[m] {
					t.Errorf("%q listed twice", m)
				}
				seen[m] = true
			}
			for i := range matching {
				if m := fmt.Sprint("match ", i); !seen[m] {
					t.Errorf("%q never listed", m)
				}
			}
			if len(msgs) != matching {
				t.Errorf("%d events listed, want %d", len(msgs), matching)
			}
			for i, n := range pages {
				if tt.limit != nil && n > int(*tt.limit) {
					t.Errorf("page %d holds %d events, over the limit %d", i+1, n, *tt.limit)
				}
			}
			if tt.pages != nil && fmt.Sprint(pages) != fmt.Sprint(tt.pages) {
				t.Errorf("page sizes %v, want %v", pages, tt.pages)
			}
		})
	}
}

// TestFilterLogEventsAtMostAPageIsOneAnswer: 50 matching events or fewer
// are one answer with no nextToken, as kumo gives them.
func TestFilterLogEventsAtMostAPageIsOneAnswer(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	group := putPagingEvents(t, w, 50, 10)
	out, err := cloudwatchlogs.NewFromConfig(w.AWS).FilterLogEvents(t.Context(), &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(group), FilterPattern: aws.String("match"),
	})
	if err != nil {
		t.Fatalf("FilterLogEvents: %v", err)
	}
	if len(out.Events) != 50 || out.NextToken != nil {
		t.Errorf("50 matching events: %d in the answer, nextToken %v; want 50 and none", len(out.Events), out.NextToken)
	}
	if len(out.SearchedLogStreams) != 2 {
		t.Errorf("searchedLogStreams %d, want kumo's 2", len(out.SearchedLogStreams))
	}
}

func TestFilterLogEventsRefusesAForeignToken(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	_, err := cloudwatchlogs.NewFromConfig(w.AWS).FilterLogEvents(t.Context(), &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(w.LogGroup), NextToken: aws.String("not-a-token"),
	})
	var invalid *cwltypes.InvalidParameterException
	if !errors.As(err, &invalid) {
		t.Errorf("a foreign nextToken: got %v, want *types.InvalidParameterException", err)
	}
}

// TestFilterLogEventsListsLaterEventsOnce: an event written while a listing
// is under way, after the events already served, is listed once.
func TestFilterLogEventsListsLaterEventsOnce(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	group := putPagingEvents(t, w, 60, 0)
	c := cloudwatchlogs.NewFromConfig(w.AWS)
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), FilterPattern: aws.String("match")}
	first, err := c.FilterLogEvents(t.Context(), in)
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, nextToken %v; want a token", err, first.NextToken)
	}
	if _, err := c.PutLogEvents(t.Context(), &cloudwatchlogs.PutLogEventsInput{
		LogGroupName: aws.String(group), LogStreamName: aws.String("2026/01/01/[$LATEST]a"),
		LogEvents: []cwltypes.InputLogEvent{{Message: aws.String("match late"), Timestamp: aws.Int64(time.Now().UnixMilli())}},
	}); err != nil {
		t.Fatalf("PutLogEvents: %v", err)
	}
	in.NextToken = first.NextToken
	msgs, _ := filterAll(t, w, in)
	if got := len(first.Events) + len(msgs); got != 61 {
		t.Errorf("%d events listed, want 61", got)
	}
	if len(msgs) == 0 || msgs[len(msgs)-1] != "match late" {
		t.Errorf("the late event is not listed last: %v", msgs)
	}
}
