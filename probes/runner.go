package probes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/valine/valine-check/internal/progress"
)

// Runner owns what is common to all checks: ordering (a check starts once
// the checks it needs have passed), bounded concurrency, deadlines, and
// bounded retries: for checks that wait for propagation, and for any check
// while the API answers 5xx or 429.
type Runner struct {
	// CheckTimeout bounds one attempt of one check, and an ordinary check's
	// retries while the API cannot answer (default 15 s).
	CheckTimeout time.Duration
	// Convergence bounds how long a propagation-dependent check keeps retrying (default 60 s).
	Convergence time.Duration
	// RetryInterval is the first wait between attempts (default 250 ms); it
	// doubles up to MaxRetryInterval (default 2 s), so convergence is seen
	// within about that much of when it happens.
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// Concurrency bounds the checks running at once (default: all of them).
	Concurrency int
	// Logger receives debug lines; nil discards them.
	Logger *slog.Logger
	// Progress is told of a check that has been retrying for a second
	// (waiting for propagation, or for the API to answer again), once per
	// check; nil tells no one.
	Progress progress.Func
}

func (r Runner) withDefaults(n int) Runner {
	if r.CheckTimeout <= 0 {
		r.CheckTimeout = 15 * time.Second
	}
	if r.Convergence <= 0 {
		r.Convergence = 60 * time.Second
	}
	if r.RetryInterval <= 0 {
		r.RetryInterval = 250 * time.Millisecond
	}
	if r.MaxRetryInterval < r.RetryInterval {
		r.MaxRetryInterval = max(2*time.Second, r.RetryInterval)
	}
	if r.Concurrency <= 0 {
		r.Concurrency = max(n, 1)
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	return r
}

// Run runs the checks against the target and returns the report. It never
// fails as a whole: every problem is some check's Result.
func (r Runner) Run(ctx context.Context, checks []Check, t Target, cfg Config) Report {
	r = r.withDefaults(len(checks))
	start := time.Now()
	if cfg.LogsUntil.IsZero() && !cfg.LogsThroughRun {
		// The run's own deliberate rejections come after this instant.
		cfg.LogsUntil = cfg.now()
	}
	if t.Deliberate == nil {
		t.Deliberate = &DeliberateLog{}
	}
	t.API = t.API.withSecretsOf(cfg) // no answer quoted in a result carries a secret of the run
	index := make(map[string]int, len(checks))
	done := make([]chan struct{}, len(checks))
	for i, c := range checks {
		index[c.Name] = i
		done[i] = make(chan struct{})
	}
	results := make([]Result, len(checks))
	sem := make(chan struct{}, r.Concurrency)
	for i, c := range checks {
		go func() {
			defer close(done[i])
			tt := t
			for _, need := range c.Needs {
				j, ok := index[need]
				if !ok {
					results[i] = errored(fmt.Sprintf("needs %s, which is not in this run", need), nil)
					results[i].Name = c.Name
					return
				}
				<-done[j]
				if results[j].Outcome != Pass {
					results[i] = skipped(fmt.Sprintf("needs %s, which did not pass (%s)", need, results[j].Outcome))
					results[i].Name, results[i].BlockedBy = c.Name, need
					return
				}
				if results[j].session != nil {
					tt.Session = results[j].session
				}
			}
			// Orderings last, so a fresher session (from a check that waited
			// for propagation) replaces login's.
			for _, after := range c.After {
				j, ok := index[after]
				if !ok {
					continue // ordering against a check not in this run is moot
				}
				<-done[j]
				if results[j].Outcome == Pass && results[j].session != nil {
					tt.Session = results[j].session
				}
			}
			ccfg := cfg
			if cfg.LogsThroughRun && c.HasLabel(LabelLogs) {
				// The window ends when the log check starts, after every
				// other check: it sees the whole run, whose deliberate
				// rejections the DeliberateLog accounts for.
				for j, other := range checks {
					if !other.HasLabel(LabelLogs) {
						<-done[j]
					}
				}
				// Log events carry whole milliseconds and the window ends
				// before the one holding its end: step into the next one,
				// so the last check's lines are inside.
				time.Sleep(time.Until(time.Now().Truncate(time.Millisecond).Add(time.Millisecond)))
				ccfg.LogsUntil = cfg.now()
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = r.runCheck(ctx, c, tt, ccfg)
		}()
	}
	for i := range done {
		<-done[i]
	}
	rep := Report{
		Schema:    ReportSchema,
		Expect:    cfg.Expect,
		Function:  t.Function,
		StartedAt: start.UTC(),
		Duration:  time.Since(start),
		Results:   results,
	}
	if t.API != nil { // a run of checks that need no API (a preflight's) has none
		rep.API, rep.Profile = t.API.BaseURL, t.API.Profile.Name
	}
	rep.Summary = summarize(results)
	return rep
}

// runCheck runs one check to its verdict. A check is retried with backoff
// while its answer may still change: a check that waits for propagation
// while it fails (within the convergence deadline), and any check while
// the API cannot answer (5xx, 429: within the check's deadline, which is
// CheckTimeout, or the convergence deadline for a check that waits for
// propagation), waiting at least what the API asked for.
func (r Runner) runCheck(ctx context.Context, c Check, t Target, cfg Config) Result {
	log := r.Logger.With("check", c.Name)
	start := time.Now()
	budget := r.CheckTimeout
	if c.Eventually {
		budget = max(r.Convergence, r.CheckTimeout)
	}
	wait := r.RetryInterval
	var res Result
	attempts := 0
	stopWaiting := func() {}
	defer func() { stopWaiting() }()
	for {
		attempts++
		timeout := r.CheckTimeout
		if !c.Eventually {
			// An ordinary check's retries share its one deadline.
			timeout = max(budget-time.Since(start), time.Millisecond)
		}
		res = r.attempt(ctx, c, t, cfg, timeout, log)
		converging := c.Eventually && res.Outcome == Fail && !res.settled
		busy := res.Outcome == Error && res.transient
		if !converging && !busy {
			break
		}
		pause := wait
		if busy {
			pause = max(wait, res.retryAfter)
		}
		elapsed := time.Since(start)
		if limit := r.Convergence; converging && elapsed+pause > limit {
			res.Reason += fmt.Sprintf(" (still failing after %d attempts over %s; convergence deadline %s)", attempts, elapsed.Round(time.Millisecond), limit)
			break
		}
		if busy && elapsed+pause > budget {
			res.Reason += fmt.Sprintf(" (still unavailable after %d attempts over %s; the check's deadline is %s)", attempts, elapsed.Round(time.Millisecond), budget)
			break
		}
		log.Debug("retrying", "attempt", attempts, "wait", pause, "reason", res.Reason)
		if attempts == 1 { // one wait per check, however many retries it takes
			what, until := fmt.Sprintf("the API to answer check %s (it answered 5xx or 429)", c.Name), start.Add(budget)
			if converging {
				what, until = fmt.Sprintf("check %s to pass as the change propagates", c.Name), start.Add(r.Convergence)
			}
			_, stopWaiting = r.Progress.Start(ctx, what, until)
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			// Cut short, not answered: whatever the last attempt said, the
			// check could not tell.
			res.Outcome = Error
			res.Reason += " (run cancelled while waiting to retry)"
			res.Attempts, res.Duration, res.Name = attempts, time.Since(start), c.Name
			return res
		case <-timer.C:
		}
		wait = min(wait*2, r.MaxRetryInterval)
	}
	res.Name = c.Name
	res.Attempts = attempts
	res.Duration = time.Since(start)
	if c.Eventually && res.Outcome == Pass {
		d := res.Duration
		res.ConvergedAfter = &d
	}
	log.Debug("check done", "outcome", res.Outcome, "attempts", attempts, "duration", res.Duration)
	return res
}

// attempt runs the probe once under the per-attempt deadline, turning a
// panic or a timeout into an Error result.
func (r Runner) attempt(ctx context.Context, c Check, t Target, cfg Config, timeout time.Duration, log *slog.Logger) (res Result) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			res = errored(fmt.Sprintf("the check crashed: %v", p), nil)
		}
	}()
	res = c.Probe(actx, t, cfg, log)
	if res.Outcome == Error && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		res.Reason = fmt.Sprintf("timed out after %s: %s", timeout.Round(time.Millisecond), res.Reason)
	}
	return res
}

// Select returns the catalog's checks named in names (or carrying a label
// named there), with the checks they need, in catalog order. Unknown names are an error.
func Select(checks []Check, names []string) ([]Check, error) {
	if len(names) == 0 {
		return checks, nil
	}
	byName := map[string]Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	want := map[string]bool{}
	var add func(string)
	add = func(n string) {
		if want[n] {
			return
		}
		want[n] = true
		for _, need := range byName[n].Needs {
			add(need)
		}
	}
	for _, n := range names {
		found := false
		if _, ok := byName[n]; ok {
			add(n)
			found = true
		}
		for _, c := range checks {
			if c.HasLabel(n) {
				add(c.Name)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown check or label %q", n)
		}
	}
	var out []Check
	for _, c := range checks {
		if want[c.Name] {
			out = append(out, c)
		}
	}
	return out, nil
}
