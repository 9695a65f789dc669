package rotate_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// TestEngineRefusesZeroDowntimeWithoutDualSecretSupport: against an API
// that ignores the secondary variable the rotation is refused, and every
// function ends exactly as it was (the proof may touch them); with a
// profile that names no secondary variable it is refused before any write.
func TestEngineRefusesZeroDowntimeWithoutDualSecretSupport(t *testing.T) {
	t.Parallel()
	t.Run("API ignores the secondary", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{misbehaviours: testbed.IgnoreSecondary, convergence: 300 * time.Millisecond})
		out, err := r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{})
		if !errors.Is(err, rotate.ErrNoDualSecret) {
			t.Fatalf("Rotate: %v, want ErrNoDualSecret", err)
		}
		if !strings.Contains(err.Error(), "maintenance") {
			t.Errorf("the refusal does not name maintenance mode as the way forward: %v", err)
		}
		if out.Journal.Phase != journal.PhaseAbandoned {
			t.Errorf("outcome phase %s, want abandoned", out.Journal.Phase)
		}
		st := r.status(t)
		if st.Journal.Phase != journal.PhaseAbandoned || st.Unfinished() || !st.Drift.Consistent {
			t.Errorf("status: phase %s, unfinished %v, %s", st.Journal.Phase, st.Unfinished(), st.Drift)
		}
		r.wantEnvsEqual(t, r.before)
		r.wantTokens(t, map[string]secret.Secret{"old": r.old}, nil)

		// Abandoned is over: rollback has nothing to do, maintenance goes ahead.
		if _, err := r.rollback(t, r.engine()); !errors.Is(err, rotate.ErrNothingToRollBack) {
			t.Errorf("Rollback after an abandoned rotation: %v, want ErrNothingToRollBack", err)
		}
		r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
		r.wantEnd(t, journal.PhaseCompleted)
	})
	t.Run("profile without a secondary variable", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{profile: profile.Presets["cookie"]})
		before, requests := r.updates(), r.w.API.Requests()
		_, err := r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{})
		if !errors.Is(err, rotate.ErrNoSecondaryVar) || !strings.Contains(err.Error(), "profile cookie") {
			t.Fatalf("Rotate: %v, want ErrNoSecondaryVar naming the profile", err)
		}
		if n := r.updates() - before; n != 0 {
			t.Errorf("%d UpdateFunctionConfiguration calls before the refusal", n)
		}
		// The profile alone decides it: nothing is asked of the API first.
		if n := r.w.API.Requests() - requests; n != 0 {
			t.Errorf("the refusal sent %d requests to the API; the profile alone rules it out", n)
		}
		if st := r.status(t); st.HasJournal || st.BackupCurrent != "" {
			t.Errorf("the refusal left a journal (%v) or a backup (%q)", st.HasJournal, st.BackupCurrent)
		}
		r.wantEnvsEqual(t, r.before)
		// The same deployment rotates in maintenance mode.
		r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
		r.wantEnd(t, journal.PhaseCompleted)
	})
}

