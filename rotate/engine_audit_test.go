package rotate_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// TestEngineAuditTrail runs a zero-downtime rotation through finalize and
// rollback, then a maintenance rotation, with a few refusals and dry runs
// in between. The audit file holds one complete JSON record per step, and
// neither it, nor the progress output, nor any plan or error holds a
// secret, the database password or a token.
func TestEngineAuditTrail(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	const operator = "arn:aws:iam::000000000000:user/test"
	var plans []string
	dry := func(out rotate.Outcome, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		plans = append(plans, out.Plan...)
	}

	dry(r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{DryRun: true}))
	a := r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
	if _, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{}); !errors.Is(err, rotate.ErrGraceNotOver) {
		t.Fatalf("Finalize before the deadline: %v", err)
	}
	dry(r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true, DryRun: true}))
	if _, err := r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true}); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	dry(r.engine().Rollback(t.Context(), rotate.RollbackOptions{DryRun: true}))
	if _, err := r.rollback(t, r.engine()); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if _, err := r.rollback(t, r.engine()); !errors.Is(err, rotate.ErrNothingToRollBack) {
		t.Fatalf("second Rollback: %v", err)
	}
	_, aNext := r.journalSecrets(t, r.status(t).Journal) // a, rolled back
	if _, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{New: r.old}); !errors.Is(err, rotate.ErrReusedSecret) {
		t.Fatalf("Rotate to the current secret: %v", err)
	}
	b := r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
	_, bNext := r.journalSecrets(t, b.Journal)

	recs, raw := r.auditRecords(t)
	byID := map[string][]rotate.AuditRecord{}
	for _, rec := range recs {
		byID[rec.RotationID] = append(byID[rec.RotationID], rec)
	}
	for _, want := range []struct {
		j     journal.Journal
		steps []string
	}{
		// Every operation starts with its baseline; every write to the
		// functions is an "update" record.
		// The first rotation claims the fleet (tags its functions).
		{a.Journal, []string{"baseline", "lock", "claim", "backed-up", "probing", "update", "staged", "update", "grace", "unlock",
			"baseline", "lock", "finalizing", "update", "completed", "unlock", "baseline", "lock", "rolling-back", "update", "rolled-back", "unlock"}},
		{b.Journal, []string{"baseline", "lock", "backed-up", "applied", "update", "completed", "unlock"}},
	} {
		got := byID[want.j.ID]
		var steps []string
		for _, rec := range got {
			steps = append(steps, rec.Step)
			switch {
			case rec.Time.IsZero() || time.Since(rec.Time) > time.Hour:
				t.Errorf("%s %s: time %s", rec.RotationID, rec.Step, rec.Time)
			case rec.Operator != operator, rec.Reason != "test", rec.Mode != want.j.Mode:
				t.Errorf("%s %s: operator %q, reason %q, mode %q", rec.RotationID, rec.Step, rec.Operator, rec.Reason, rec.Mode)
			case !slices.Equal(rec.Fleet, r.w.Functions):
				t.Errorf("%s %s: fleet %q, want %q", rec.RotationID, rec.Step, rec.Fleet, r.w.Functions)
			case rec.OldFingerprint != want.j.OldFingerprint || rec.NewFingerprint != want.j.NewFingerprint:
				t.Errorf("%s %s: fingerprints %s → %s, journal says %s → %s", rec.RotationID, rec.Step, rec.OldFingerprint, rec.NewFingerprint, want.j.OldFingerprint, want.j.NewFingerprint)
			case rec.Outcome != map[string]string{"lock": "taken", "unlock": "released"}[rec.Step] && rec.Outcome != "ok" || rec.Message == "":
				t.Errorf("%s %s: outcome %q, message %q", rec.RotationID, rec.Step, rec.Outcome, rec.Message)
			}
			verifies := rec.Step == "grace" || rec.Step == "completed" || rec.Step == "rolled-back"
			if verifies && (rec.Verification == nil || rec.Verification.Passed == 0 || len(rec.Failed) > 0) {
				t.Errorf("%s %s: verification summary %+v, failed %q", rec.RotationID, rec.Step, rec.Verification, rec.Failed)
			}
			if rec.Step == "baseline" && rec.Baseline == nil {
				t.Errorf("%s: the baseline record has no verdicts", rec.RotationID)
			}
			if _, err := journal.ParsePhase(rec.Step); err == nil && !strings.Contains(r.progress.String(), rec.Step+": ") {
				t.Errorf("the progress output has no line for step %s", rec.Step)
			}
		}
		if !slices.Equal(steps, want.steps) {
			t.Errorf("rotation %s (%s): audit steps %q, want %q", want.j.ID, want.j.Mode, steps, want.steps)
		}
	}
	if fi, err := os.Stat(r.auditPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	secrets := []secret.Secret{r.old, aNext, bNext}
	r.wantNoLeak(t, "the audit file", raw, secrets...)
	r.wantNoLeak(t, "the progress output", r.progress.String(), secrets...)
	r.wantNoLeak(t, "the plans", strings.Join(plans, "\n"), secrets...)
	r.errsMu.Lock()
	errs := strings.Join(r.errText, "\n")
	r.errsMu.Unlock()
	r.wantNoLeak(t, "the errors", errs, secrets...)
	if len(plans) == 0 || r.progress.String() == "" || errs == "" {
		t.Fatalf("nothing to check: %d plan lines, %d bytes of progress, errors %q", len(plans), len(r.progress.String()), errs)
	}
}

// TestEngineAuditsAFailedVerification: the record of a step whose
// verification failed names the failed checks, and says what the engine
// did next, with no secret in it.
func TestEngineAuditsAFailedVerification(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{misbehaviours: testbed.AcceptOldTokens, convergence: 300 * time.Millisecond})
	out, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
	if !errors.Is(err, rotate.ErrVerificationFailed) {
		t.Fatalf("Rotate: %v", err)
	}
	old, next := r.journalSecrets(t, out.Journal)
	recs, raw := r.auditRecords(t)
	var failed, rolledBack bool
	for _, rec := range recs {
		if rec.Outcome == "verification failed" && rec.Step == "rolling-back" && slices.Contains(rec.Failed, "old-token-rejected") {
			failed = true
		}
		rolledBack = rolledBack || rec.Step == "rolled-back"
	}
	if !failed || !rolledBack {
		t.Errorf("audit records do not show the failed verification (%v) and the rollback (%v):\n%s", failed, rolledBack, raw)
	}
	r.wantNoLeak(t, "the audit file", raw, old, next)
	r.wantNoLeak(t, "the progress output", r.progress.String(), old, next)
	r.wantNoLeak(t, "the error", err.Error(), old, next)
}
