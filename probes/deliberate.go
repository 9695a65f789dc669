package probes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valine/valine-check/internal/secret"
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
	mu     sync.Mutex
	spans  []Span
	marker string
}

// Marker is the User-Agent the run's deliberate requests carry:
// DeliberatePrefix and 16 hex digits from crypto/rand, drawn on first use.
// Where the API logs the User-Agent, the log check and the Logs Insights
// comparison leave out the lines carrying it. It is derived from nothing
// secret (an HMAC of the probe password would let anyone who reads the
// logs test password guesses offline). A nil log has no marker ("").
func (d *DeliberateLog) Marker() string {
	if d == nil {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.marker == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		d.marker = DeliberatePrefix + hex.EncodeToString(b)
	}
	return d.marker
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
func (t Target) meDeliberately(ctx context.Context, tok secret.Token, cfg Config) (Response, error) {
	start := time.Now()
	resp, err := t.API.MeDeliberately(ctx, tok, t.Deliberate.Marker())
	t.Deliberate.Record(start, time.Now())
	return resp, err
}

// refreshDeliberately sends a refresh token the probe expects to be
// refused, marked and recorded as the probe's own.
func (t Target) refreshDeliberately(ctx context.Context, s Session, cfg Config) (Session, error) {
	start := time.Now()
	next, err := t.API.RefreshDeliberately(ctx, s, t.Deliberate.Marker())
	t.Deliberate.Record(start, time.Now())
	return next, err
}

// withoutDeliberate drops from events (failure lines, in any order) the
// probe's own refusals and returns the lines left and how many were
// dropped. A line carrying marker (the probe's User-Agent, where the API
// logs it) is the probe's, from this run or an earlier one; each span
// (this run's deliberate requests) accounts for one line stamped while it
// was in flight: a marked one if there is one, else an unmarked one stamped
// within the span itself, else one within DeliberateSlack of it.
func withoutDeliberate(events []logEvent, marker string, spans []Span) (kept []logEvent, dropped int) {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b logEvent) int { return a.at.Compare(b.at) })
	marked := func(e logEvent) bool { return marker != "" && strings.Contains(e.msg, marker) }
	taken := make([]bool, len(sorted))
	claim := func(sp Span, slack time.Duration, want func(logEvent) bool) bool {
		from, to := sp.Start.Add(-slack), sp.End.Add(slack)
		for i, e := range sorted {
			switch {
			case taken[i] || e.at.Before(from) || !want(e):
				continue
			case e.at.After(to):
				return false
			}
			taken[i] = true
			return true
		}
		return false
	}
	unmarked := func(e logEvent) bool { return !marked(e) }
	for _, sp := range spans {
		_ = claim(sp, DeliberateSlack, marked) || claim(sp, 0, unmarked) || claim(sp, DeliberateSlack, unmarked)
	}
	for i, e := range sorted {
		if taken[i] || marked(e) {
			dropped++
			continue
		}
		kept = append(kept, e)
	}
	return kept, dropped
}
