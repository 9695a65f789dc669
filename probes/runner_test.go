package probes

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

func fakeTarget() Target {
	return Target{API: &Client{BaseURL: "http://fake", Profile: profile.Presets["runbook"]}}
}

func fixed(o Outcome) Probe {
	return func(context.Context, Target, Config, *slog.Logger) Result {
		return Result{Outcome: o, Reason: string(o)}
	}
}

func TestRunnerDependenciesAndSessions(t *testing.T) {
	var sawSession atomic.Bool
	checks := []Check{
		{Name: "login", Probe: func(context.Context, Target, Config, *slog.Logger) Result {
			r := passed("ok", nil)
			r.session = &Session{Access: secret.NewToken("a.b.c")}
			return r
		}},
		{Name: "uses-session", Needs: []string{"login"}, Probe: func(_ context.Context, t Target, _ Config, _ *slog.Logger) Result {
			sawSession.Store(t.Session != nil && t.Session.Access.Reveal() == "a.b.c")
			return passed("ok", nil)
		}},
		{Name: "broken", Probe: fixed(Fail)},
		{Name: "after-broken", Needs: []string{"broken"}, Probe: fixed(Pass)},
		{Name: "needs-missing", Needs: []string{"nowhere"}, Probe: fixed(Pass)},
	}
	rep := Runner{}.Run(context.Background(), checks, fakeTarget(), Config{})
	want := map[string]Outcome{"login": Pass, "uses-session": Pass, "broken": Fail, "after-broken": Skip, "needs-missing": Error}
	for name, o := range want {
		r, ok := rep.Result(name)
		if !ok || r.Outcome != o {
			t.Errorf("%s: got %v (%q), want %v", name, r.Outcome, r.Reason, o)
		}
	}
	if !sawSession.Load() {
		t.Error("dependent check did not receive login's session")
	}
	if rep.Status() != Fail || rep.Summary.Failed != 1 || rep.Summary.Skipped != 1 || rep.Summary.Errored != 1 {
		t.Errorf("summary %+v status %v", rep.Summary, rep.Status())
	}
	if r, _ := rep.Result("after-broken"); !strings.Contains(r.Reason, "needs broken") || r.BlockedBy != "broken" {
		t.Errorf("skip reason %q, blocked by %q: the dependency is not named, as text and as data", r.Reason, r.BlockedBy)
	}
}

func TestRunnerEventually(t *testing.T) {
	var calls atomic.Int32
	converging := Check{Name: "converges", Eventually: true, Probe: func(context.Context, Target, Config, *slog.Logger) Result {
		if calls.Add(1) < 3 {
			return failed("not yet", nil)
		}
		return passed("now", nil)
	}}
	never := Check{Name: "never", Eventually: true, Probe: fixed(Fail)}
	once := Check{Name: "once", Probe: fixed(Fail)}
	r := Runner{RetryInterval: time.Millisecond, MaxRetryInterval: 4 * time.Millisecond, Convergence: 60 * time.Millisecond}
	rep := r.Run(context.Background(), []Check{converging, never, once}, fakeTarget(), Config{})

	c, _ := rep.Result("converges")
	if c.Outcome != Pass || c.Attempts != 3 || c.ConvergedAfter == nil {
		t.Errorf("converges: %+v", c)
	}
	n, _ := rep.Result("never")
	if n.Outcome != Fail || n.Attempts < 2 || !strings.Contains(n.Reason, "convergence deadline") {
		t.Errorf("never: %+v", n)
	}
	o, _ := rep.Result("once")
	if o.Attempts != 1 {
		t.Errorf("a check that does not wait for propagation was retried: %+v", o)
	}
}

func TestRunnerTimeoutPanicAndConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	var mu sync.Mutex
	gate := make(chan struct{})
	parallel := func(context.Context, Target, Config, *slog.Logger) Result {
		n := inFlight.Add(1)
		mu.Lock()
		if n > peak.Load() {
			peak.Store(n)
		}
		if peak.Load() == 3 {
			close(gate)
		}
		mu.Unlock()
		select {
		case <-gate:
		case <-time.After(2 * time.Second):
		}
		inFlight.Add(-1)
		return passed("ok", nil)
	}
	checks := []Check{
		{Name: "p1", Probe: parallel}, {Name: "p2", Probe: parallel}, {Name: "p3", Probe: parallel},
		{Name: "slow", Probe: func(ctx context.Context, _ Target, _ Config, _ *slog.Logger) Result {
			<-ctx.Done()
			return errored(ctx.Err().Error(), nil)
		}},
		{Name: "crashes", Probe: func(context.Context, Target, Config, *slog.Logger) Result { panic("boom") }},
	}
	rep := Runner{CheckTimeout: 20 * time.Millisecond}.Run(context.Background(), checks, fakeTarget(), Config{})
	if peak.Load() != 3 {
		t.Errorf("independent checks did not run concurrently: peak %d", peak.Load())
	}
	if s, _ := rep.Result("slow"); s.Outcome != Error || !strings.Contains(s.Reason, "timed out") {
		t.Errorf("slow: %+v", s)
	}
	if c, _ := rep.Result("crashes"); c.Outcome != Error || !strings.Contains(c.Reason, "crashed") {
		t.Errorf("crashes: %+v", c)
	}
}

