package probes

import (
	"context"
	"slices"
	"sync"
	"time"
)

// DeliberateLog records when a run sent the requests it expects the API to
// refuse (old tokens in strict mode, the security battery, the proof that a
// secondary is honoured). A backend logs each refusal as a failure, and
// many log no User-Agent (the real Valine backend logs none), so the log
// check tells the probe's own refusals from real ones by time: each
// deliberate request accounts for at most one failure line stamped while it
// was in flight (give or take DeliberateSlack for clock skew). It is safe
// for concurrent use; the zero value is ready.
type DeliberateLog struct {
	mu    sync.Mutex
	spans []Span
}

// Span is when one deliberate request was in flight.
type Span struct{ Start, End time.Time }

// DeliberateSlack widens each span on both sides: log timestamps come from
// the backend's clock, the span from ours.
const DeliberateSlack = time.Second

// Record notes one deliberate request sent at start and answered at end.
func (d *DeliberateLog) Record(start, end time.Time) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.spans = append(d.spans, Span{Start: start, End: end})
}

// Spans returns the recorded spans, earliest first.
func (d *DeliberateLog) Spans() []Span {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	out := slices.Clone(d.spans)
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out
}

// Len is how many deliberate requests were recorded.
func (d *DeliberateLog) Len() int {
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.spans)
}

// meDeliberately sends a token the probe expects to be refused to the
// profile endpoint, marked (User-Agent) and recorded (time) as the probe's own.
func (t Target) meDeliberately(ctx context.Context, tok Token, cfg Config) (Response, error) {
	start := time.Now()
	resp, err := t.API.MeDeliberately(ctx, tok, DeliberateMarker(cfg.ProbePassword))
	t.Deliberate.Record(start, time.Now())
	return resp, err
}

// refreshDeliberately sends a refresh token the probe expects to be
// refused, marked and recorded as the probe's own.
func (t Target) refreshDeliberately(ctx context.Context, s Session, cfg Config) (Session, error) {
	start := time.Now()
	next, err := t.API.RefreshDeliberately(ctx, s, DeliberateMarker(cfg.ProbePassword))
	t.Deliberate.Record(start, time.Now())
	return next, err
}

// absorbDeliberate drops from events (failure lines, in any order) those
// the spans account for: for each span, earliest first, the earliest line
// not yet taken whose time falls within it (widened by DeliberateSlack). It
// returns the lines left and how many were dropped.
func absorbDeliberate(events []logEvent, spans []Span) (kept []logEvent, absorbed int) {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b logEvent) int { return a.at.Compare(b.at) })
	taken := make([]bool, len(sorted))
	for _, sp := range spans {
		from, to := sp.Start.Add(-DeliberateSlack), sp.End.Add(DeliberateSlack)
		for i, e := range sorted {
			if taken[i] || e.at.Before(from) {
				continue
			}
			if e.at.After(to) {
				break
			}
			taken[i] = true
			absorbed++
			break
		}
	}
	for i, e := range sorted {
		if !taken[i] {
			kept = append(kept, e)
		}
	}
	return kept, absorbed
}
