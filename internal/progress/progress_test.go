package progress

import (
	"context"
	"sync"
	"testing"
	"time"
)

// recorder is a Func that keeps what it was told.
type recorder struct {
	mu    sync.Mutex
	lines []string
	until []time.Time
}

func (r *recorder) tell(what string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, what)
	r.until = append(r.until, until)
}

func (r *recorder) told() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

const after = 20 * time.Millisecond

func TestStart(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 11, 29, 3, 14, 5, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		lasts time.Duration
		want  int
	}{
		{"a short wait is not told", 0, 0},
		{"a long wait is told once", 10 * after, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r recorder
			_, stop := Func(r.tell).start(t.Context(), "CloudWatch Logs ingestion", until, after)
			time.Sleep(tc.lasts)
			stop()
			time.Sleep(3 * after) // a timer that fired late would show here
			got := r.told()
			if len(got) != tc.want {
				t.Fatalf("told %d times (%q), want %d", len(got), got, tc.want)
			}
			if tc.want == 1 && (got[0] != "CloudWatch Logs ingestion" || !r.until[0].Equal(until)) {
				t.Errorf("told %q until %v", got[0], r.until[0])
			}
		})
	}
}

func TestNestedWaitIsNotTold(t *testing.T) {
	t.Parallel()
	var r recorder
	f := Func(r.tell)
	ctx, stop := f.start(t.Context(), "3 Logs Insights queries", time.Now().Add(time.Minute), after)
	_, stopInner := f.start(ctx, "Logs Insights query errors", time.Now().Add(time.Minute), after)
	time.Sleep(5 * after)
	stopInner()
	stop()
	if got := r.told(); len(got) != 1 || got[0] != "3 Logs Insights queries" {
		t.Errorf("told %q, want only the outer wait", got)
	}
}

func TestNilFuncTellsNoOne(t *testing.T) {
	t.Parallel()
	var f Func
	ctx, stop := f.Start(context.Background(), "anything", time.Now())
	stop()
	if ctx.Value(insideKey{}) != nil {
		t.Error("a nil Func marked the context as inside a told wait")
	}
}