// TestEngineNeverWritesAnEmptyOrShortSecret: whatever happened before,
// each of these is refused with a clear error before any function changes.
func TestEngineNeverWritesAnEmptyOrShortSecret(t *testing.T) {
	t.Parallel()
	setPrimary := func(value *string) func(t *testing.T, r *fleetRig) {
		return func(t *testing.T, r *fleetRig) {
			for _, fn := range r.w.Functions {
				if err := r.w.EditEnv(t.Context(), fn, func(env map[string]string) {
					if value == nil {
						delete(env, r.w.Profile.SecretVar)
					} else {
						env[r.w.Profile.SecretVar] = *value
					}
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	maintenance := func(opt rotate.RotateOptions) func(t *testing.T, r *fleetRig) error {
		return func(t *testing.T, r *fleetRig) error {
			_, err := r.rotate(t, r.engine(), journal.ModeMaintenance, opt)
			return err
		}
	}
	rollback := func(t *testing.T, r *fleetRig) error { _, err := r.rollback(t, r.engine()); return err }
	completedRotation := func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted) }
	// putBackup writes value to the backup secret behind the engine's back
	// after a completed rotation; with keepCurrent it then writes the
	// current secret again, so only AWSPREVIOUS holds value.
	putBackup := func(value string, keepCurrent bool) func(t *testing.T, r *fleetRig) {
		return func(t *testing.T, r *fleetRig) {
			completedRotation(t, r)
			current, _ := r.backupSecrets(t)
			sm := secretsmanager.NewFromConfig(r.w.AWS)
			putSecret(t, sm, r.backupName, value)
			if keepCurrent {
				putSecret(t, sm, r.backupName, reveal(current))
			}
		}
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, r *fleetRig)
		run   func(t *testing.T, r *fleetRig) error
		want  error // nil: any error
	}{
		{"new secret short", nil, maintenance(rotate.RotateOptions{New: secret.NewSecret(strings.Repeat("k", rotate.MinSecretBytes-1))}), rotate.ErrShortSecret},
		{"new secret equal to the current", nil, func(t *testing.T, r *fleetRig) error {
			return maintenance(rotate.RotateOptions{New: r.old})(t, r)
		}, rotate.ErrReusedSecret},
		{"new secret equal to the previous", completedRotation, func(t *testing.T, r *fleetRig) error {
			return maintenance(rotate.RotateOptions{New: r.old})(t, r)
		}, rotate.ErrReusedSecret},
		{"zero-downtime with a short new secret", nil, func(t *testing.T, r *fleetRig) error {
			_, err := r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{New: secret.NewSecret("hunter2")})
			return err
		}, rotate.ErrShortSecret},
		{"fleet primary empty", setPrimary(aws.String("")), maintenance(rotate.RotateOptions{}), rotate.ErrEmptySecret},
		{"fleet primary unset", setPrimary(nil), maintenance(rotate.RotateOptions{}), rotate.ErrEmptySecret},
		{"one function drifted", func(t *testing.T, r *fleetRig) {
			if err := r.w.EditEnv(t.Context(), r.w.Functions[2], func(env map[string]string) { env[r.w.Profile.SecretVar] = reveal(mustSecret(t)) }); err != nil {
				t.Fatal(err)
			}
		}, maintenance(rotate.RotateOptions{}), rotate.ErrDrift},
		{"one function's primary emptied", func(t *testing.T, r *fleetRig) {
			if err := r.w.EditEnv(t.Context(), r.w.Functions[1], func(env map[string]string) { env[r.w.Profile.SecretVar] = "" }); err != nil {
				t.Fatal(err)
			}
		}, maintenance(rotate.RotateOptions{}), rotate.ErrDrift},
		{"a stray secondary", func(t *testing.T, r *fleetRig) {
			if err := r.w.SetSecrets(t.Context(), reveal(r.old), reveal(mustSecret(t))); err != nil {
				t.Fatal(err)
			}
		}, maintenance(rotate.RotateOptions{}), nil},
		{"rollback with no backup", nil, rollback, rotate.ErrNothingToRollBack},
		{"rollback with the backup's previous replaced", putBackup(strings.Repeat("x", 44), true), rollback, rotate.ErrBackupMismatch},
		{"rollback with a short previous", putBackup("short", true), rollback, rotate.ErrBadBackup},
		{"rollback with a blank current", putBackup(" ", false), rollback, nil},
		{"rollback with another current", putBackup(strings.Repeat("y", 44), false), rollback, rotate.ErrBackupMismatch},
		{"rollback with the backup unreadable", func(t *testing.T, r *fleetRig) {
			completedRotation(t, r)
			fault, _ := countingFault(-1, func(req *http.Request) bool { return isSecretsOp(req, "GetSecretValue") },
				testbed.Fault{Status: http.StatusBadRequest, ErrorType: "AccessDeniedException", Message: "not allowed"})
			r.setFault(fault)
		}, rollback, nil},
		{"rollback with the backup deleted", func(t *testing.T, r *fleetRig) {
			completedRotation(t, r)
			sm := secretsmanager.NewFromConfig(r.w.AWS)
			if _, err := sm.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(r.backupName), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
				t.Fatal(err)
			}
		}, rollback, rotate.ErrNothingToRollBack},
		{"resume with the backup replaced", func(t *testing.T, r *fleetRig) {
			stoppedAfter(journal.ModeMaintenance, journal.PhaseBackedUp)(t, r)
			putSecret(t, secretsmanager.NewFromConfig(r.w.AWS), r.backupName, reveal(mustSecret(t)))
		}, maintenance(rotate.RotateOptions{}), rotate.ErrBackupMismatch},
		{"finalize with the backup replaced", func(t *testing.T, r *fleetRig) {
			r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
			putSecret(t, secretsmanager.NewFromConfig(r.w.AWS), r.backupName, reveal(mustSecret(t)))
		}, func(t *testing.T, r *fleetRig) error {
			_, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true})
			return err
		}, rotate.ErrBackupMismatch},
		{"finalize with no rotation", nil, func(t *testing.T, r *fleetRig) error {
			_, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true})
			return err
		}, rotate.ErrNoRotation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			if tc.setup != nil {
				tc.setup(t, r)
			}
			before, envs := r.updates(), r.envs(t)
			err := tc.run(t, r)
			t.Logf("refused: %v", err)
			switch {
			case err == nil:
				t.Fatal("not refused")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("refused with %v, want %v", err, tc.want)
			}
			if n := r.updates() - before; n != 0 {
				t.Errorf("%d UpdateFunctionConfiguration calls before the refusal", n)
			}
			r.wantEnvsEqual(t, envs)
			r.wantNoLeak(t, "the error", err.Error())
		})
	}
}

