package rotate_test

import (
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// TestEngineModesEndToEnd runs each mode against a fleet, then rolls it
// back, and checks what users would see: which tokens the API honours,
// what every function holds, and what the backup and the journal say.
func TestEngineModesEndToEnd(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mode journal.Mode
		// finalize a zero-downtime rotation (with Force) before rolling back.
		finalize bool
	}{
		{name: "zero-downtime, finalize, rollback", mode: journal.ModeZeroDowntime, finalize: true},
		{name: "zero-downtime, rollback in grace", mode: journal.ModeZeroDowntime},
		{name: "maintenance", mode: journal.ModeMaintenance},
		{name: "emergency", mode: journal.ModeEmergency},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			old := r.old

			out, err := r.rotate(t, r.engine(), tc.mode, rotate.RotateOptions{})
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			j := out.Journal
			if j.Mode != tc.mode || j.ID == "" {
				t.Errorf("journal %+v: want mode %s and an id", j, tc.mode)
			}
			for _, rep := range out.Reports {
				if rep.Status() != probes.Pass {
					t.Errorf("a verification report is %s: %+v", rep.Status(), rep.Summary)
				}
			}
			prev, next := r.journalSecrets(t, j)
			if !prev.Equal(old) || next.Equal(old) || len(next.Reveal()) < rotate.MinSecretBytes {
				t.Fatalf("backup holds previous %s, current %s; want the old %s and a new secret", prev, next, old)
			}
			st := r.status(t)
			if st.BackupCurrent != j.NewFingerprint || st.BackupPrevious != j.OldFingerprint || !st.Drift.Consistent {
				t.Errorf("status: backup %s/%s, drift %s; journal says %s/%s", st.BackupCurrent, st.BackupPrevious, st.Drift, j.NewFingerprint, j.OldFingerprint)
			}
			r.wantOthersKept(t, nil)

			if tc.mode == journal.ModeZeroDowntime {
				if j.Phase != journal.PhaseGrace {
					t.Fatalf("zero-downtime ended in phase %s, want grace", j.Phase)
				}
				if st.GraceRemaining <= 0 || st.Unfinished() {
					t.Errorf("status in grace: remaining %s, unfinished %v", st.GraceRemaining, st.Unfinished())
				}
				r.wantFleet(t, next, old)
				r.wantTokens(t, map[string]secret.Secret{"old": old, "new": next}, nil)

				// Before the deadline finalize refuses and changes nothing.
				updates, envs := r.updates(), r.envs(t)
				if _, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{}); !errors.Is(err, rotate.ErrGraceNotOver) {
					t.Errorf("Finalize before the deadline: %v, want ErrGraceNotOver", err)
				}
				if n := r.updates() - updates; n != 0 {
					t.Errorf("Finalize before the deadline made %d UpdateFunctionConfiguration calls", n)
				}
				r.wantEnvsEqual(t, envs)
				if st := r.status(t); st.Journal.Phase != journal.PhaseGrace {
					t.Errorf("after a refused finalize the journal is in phase %s", st.Journal.Phase)
				}

				if tc.finalize {
					out, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true})
					if err != nil {
						t.Fatalf("Finalize(Force): %v", err)
					}
					if out.Journal.Phase != journal.PhaseCompleted || out.Journal.ID != j.ID {
						t.Errorf("Finalize ended rotation %s in phase %s, want %s completed", out.Journal.ID, out.Journal.Phase, j.ID)
					}
					r.wantFleet(t, next, secret.Secret{})
					r.wantTokens(t, map[string]secret.Secret{"new": next}, map[string]secret.Secret{"old": old})
					r.wantOthersKept(t, nil)
				}
			} else {
				if j.Phase != journal.PhaseCompleted {
					t.Fatalf("%s ended in phase %s, want completed", tc.mode, j.Phase)
				}
				r.wantFleet(t, next, secret.Secret{})
				r.wantTokens(t, map[string]secret.Secret{"new": next}, map[string]secret.Secret{"old": old})
			}

			out, err = r.rollback(t, r.engine())
			if err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			if out.Journal.Phase != journal.PhaseRolledBack || out.Journal.ID != j.ID {
				t.Errorf("Rollback ended rotation %s in phase %s, want %s rolled-back", out.Journal.ID, out.Journal.Phase, j.ID)
			}
			r.wantFleet(t, old, secret.Secret{})
			r.wantTokens(t, map[string]secret.Secret{"old": old}, map[string]secret.Secret{"new": next})
			r.wantOthersKept(t, nil)
			// The backup's stages name what the fleet holds: AWSCURRENT is
			// the restored secret, AWSPREVIOUS the one rolled back from.
			if st := r.status(t); !st.Drift.Consistent || st.Unfinished() || st.BackupCurrent != old.Fingerprint() || st.BackupPrevious != next.Fingerprint() {
				t.Errorf("status after rollback: drift %s, unfinished %v, backup current %s previous %s; want current %s previous %s",
					st.Drift, st.Unfinished(), st.BackupCurrent, st.BackupPrevious, old, next)
			}

			updates := r.updates()
			if _, err := r.rollback(t, r.engine()); !errors.Is(err, rotate.ErrNothingToRollBack) {
				t.Errorf("second Rollback: %v, want ErrNothingToRollBack", err)
			}
			if n := r.updates() - updates; n != 0 {
				t.Errorf("a refused rollback made %d UpdateFunctionConfiguration calls", n)
			}
			r.wantFleet(t, old, secret.Secret{})
			// The front's watch saw the engine's writes (every rotation and
			// rollback write went past its checks).
			if n := r.writes.checked(); n < 2*len(r.w.Functions) {
				t.Errorf("the write watch saw %d of the engine's writes", n)
			}
		})
	}
}

