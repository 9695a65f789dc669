package rotate_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

// noLinesYet is a Logs reader on which nothing is ever ingested.
type noLinesYet struct{}

func (noLinesYet) FilterLogEvents(context.Context, *cloudwatchlogs.FilterLogEventsInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error) {
	return &cloudwatchlogs.FilterLogEventsOutput{}, nil
}

// The engine's long waits are told to Wait once each: the fleet's update
// (one line for three functions updating together, each for 1.5 s) and the
// ingestion wait before the comparison (1.5 s of nothing showing), with the
// bound of each.
func TestEngineTellsItsLongWaits(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{updateDuration: 1500 * time.Millisecond})
	var mu sync.Mutex
	told := map[string]time.Time{}
	count := map[string]int{}
	began := time.Now()
	e := r.engine(r.watchFor(), func(e *rotate.Engine) {
		e.Watch.Logs = noLinesYet{}
		e.Watch.IngestionWait = 1500 * time.Millisecond
		e.Wait = func(what string, until time.Time) {
			mu.Lock()
			defer mu.Unlock()
			told[what] = until
			count[what]++
		}
	})
	if _, err := r.rotate(t, e, journal.ModeMaintenance, rotate.RotateOptions{}); err != nil {
		t.Fatalf("maintenance rotation: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	update, ingestion := "Lambda to finish updating 3 function(s)", "CloudWatch Logs ingestion"
	if count[update] != 1 || count[ingestion] != 1 || len(count) != 2 {
		t.Fatalf("told %v, want %q and %q once each", count, update, ingestion)
	}
	if d := told[update].Sub(began); d < 7*time.Minute || d > 8*time.Minute {
		t.Errorf("the update's wait is bounded %v after the start, want its read-modify-write rounds and waiter (2m + 5m)", d)
	}
	if d := told[ingestion].Sub(began); d < 1500*time.Millisecond || d > time.Minute {
		t.Errorf("the ingestion wait is bounded %v after the start, want --ingestion-wait from when it began", d)
	}
}