// TestEngineRollsBackAFailedVerification: against an API that keeps
// accepting old tokens, strict verification fails. The change is rolled
// back and the error says so, or, with NoRollback, left in place and the
// error says that.
func TestEngineRollsBackAFailedVerification(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		setup      func(t *testing.T, r *fleetRig)
		run        func(t *testing.T, r *fleetRig) (rotate.Outcome, error)
		says       string
		phase      journal.Phase
		onNew      bool // the fleet is left on the new secret (and its secondary, in grace)
		secondary  bool // the old secret is the fleet's secondary
		noRollback bool
	}{
		{name: "maintenance", run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
			return r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
		}, says: "rolled back", phase: journal.PhaseRolledBack},
		{name: "maintenance, no rollback", run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
			return r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{NoRollback: true})
		}, says: "left in place", phase: journal.PhaseApplied, onNew: true},
		// An emergency never restores the compromised secret by itself,
		// asked to roll back or not.
		{name: "emergency", run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
			return r.rotate(t, r.engine(), journal.ModeEmergency, rotate.RotateOptions{})
		}, says: "the new secret stays", phase: journal.PhaseApplied, onNew: true},
		{name: "finalize", setup: func(t *testing.T, r *fleetRig) {
			r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
		}, run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
			return r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true})
		}, says: "rolled back to the grace period", phase: journal.PhaseGrace, onNew: true, secondary: true},
		{name: "finalize, no rollback", setup: func(t *testing.T, r *fleetRig) {
			r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
		}, run: func(t *testing.T, r *fleetRig) (rotate.Outcome, error) {
			return r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true, NoRollback: true})
		}, says: "left in place", phase: journal.PhaseFinalizing, onNew: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{misbehaviours: testbed.AcceptOldTokens, convergence: 300 * time.Millisecond})
			if tc.setup != nil {
				tc.setup(t, r)
			}
			out, err := tc.run(t, r)
			if !errors.Is(err, rotate.ErrVerificationFailed) {
				t.Fatalf("want ErrVerificationFailed, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "old-token-rejected") {
				t.Errorf("error %q does not say %q and name the failed check", err, tc.says)
			}
			r.wantNoLeak(t, "the error", err.Error())
			if len(out.Reports) == 0 || out.Reports[0].Status() == probes.Pass {
				t.Errorf("the outcome carries no failed report: %d reports", len(out.Reports))
			}
			st := r.status(t)
			if st.Journal.Phase != tc.phase || out.Journal.Phase != tc.phase {
				t.Errorf("journal in phase %s (outcome says %s), want %s", st.Journal.Phase, out.Journal.Phase, tc.phase)
			}
			old, next := r.journalSecrets(t, st.Journal)
			switch {
			case tc.onNew && tc.secondary:
				r.wantFleet(t, next, old)
			case tc.onNew:
				r.wantFleet(t, next, secret.Secret{})
			default:
				r.wantFleet(t, old, secret.Secret{})
			}
			r.wantOthersKept(t, nil)
		})
	}
}

// TestEngineRefusalSurvivesAStop stops a zero-downtime rotation refused by
// an API that ignores the secondary after each of its steps: running it
// again is refused again, and every function ends exactly as it was.
func TestEngineRefusalSurvivesAStop(t *testing.T) {
	t.Parallel()
	for _, step := range []journal.Phase{journal.PhaseBackedUp, journal.PhaseProbing, journal.PhaseAbandoned} {
		t.Run("stop after "+string(step), func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{misbehaviours: testbed.IgnoreSecondary, convergence: 300 * time.Millisecond})
			_, err := r.rotate(t, r.engine(func(e *rotate.Engine) { e.StopAfter = stopAt(string(step)) }), journal.ModeZeroDowntime, rotate.RotateOptions{})
			if !errors.Is(err, errStop) {
				t.Fatalf("want the injected stop, got %v", err)
			}
			if st := r.status(t); st.Journal.Phase != step {
				t.Errorf("journal in phase %s, want %s", st.Journal.Phase, step)
			}
			r.wantNoShortSecret(t)
			r.wantOnlyBackedUpSecrets(t)
			out, err := r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{})
			if !errors.Is(err, rotate.ErrNoDualSecret) || out.Journal.Phase != journal.PhaseAbandoned {
				t.Errorf("re-run: phase %s, %v; want abandoned, ErrNoDualSecret", out.Journal.Phase, err)
			}
			r.wantEnvsEqual(t, r.before)
			r.wantTokens(t, map[string]secret.Secret{"old": r.old}, nil)
		})
	}
}

// A legacy short secret must be rotatable away from (the backup keeps it),
// but never rolled back to: a rollback refuses before any write.
func TestEngineRotatesAwayFromAShortSecretButNeverBackToIt(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	for _, fn := range r.w.Functions {
		if err := r.w.EditEnv(t.Context(), fn, func(env map[string]string) { env[r.w.Profile.SecretVar] = "tiny" }); err != nil {
			t.Fatal(err)
		}
	}
	out, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
	if err != nil || out.Journal.Phase != journal.PhaseCompleted {
		t.Fatalf("rotating away from a short secret: %v (phase %s)", err, out.Journal.Phase)
	}
	before, envs := r.updates(), r.envs(t)
	if _, err := r.rollback(t, r.engine()); !errors.Is(err, rotate.ErrBadBackup) {
		t.Fatalf("rollback to a short secret: got %v, want ErrBadBackup", err)
	}
	if n := r.updates() - before; n != 0 {
		t.Errorf("%d UpdateFunctionConfiguration calls before the refusal", n)
	}
	r.wantEnvsEqual(t, envs)
}