// TestEngineRotatesAgainAfterEachEnding: a completed, rolled-back or
// abandoned rotation does not stand in the way of the next one, which
// starts from what the fleet holds.
func TestEngineRotatesAgainAfterEachEnding(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	first := r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
	_, next1 := r.journalSecrets(t, first.Journal)

	second := r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
	if second.Journal.ID == first.Journal.ID || second.Journal.OldFingerprint != next1.Fingerprint() {
		t.Fatalf("second rotation %s starts from %s, want a new id starting from %s", second.Journal.ID, second.Journal.OldFingerprint, next1)
	}
	_, next2 := r.journalSecrets(t, second.Journal)
	if _, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true}); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	if _, err := r.rollback(t, r.engine()); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	r.wantFleet(t, next1, secret.Secret{})

	third := r.mustRotate(t, journal.ModeEmergency, journal.PhaseCompleted)
	prev3, next3 := r.journalSecrets(t, third.Journal)
	if !prev3.Equal(next1) || next3.Equal(next2) {
		t.Errorf("third rotation backs up %s → %s; want it to start from %s", prev3, next3, next1)
	}
	r.wantFleet(t, next3, secret.Secret{})
	if st := r.status(t); !st.Journal.GraceDeadline.IsZero() || st.Journal.ID != third.Journal.ID {
		t.Errorf("journal of %s carries grace deadline %s left over from the zero-downtime rotation", st.Journal.ID, st.Journal.GraceDeadline)
	}
	r.wantTokens(t, map[string]secret.Secret{"third": next3}, map[string]secret.Secret{"first": next1, "second": next2, "initial": r.old})
	r.wantOthersKept(t, nil)
}

// TestEngineGraceDeadline fakes the engine's clock: Status counts the
// grace period down, Finalize refuses before the deadline and goes ahead
// after it without Force, and the grace period is never shorter than the
// refresh tokens' lifetime.
func TestEngineGraceDeadline(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	t0 := time.Now().UTC().Truncate(time.Second)
	var offset atomic.Int64
	clock := func(e *rotate.Engine) {
		e.Now = func() time.Time { return t0.Add(time.Duration(offset.Load())) }
	}
	at := func(d time.Duration) *rotate.Engine { offset.Store(int64(d)); return r.engine(clock) }

	const day = 24 * time.Hour
	out, err := r.rotate(t, at(0), journal.ModeZeroDowntime, rotate.RotateOptions{Grace: time.Hour})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	// The testbed's refresh tokens live 7 days: an hour is raised to that.
	if want := t0.Add(7 * day); !out.Journal.GraceDeadline.Equal(want) {
		t.Errorf("grace deadline %s, want %s (the refresh tokens' lifetime)", out.Journal.GraceDeadline, want)
	}
	for _, tc := range []struct {
		at   time.Duration
		want time.Duration
	}{
		{0, 7 * day},
		{2 * day, 5 * day},
		{7*day - time.Minute, time.Minute},
		{8 * day, 0},
	} {
		st, err := at(tc.at).Status(t.Context())
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if st.GraceRemaining != tc.want || st.Journal.Phase != journal.PhaseGrace || st.Unfinished() || !st.HasJournal {
			t.Errorf("status %s in: grace remaining %s (want %s), phase %s, unfinished %v", tc.at, st.GraceRemaining, tc.want, st.Journal.Phase, st.Unfinished())
		}
	}

	updates := r.updates()
	if _, err := r.finalize(t, at(7*day-time.Minute), rotate.FinalizeOptions{}); !errors.Is(err, rotate.ErrGraceNotOver) {
		t.Errorf("Finalize a minute before the deadline: %v, want ErrGraceNotOver", err)
	}
	if n := r.updates() - updates; n != 0 {
		t.Errorf("a refused finalize made %d UpdateFunctionConfiguration calls", n)
	}
	fin, err := r.finalize(t, at(7*day+time.Minute), rotate.FinalizeOptions{})
	if err != nil {
		t.Fatalf("Finalize after the deadline: %v", err)
	}
	if fin.Journal.Phase != journal.PhaseCompleted {
		t.Errorf("Finalize after the deadline ended in phase %s", fin.Journal.Phase)
	}
	if st, _ := at(7*day + 2*time.Minute).Status(t.Context()); st.GraceRemaining != 0 || st.Journal.Phase != journal.PhaseCompleted {
		t.Errorf("status after finalize: grace remaining %s, phase %s", st.GraceRemaining, st.Journal.Phase)
	}
}

