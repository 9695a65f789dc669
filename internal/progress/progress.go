// Package progress lets library code say that it is waiting, without
// printing: a caller (the command line) passes a Func, and a wait that
// lasts longer than a second is told to it once, with what it waits for and
// until when at the latest. Waits shorter than that are not worth a line,
// and a poll inside a wait is not a new wait. It imports nothing of the
// project.
package progress

import (
	"context"
	"sync"
	"time"
)

// Func is told of a wait that has lasted Threshold: what it waits for ("CloudWatch Logs
// ingestion") and when it gives up at the latest. It is called at most
// once per wait, from a goroutine of its own, so it must be safe for
// concurrent use. A nil Func tells no one.
type Func func(what string, until time.Time)

// Threshold is how long a wait lasts before it is told.
const Threshold = time.Second

type insideKey struct{}

// Start begins a wait for what, which gives up at until, and returns the
// context to wait with and the function that ends the wait (call it once
// the wait is over, whatever its outcome). f is told Threshold after Start
// unless the wait has ended by then; once stop has returned it is not told
// at all. A wait started with the returned context is inside this one and
// is not told: its line would repeat this one's (the queries of a snapshot,
// the polls of a query).
func (f Func) Start(ctx context.Context, what string, until time.Time) (context.Context, func()) {
	return f.start(ctx, what, until, Threshold)
}

func (f Func) start(ctx context.Context, what string, until time.Time, after time.Duration) (context.Context, func()) {
	if f == nil || ctx.Value(insideKey{}) != nil {
		return ctx, func() {}
	}
	var mu sync.Mutex
	stopped := false
	timer := time.AfterFunc(after, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			f(what, until)
		}
	})
	stop := func() {
		timer.Stop()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
	return context.WithValue(ctx, insideKey{}, true), stop
}
