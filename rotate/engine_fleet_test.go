package rotate_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// TestEngineBoundsConcurrency: functions are updated at most Concurrency
// at a time, and that many at once when there is work; by default only the
// request rate bounds them, so every function's update can be in flight
// at once.
func TestEngineBoundsConcurrency(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		functions   int
		concurrency int
		want        int
	}{
		{"one at a time", 4, 1, 1},
		{"two at a time", 6, 2, 2},
		{"default: no bound but the rate", 12, 0, 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			roles := make([]string, tc.functions)
			for i := range roles {
				roles[i] = "fn" + itoa(i)
			}
			r := newFleetRig(t, rigOptions{roles: roles})
			var inFlight, peak atomic.Int64
			r.setFault(func(req *http.Request) *testbed.Fault {
				if !fromEngine(req) || !isConfigPut(req, "") {
					return nil
				}
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				// Hold the slot until the expected number of updates are in
				// flight together (bounded), then a little longer, so that an
				// engine allowing more than that shows it.
				for deadline := time.Now().Add(2 * time.Second); peak.Load() < int64(tc.want) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
				return nil
			})
			e := r.engine(func(e *rotate.Engine) { e.Concurrency = tc.concurrency })
			if _, err := r.rotate(t, e, journal.ModeMaintenance, rotate.RotateOptions{}); err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if got := int(peak.Load()); got != tc.want {
				t.Errorf("at most %d updates in flight, want %d", got, tc.want)
			}
			r.setFault(nil)
			r.wantEnd(t, journal.PhaseCompleted)
		})
	}
}

// TestEngineWaitsForPropagation: with an API that sees a change only
// after a delay, every verification waits (bounded) instead of failing,
// on a fleet of one function and on a fleet of several.
func TestEngineWaitsForPropagation(t *testing.T) {
	t.Parallel()
	for _, roles := range [][]string{{"solo"}, {"auth", "profiles", "media", "uploads"}} {
		t.Run(strings.Join(roles, ","), func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{roles: roles, propagation: 300 * time.Millisecond})
			r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
			r.wantEnd(t, journal.PhaseGrace)
			if _, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true}); err != nil {
				t.Fatalf("Finalize: %v", err)
			}
			r.wantEnd(t, journal.PhaseCompleted)
			if _, err := r.rollback(t, r.engine()); err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			r.wantEnd(t, journal.PhaseRolledBack)
			r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
			r.wantEnd(t, journal.PhaseCompleted)
		})
	}
}

// TestEngineChecksTheEnvironmentLimitBeforeAnyWrite: a function with too
// little room for a secondary refuses a zero-downtime rotation before any
// function changes; a maintenance rotation, which adds no variable, goes
// ahead.
func TestEngineChecksTheEnvironmentLimitBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	full := r.w.Functions[2]
	env, _ := envOf(t, r.w, full)
	// Leave 40 bytes: a 44-character secondary needs more.
	pad := rotate.MaxEnvBytes - jsonSize(t, env) - len(`,"PADDING":""`) - 40
	if err := r.w.EditEnv(t.Context(), full, func(env map[string]string) { env["PADDING"] = strings.Repeat("p", pad) }); err != nil {
		t.Fatal(err)
	}
	r.rebase(t)
	before := r.updates()
	_, err := r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{})
	if !errors.Is(err, rotate.ErrEnvTooLarge) {
		t.Fatalf("Rotate: %v, want ErrEnvTooLarge", err)
	}
	if n := r.updates() - before; n != 0 {
		t.Errorf("%d UpdateFunctionConfiguration calls before the refusal", n)
	}
	r.wantEnvsEqual(t, r.before)
	if st := r.status(t); st.HasJournal {
		t.Errorf("the refusal left a journal in phase %s", st.Journal.Phase)
	}
	r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
	r.wantEnd(t, journal.PhaseCompleted)
	if _, err := r.rollback(t, r.engine()); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	r.wantFleet(t, r.old, secret.Secret{})
}
