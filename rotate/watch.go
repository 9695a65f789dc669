package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/probes"
)

// ErrFindings is returned when a change verified but the logs or alarms
// compare badly before and after it: nothing is rolled back (the probes
// passed), but the operator must look.
var ErrFindings = errors.New("the logs and alarms compare badly before and after the change")

// Watch takes the snapshots around a change: the named Logs Insights
// queries (and the alarms' states) over a window before it and over the
// time since it, compared with thresholds.
type Watch struct {
	Runner *alarms.Runner
	// Profile gives the queries (alarms.Queries), built for each operation
	// so they leave out that operation's deliberate refusals.
	Profile profile.Profile
	// Groups are the log groups queried; nil means the fleet's
	// (/aws/lambda/<function> of each).
	Groups []string
	// Alarms lists the alarms' states; nil leaves them out.
	Alarms alarms.AlarmLister
	// Logs is used to wait for log ingestion; nil skips the wait.
	Logs alarms.LogEventsFilterer
	// Before is the window before the change (default 1h).
	Before time.Duration
	// IngestionWait bounds the wait for the last lines to be queryable
	// (default alarms.IngestionDelay).
	IngestionWait time.Duration
	// Thresholds for Compare; zero means alarms.DefaultCompareThresholds.
	Thresholds *alarms.CompareThresholds
}

// watched is the before-snapshot of one operation.
type watched struct {
	before  alarms.Snapshot
	ok      bool
	changed time.Time
	queries []alarms.Query
}

// snapshotBefore snapshots the window before a change. A failure is not
// fatal (the comparison says what it could not check).
func (e *Engine) snapshotBefore(ctx context.Context) watched {
	w := e.Watch
	if w == nil {
		return watched{}
	}
	// Every probe run's refusals are left out where the API logs the
	// User-Agent (this operation's, the scheduled probe's): they are not
	// users' failures. Where it logs none, compareAfter takes this
	// operation's own off the count.
	queries := alarms.Queries(w.Profile, alarms.ExcludeDeliberate(probes.DeliberatePrefix))
	before := w.Before
	if before <= 0 {
		before = time.Hour
	}
	// Logs Insights windows are whole seconds. The change starts on the
	// next whole second, so that no line of what came before (the last
	// operation's verification, say) falls in the after window: a wait of
	// under a second, once per operation.
	now := e.now()
	changed := now.Truncate(time.Second).Add(time.Second)
	snap, err := alarms.TakeSnapshot(ctx, w.Runner, queries, e.watchGroups(), changed.Add(-before), now, w.Alarms)
	if err != nil {
		e.say("snapshot before the change incomplete: %v", err)
	}
	if wait := min(changed.Sub(e.now()), time.Second); wait > 0 {
		if err := sleep(ctx, wait); err != nil {
			return watched{}
		}
	}
	return watched{before: snap, ok: true, changed: changed, queries: queries}
}

// compareAfter waits for ingestion, snapshots the time since the change,
// compares, and records the verdict in the outcome and the audit. strict
// makes any secondary-secret use a finding (after a finalize, a
// maintenance or an emergency rotation). The probe's deliberate refusals
// since the change (g's) are left out where the API logs no User-Agent.
func (e *Engine) compareAfter(ctx context.Context, out *Outcome, w watched, strict bool, g *gate) error {
	if e.Watch == nil || !w.ok {
		return nil
	}
	verifyStart := w.changed
	if e.Watch.Logs != nil {
		bound := e.Watch.IngestionWait
		if bound <= 0 {
			bound = alarms.IngestionDelay
		}
		wctx, stopWaiting := e.Wait.Start(ctx, "CloudWatch Logs ingestion", e.now().Add(bound))
		waited, seen, err := alarms.WaitForIngestion(wctx, e.Watch.Logs, e.watchGroups(), verifyStart, bound)
		stopWaiting()
		switch {
		case err != nil:
			e.say("waiting for log ingestion: %v", err)
		case !seen:
			e.say("no log line after the change became visible within %s; comparing what is there", waited.Round(time.Second))
		}
	}
	after, err := alarms.TakeSnapshot(ctx, e.Watch.Runner, w.queries, e.watchGroups(), w.changed, e.now(), e.Watch.Alarms)
	if err != nil {
		e.say("snapshot after the change incomplete: %v", err)
	}
	th := alarms.DefaultCompareThresholds()
	if e.Watch.Thresholds != nil {
		th = *e.Watch.Thresholds
	}
	th.SecondaryUseIsFinding = strict
	for _, sp := range g.deliberate.Spans() {
		if !sp.Start.Before(w.changed) {
			th.ProbeRefusalsAfter++ // the probe's own refusals since the change
		}
	}
	verdict := alarms.Compare(w.before, after, th)
	out.Comparison = &verdict
	outcome := "ok"
	if !verdict.OK {
		outcome = "findings"
	}
	e.audit(out.Journal, "compare", outcome, verdict.Summary(), nil)
	e.say("compare: %s", verdict.Summary())
	if !verdict.OK {
		return fmt.Errorf("%w: %s", ErrFindings, verdict.Summary())
	}
	return nil
}

// watchGroups are the log groups the Watch queries.
func (e *Engine) watchGroups() []string {
	if e.Watch.Groups != nil {
		return e.Watch.Groups
	}
	return alarms.LogGroups(e.Fleet)
}