// TestEngineDryRunChangesNothing: every operation's dry run says what it
// would do and leaves the functions, the backup and the journal alone.
func TestEngineDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	type state struct {
		updates int
		envs    map[string]map[string]string
		journal journal.Journal
		has     bool
		current string
	}
	snapshot := func(t *testing.T, r *fleetRig) state {
		st := r.status(t)
		return state{r.updates(), r.envs(t), st.Journal, st.HasJournal, st.BackupCurrent}
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, r *fleetRig)
		run   func(t *testing.T, r *fleetRig) (rotate.Outcome, error)
	}{
		{
			name:  "rotate a fresh fleet",
			setup: func(*testing.T, *fleetRig) {},
			run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
				return r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{DryRun: true})
			},
		},
		{
			name:  "finalize in grace",
			setup: func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace) },
			run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
				return r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true, DryRun: true})
			},
		},
		{
			name:  "rollback a completed rotation",
			setup: func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted) },
			run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
				return r.engine().Rollback(t.Context(), rotate.RollbackOptions{DryRun: true})
			},
		},
		{
			name:  "finalize a rotation stopped before its grace period",
			setup: stoppedAfter(journal.ModeZeroDowntime, journal.PhaseProbing),
			run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
				return r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true, DryRun: true})
			},
		},
		{
			name:  "rotate with a rotation stopped half-way",
			setup: stoppedAfter(journal.ModeMaintenance, journal.PhaseApplied),
			run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
				return r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{DryRun: true})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			tc.setup(t, r)
			before := snapshot(t, r)
			out, err := tc.run(t, r)
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if !out.DryRun || len(out.Plan) == 0 {
				t.Errorf("dry run: DryRun %v, plan %q", out.DryRun, out.Plan)
			}
			after := snapshot(t, r)
			if n := after.updates - before.updates; n != 0 {
				t.Errorf("dry run made %d UpdateFunctionConfiguration calls", n)
			}
			r.wantEnvsEqual(t, before.envs)
			if !reflect.DeepEqual(after.journal, before.journal) || after.has != before.has || after.current != before.current {
				t.Errorf("dry run changed the journal or the backup: %s %s (backup %q) → %s %s (backup %q)",
					before.journal.ID, before.journal.Phase, before.current, after.journal.ID, after.journal.Phase, after.current)
			}
			var plan string
			for _, line := range out.Plan {
				plan += line + "\n"
			}
			r.wantNoLeak(t, "the plan", plan)
		})
	}
}

// stoppedAfter returns a setup that runs a rotation in mode and stops it
// after phase, as a crash would.
func stoppedAfter(mode journal.Mode, phase journal.Phase) func(t *testing.T, r *fleetRig) {
	return func(t *testing.T, r *fleetRig) {
		t.Helper()
		e := r.engine(func(e *rotate.Engine) { e.StopAfter = stopAt(string(phase)) })
		if _, err := r.rotate(t, e, mode, rotate.RotateOptions{}); !errors.Is(err, errStop) {
			t.Fatalf("Rotate with a stop after %s: %v", phase, err)
		}
	}
}

// stopAt returns a StopAfter that stops after step, once.
func stopAt(step string) func(string) error {
	var done atomic.Bool
	return func(s string) error {
		if s == step && done.CompareAndSwap(false, true) {
			return errStop
		}
		return nil
	}
}

// TestEngineDoesNotClaimAnotherOperationsSuccess: an operation that finds
// the journal in a state it cannot act on must not return success for
// something else. Two cases the engine gets wrong today.
func TestEngineDoesNotClaimAnotherOperationsSuccess(t *testing.T) {
	t.Parallel()
	t.Run("finalize while a rollback is unfinished", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{})
		r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
		if _, err := r.rollback(t, r.engine(func(e *rotate.Engine) { e.StopAfter = stopAt(string(journal.PhaseRollingBack)) })); !errors.Is(err, errStop) {
			t.Fatalf("Rollback with a stop: %v", err)
		}
		out, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true})
		if err == nil {
			t.Errorf("Finalize returned success; the journal is now in phase %s and nothing was finalized", out.Journal.Phase)
		}
	})
	for _, mode := range []journal.Mode{journal.ModeEmergency, journal.ModeMaintenance} {
		t.Run(string(mode)+" during a grace period", func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			g := r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
			out, err := r.rotate(t, r.engine(), mode, rotate.RotateOptions{})
			if err == nil && (out.Journal.ID == g.Journal.ID || out.Journal.Mode != mode || out.Journal.Phase != journal.PhaseCompleted) {
				t.Errorf("Rotate(%s) returned success with rotation %s (%s) in phase %s: no %s rotation happened",
					mode, out.Journal.ID, out.Journal.Mode, out.Journal.Phase, mode)
			}
		})
	}
}