func TestRunnerConcurrencyLimit(t *testing.T) {
	var inFlight, peak atomic.Int32
	probe := func(context.Context, Target, Config, *slog.Logger) Result {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
		return passed("ok", nil)
	}
	var checks []Check
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		checks = append(checks, Check{Name: n, Probe: probe})
	}
	Runner{Concurrency: 2}.Run(context.Background(), checks, fakeTarget(), Config{})
	if peak.Load() > 2 {
		t.Errorf("concurrency limit 2 exceeded: peak %d", peak.Load())
	}
}

func TestSelect(t *testing.T) {
	got, err := Select(Catalog(), []string{"refresh", "security"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	joined := strings.Join(names, ",")
	if joined != "login,new-secret-in-use,refresh,security-alg-none,security-hs384-hs512,security-expired,security-no-exp,security-tampered-signature,security-empty-key,security-refresh-as-access" {
		t.Errorf("got %s", joined)
	}
	if _, err := Select(Catalog(), []string{"nope"}); err == nil {
		t.Error("unknown name accepted")
	}
	// Two checks are strict only: old-token-rejected and old-refresh-rejected.
	if g := ForExpect(Catalog(), Grace); len(g) != len(Catalog())-2 {
		t.Errorf("grace selection has %d checks", len(g))
	}
}

func TestRunnerAfterOrdersWithoutRequiring(t *testing.T) {
	var firstDone atomic.Bool
	var got atomic.Value
	checks := []Check{
		{Name: "login", Probe: func(context.Context, Target, Config, *slog.Logger) Result {
			r := passed("ok", nil)
			r.session = &Session{Access: secret.NewToken("login.token.x")}
			return r
		}},
		{Name: "fresh", Needs: []string{"login"}, Probe: func(context.Context, Target, Config, *slog.Logger) Result {
			time.Sleep(5 * time.Millisecond)
			firstDone.Store(true)
			r := passed("ok", nil)
			r.session = &Session{Access: secret.NewToken("fresh.token.x")}
			return r
		}},
		{Name: "ordered", Needs: []string{"login"}, After: []string{"fresh"}, Probe: func(_ context.Context, t Target, _ Config, _ *slog.Logger) Result {
			got.Store(t.Session.Access.Reveal())
			if !firstDone.Load() {
				return failed("ran before fresh finished", nil)
			}
			return passed("ok", nil)
		}},
		{Name: "broken", Probe: fixed(Fail)},
		{Name: "after-broken", After: []string{"broken"}, Probe: fixed(Pass)},
	}
	rep := Runner{}.Run(context.Background(), checks, fakeTarget(), Config{})
	if r, _ := rep.Result("ordered"); r.Outcome != Pass || got.Load() != "fresh.token.x" {
		t.Errorf("ordered: %+v, session %v", r, got.Load())
	}
	if r, _ := rep.Result("after-broken"); r.Outcome != Pass {
		t.Errorf("After must not require a pass: %+v", r)
	}
}

// TestRunnerTellsLongWaits: a check that keeps retrying for more than a
// second is told to Progress once, with its convergence deadline; one that
// converges sooner, and one that passes at once, are not.
func TestRunnerTellsLongWaits(t *testing.T) {
	t.Parallel()
	began := time.Now()
	passAfter := func(d time.Duration) Probe {
		return func(context.Context, Target, Config, *slog.Logger) Result {
			if time.Since(began) < d {
				return failed("not yet", nil)
			}
			return passed("now", nil)
		}
	}
	checks := []Check{
		{Name: "slow", Eventually: true, Probe: passAfter(1500 * time.Millisecond)},
		{Name: "quick", Eventually: true, Probe: passAfter(100 * time.Millisecond)},
		{Name: "at-once", Eventually: true, Probe: fixed(Pass)},
	}
	var mu sync.Mutex
	var told []string
	var until []time.Time
	r := Runner{RetryInterval: 20 * time.Millisecond, MaxRetryInterval: 50 * time.Millisecond, Convergence: 10 * time.Second,
		Progress: func(what string, u time.Time) {
			mu.Lock()
			defer mu.Unlock()
			told, until = append(told, what), append(until, u)
		}}
	rep := r.Run(t.Context(), checks, fakeTarget(), Config{})
	if rep.Status() != Pass {
		t.Fatalf("report %+v", rep.Results)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 1 || !strings.Contains(told[0], "slow") {
		t.Fatalf("told %q, want one line for the slow check", told)
	}
	if d := until[0].Sub(began); d < 9*time.Second || d > 11*time.Second {
		t.Errorf("until %v after the start, want the convergence deadline (10s)", d)
	}
}
