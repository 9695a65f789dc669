package rotate_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// The gate judges the rotation, not the deployment (ARCHITECTURE key idea
// 9): these tests are the "done means" for the engine.

// awsWrites counts the requests the front received that change something
// in AWS: function updates and every Secrets Manager write (backup,
// journal tags, the lock).
func (r *fleetRig) awsWrites() int {
	n := 0
	for _, op := range []string{"lambda:UpdateFunctionConfiguration", "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue",
		"secretsmanager:TagResource", "secretsmanager:UntagResource", "secretsmanager:DeleteSecret"} {
		n += r.w.AWSFront.Calls(op)
	}
	return n
}

// onUpdates calls each fn with the number of every function update the
// engine sends (1 for the first, which comes after the baseline: a change
// to the API there is something the rotation "caused").
func (r *fleetRig) onUpdates(fns ...func(n int)) *atomic.Int64 {
	var n atomic.Int64
	r.setFault(func(req *http.Request) *testbed.Fault {
		if fromEngine(req) && isConfigPut(req, "") {
			k := int(n.Add(1))
			for _, fn := range fns {
				fn(k)
			}
		}
		return nil
	})
	return &n
}

// The real backend has always accepted HS384/HS512 signed with its secret
// and tokens without exp. Such pre-existing findings are reported as such
// and never roll a maintenance or an emergency rotation back;
// --fail-on-findings makes them exit 1, still without rolling back.
func TestEngineDoesNotRollBackForPreExistingFindings(t *testing.T) {
	t.Parallel()
	for _, mode := range []journal.Mode{journal.ModeMaintenance, journal.ModeEmergency} {
		for _, failOnFindings := range []bool{false, true} {
			name := string(mode)
			if failOnFindings {
				name += ", fail on findings"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := newFleetRig(t, rigOptions{misbehaviours: testbed.AcceptAnyHMAC | testbed.AcceptNoExp})
				out, err := r.rotate(t, r.engine(), mode, rotate.RotateOptions{FailOnFindings: failOnFindings})
				switch {
				case failOnFindings && !errors.Is(err, rotate.ErrFindingsReported):
					t.Fatalf("Rotate --fail-on-findings: %v, want ErrFindingsReported", err)
				case !failOnFindings && err != nil:
					t.Fatalf("Rotate: %v", err)
				}
				if out.Journal.Phase != journal.PhaseCompleted {
					t.Fatalf("phase %s, want completed: a pre-existing finding must not roll back", out.Journal.Phase)
				}
				if err != nil && (!strings.Contains(err.Error(), "security-hs384-hs512") || !strings.Contains(err.Error(), "nothing was rolled back")) {
					t.Errorf("the error does not name the findings and that nothing was undone: %v", err)
				}
				old, next := r.journalSecrets(t, out.Journal)
				r.wantFleet(t, next, secret.Secret{})
				r.wantTokens(t, map[string]secret.Secret{"new": next}, map[string]secret.Secret{"old": old})

				// The baseline saw them, and the journal keeps its verdicts.
				if out.Baseline == nil || out.Journal.Baseline["security-hs384-hs512"] != "fail" || out.Journal.Baseline["security-no-exp"] != "fail" ||
					out.Journal.Baseline["security-alg-none"] != "pass" {
					t.Errorf("journalled baseline %v", out.Journal.Baseline)
				}
				rep := out.Reports[len(out.Reports)-1]
				for _, name := range []string{"security-hs384-hs512", "security-no-exp"} {
					res, _ := rep.Result(name)
					if res.Outcome != probes.Fail || !res.PreExisting || res.Baseline != probes.Fail {
						t.Errorf("%s: %s, pre-existing %v, baseline %q", name, res.Outcome, res.PreExisting, res.Baseline)
					}
				}
				if rep.Status() != probes.Pass || rep.Gate == nil || !slices.Contains(rep.Gate.PreExisting, "security-hs384-hs512") {
					t.Errorf("report status %s, gate %+v", rep.Status(), rep.Gate)
				}
				recs, _ := r.auditRecords(t)
				var completed *rotate.AuditRecord
				for i := range recs {
					if recs[i].Step == "completed" {
						completed = &recs[i]
					}
				}
				if completed == nil || !slices.Contains(completed.PreExisting, "security-no-exp") || len(completed.Caused) != 0 {
					t.Errorf("the audit of the completed step does not record the pre-existing findings: %+v", completed)
				}
			})
		}
	}
}

// A finding that appears only after the change counts against it: a
// maintenance rotation rolls back, an emergency one stops with the new
// secret in place (it never restores the compromised secret by itself),
// and, once the API is fixed, running it again completes.
func TestEngineActsOnAFindingTheChangeCaused(t *testing.T) {
	t.Parallel()
	t.Run("maintenance rolls back", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{})
		fleet := len(r.w.Functions)
		r.onUpdates(func(n int) {
			switch n {
			case 1: // the new secret: the API starts accepting alg=none
				r.w.API.SetMisbehaviours(testbed.AcceptAlgNone)
			case fleet + 1: // the rollback's first write
				r.w.API.SetMisbehaviours(0)
			}
		})
		out, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
		if !errors.Is(err, rotate.ErrVerificationFailed) || !strings.Contains(err.Error(), "security-alg-none") || !strings.Contains(err.Error(), "rolled back") {
			t.Fatalf("Rotate: %v, want a verification failure naming security-alg-none, rolled back", err)
		}
		if out.Journal.Phase != journal.PhaseRolledBack {
			t.Fatalf("phase %s, want rolled-back", out.Journal.Phase)
		}
		r.wantFleet(t, r.old, secret.Secret{})
	})
	t.Run("emergency stops and keeps the new secret", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{})
		r.onUpdates(func(n int) {
			if n == 1 {
				r.w.API.SetMisbehaviours(testbed.AcceptAlgNone)
			}
		})
		out, err := r.rotate(t, r.engine(), journal.ModeEmergency, rotate.RotateOptions{})
		if !errors.Is(err, rotate.ErrVerificationFailed) || !strings.Contains(err.Error(), "new secret stays") {
			t.Fatalf("Rotate: %v, want a verification failure that keeps the new secret", err)
		}
		st := r.status(t)
		if st.Journal.Phase != journal.PhaseApplied || st.Journal.Verification != journal.VerificationFailed || !st.Unfinished() {
			t.Fatalf("journal %s, verification %q; want applied, failed", st.Journal.Phase, st.Journal.Verification)
		}
		_, next := r.journalSecrets(t, st.Journal)
		r.wantFleet(t, next, secret.Secret{})
		r.wantTokens(t, map[string]secret.Secret{"new": next}, map[string]secret.Secret{"leaked": r.old})
		if !strings.Contains(r.progress.String(), "never restores the compromised secret") {
			t.Errorf("the output does not say why nothing was undone:\n%s", r.progress.String())
		}

		r.setFault(nil)
		r.w.API.SetMisbehaviours(0)
		out, err = r.rotate(t, r.engine(), journal.ModeEmergency, rotate.RotateOptions{})
		if err != nil || out.Journal.Phase != journal.PhaseCompleted || out.Journal.ID != st.Journal.ID {
			t.Fatalf("re-run once fixed: %v, %s %s", err, out.Journal.ID, out.Journal.Phase)
		}
		if st := r.status(t); st.Journal.Verification != "" || st.Unfinished() {
			t.Errorf("after the re-run: verification %q, unfinished %v", st.Journal.Verification, st.Unfinished())
		}
		r.wantEnd(t, journal.PhaseCompleted)
	})
}

// Could not tell is not a no: a throttled log read or a 503 during the
// verification leaves the new secret in place, journals the verification
// as pending (ErrVerificationPending, exit 3), and the re-run completes.
func TestEngineLeavesTheChangeWhenVerificationCannotTell(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mode journal.Mode
		// trouble starts with the first function update; cleared before the re-run.
		trouble func(r *fleetRig)
		end     journal.Phase
	}{
		{name: "FilterLogEvents throttled", mode: journal.ModeMaintenance, end: journal.PhaseCompleted, trouble: func(r *fleetRig) {
			r.setFault(func(req *http.Request) *testbed.Fault {
				if fromEngine(req) && req.Header.Get("X-Amz-Target") == "Logs_20140328.FilterLogEvents" {
					return &testbed.Fault{Status: http.StatusBadRequest, ErrorType: "ThrottlingException", Message: "Rate exceeded"}
				}
				return nil
			})
		}},
		{name: "API answers 503", mode: journal.ModeMaintenance, end: journal.PhaseCompleted, trouble: func(r *fleetRig) {
			r.onUpdates(func(n int) {
				if n == 1 {
					r.w.API.SetMisbehaviours(testbed.ServerBusy)
				}
			})
		}},
		{name: "API answers 503 in grace", mode: journal.ModeZeroDowntime, end: journal.PhaseGrace, trouble: func(r *fleetRig) {
			r.onUpdates(func(n int) {
				if n == 4 { // the swap to the new primary, after the secondary was proven
					r.w.API.SetMisbehaviours(testbed.ServerBusy)
				}
			})
		}},
		{name: "API answers 503 while the secondary is proven", mode: journal.ModeZeroDowntime, end: journal.PhaseGrace, trouble: func(r *fleetRig) {
			r.onUpdates(func(n int) {
				if n == 1 {
					r.w.API.SetMisbehaviours(testbed.ServerBusy)
				}
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{logs: true, convergence: time.Second})
			tc.trouble(r)
			out, err := r.rotate(t, r.engine(), tc.mode, rotate.RotateOptions{})
			if !errors.Is(err, rotate.ErrVerificationPending) || errors.Is(err, rotate.ErrVerificationFailed) {
				t.Fatalf("Rotate: %v, want ErrVerificationPending only", err)
			}
			st := r.status(t)
			if st.Journal.Verification != journal.VerificationPending || st.Journal.Phase.Terminal() || st.Journal.Phase == journal.PhaseRollingBack ||
				st.Journal.Phase != out.Journal.Phase {
				t.Fatalf("journal %s (outcome %s), verification %q: want the change's phase, pending", st.Journal.Phase, out.Journal.Phase, st.Journal.Verification)
			}
			if !strings.Contains(err.Error(), "left as it is") || !strings.Contains(err.Error(), "run the same command again") {
				t.Errorf("the error does not say what was left and what to do: %v", err)
			}
			recs, _ := r.auditRecords(t)
			if !slices.ContainsFunc(recs, func(rec rotate.AuditRecord) bool { return rec.Outcome == "could not tell" && len(rec.CouldNotTell) > 0 }) &&
				st.Journal.Phase != journal.PhaseProbing {
				t.Errorf("no audit record says the verification could not tell")
			}
			if slices.ContainsFunc(recs, func(rec rotate.AuditRecord) bool {
				return strings.HasPrefix(rec.Step, "rolling-back") || rec.Step == "abandoned"
			}) {
				t.Errorf("could-not-tell led to an undo")
			}

			r.setFault(nil)
			r.w.API.SetMisbehaviours(0)
			out, err = r.rotate(t, r.engine(), tc.mode, rotate.RotateOptions{})
			if err != nil || out.Journal.Phase != tc.end || out.Journal.ID != st.Journal.ID {
				t.Fatalf("re-run: %v, %s in phase %s; want %s of %s", err, out.Journal.ID, out.Journal.Phase, tc.end, st.Journal.ID)
			}
			r.wantEnd(t, tc.end)
		})
	}
}

// A wrong probe password is found before anything is written (not even
// the lock): maintenance and zero-downtime refuse with ErrBaselineFailed
// (exit 2). An emergency replaces a leaked secret even while the API is
// down: it rotates, and its verification says it could not tell.
func TestEngineRefusesBeforeAnyWriteWhenTheProbeCannotLogIn(t *testing.T) {
	t.Parallel()
	for _, mode := range []journal.Mode{journal.ModeMaintenance, journal.ModeZeroDowntime} {
		t.Run("wrong password, "+string(mode), func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			writes := r.awsWrites()
			wrong := func(e *rotate.Engine) {
				v := r.verifier()
				v.Config.ProbePassword = secret.NewSecret("not-the-password")
				e.Verifier = v
			}
			_, err := r.rotate(t, r.engine(wrong), mode, rotate.RotateOptions{})
			if !errors.Is(err, rotate.ErrBaselineFailed) || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "password") {
				t.Fatalf("Rotate with a wrong password: %v, want ErrBaselineFailed", err)
			}
			if n := r.awsWrites() - writes; n != 0 {
				t.Errorf("%d AWS writes before the refusal, want none", n)
			}
			if st := r.status(t); st.HasJournal || st.BackupCurrent != "" {
				t.Errorf("the refusal left a journal (%v) or a backup (%q)", st.HasJournal, st.BackupCurrent)
			}
			r.wantEnvsEqual(t, r.before)
			r.wantNoLeak(t, "the error", err.Error())
		})
	}
	t.Run("emergency with the API down", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{misbehaviours: testbed.Down})
		out, err := r.rotate(t, r.engine(), journal.ModeEmergency, rotate.RotateOptions{})
		if !errors.Is(err, rotate.ErrVerificationPending) {
			t.Fatalf("emergency with the API down: %v, want ErrVerificationPending", err)
		}
		if !strings.Contains(r.progress.String(), "WARNING: the baseline could not log in") {
			t.Errorf("no loud warning about the baseline:\n%s", r.progress.String())
		}
		_, next := r.journalSecrets(t, out.Journal)
		r.wantFleet(t, next, secret.Secret{})
		if out.Journal.Phase != journal.PhaseApplied || out.Journal.Verification != journal.VerificationPending {
			t.Errorf("phase %s, verification %q", out.Journal.Phase, out.Journal.Verification)
		}
		// Once the API is back, the same command finishes it.
		r.w.API.SetMisbehaviours(0)
		if err := r.w.API.Err(); err != nil {
			t.Fatal(err)
		}
		out, err = r.rotate(t, r.engine(), journal.ModeEmergency, rotate.RotateOptions{})
		if err != nil || out.Journal.Phase != journal.PhaseCompleted {
			t.Fatalf("re-run with the API back: %v, phase %s", err, out.Journal.Phase)
		}
		r.wantEnd(t, journal.PhaseCompleted)
	})
}

// failingUser is a verifier that, before each verification, lets a user
// with a token the API refuses call it: a real failure logged between the
// change and its verification.
type failingUser struct {
	rotate.ProbeVerifier
	r *fleetRig
}

func (v failingUser) Verify(ctx context.Context, ver rotate.Verification) probes.Report {
	key, err := rotate.GenerateSecret() // nobody's secret
	if err != nil {
		panic(err)
	}
	tok, err := probes.Forge(map[string]any{"sub": "usr_x", "typ": "access", "exp": time.Now().Add(time.Hour).Unix()}, jwt.SigningMethodHS256, key)
	if err == nil {
		_, _ = v.r.client().Me(ctx, tok)
	}
	return v.ProbeVerifier.Verify(ctx, ver)
}

// Inside a rotation the log check reads from the first write to the end of
// the verification, so it sees a failure logged in between; it is reported
// (in strict mode failed verifications are mostly old tokens being
// refused, as intended), not rolled back for. The probe's own deliberate
// refusals in that window are not counted.
func TestEngineLogWindowSpansTheChange(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{logs: true})
	var firstWrite atomic.Int64
	r.onUpdates(func(n int) {
		if n == 1 {
			firstWrite.Store(time.Now().UnixMilli())
		}
	})
	out, err := r.rotate(t, r.engine(func(e *rotate.Engine) { e.Verifier = failingUser{ProbeVerifier: r.verifier(), r: r} }),
		journal.ModeMaintenance, rotate.RotateOptions{})
	if err != nil || out.Journal.Phase != journal.PhaseCompleted {
		t.Fatalf("Rotate: %v, phase %s", err, out.Journal.Phase)
	}
	rep := out.Reports[len(out.Reports)-1]
	res, _ := rep.Result("no-log-errors")
	if res.Outcome != probes.Fail || res.Details["failures"] != 1 {
		t.Fatalf("no-log-errors: %s %v (%s); want the one real failure counted", res.Outcome, res.Details, res.Reason)
	}
	if n, _ := res.Details["probeRejectionsIgnored"].(int); n == 0 {
		t.Errorf("no deliberate rejection was left out: %v", res.Details)
	}
	// The window opens no later than the first write and closes after the
	// verification's last request (the failure above came in between).
	since, err := time.Parse("2006-01-02T15:04:05.000Z07:00", res.Details["since"].(string))
	if err != nil || since.UnixMilli() > firstWrite.Load() {
		t.Errorf("the log window starts at %v (%v), after the first write at %v", since, err, time.UnixMilli(firstWrite.Load()))
	}
	until, _ := time.Parse("2006-01-02T15:04:05.000Z07:00", res.Details["until"].(string))
	for _, other := range rep.Results {
		if other.Name != "no-log-errors" && rep.StartedAt.Add(other.Duration).After(until.Add(time.Millisecond)) {
			t.Errorf("the log window ends at %v, before %s ended (%v)", until, other.Name, rep.StartedAt.Add(other.Duration))
		}
	}
	if rep.Gate == nil || !slices.Contains(rep.Gate.Findings, "no-log-errors") {
		t.Errorf("gate %+v: the log failure is not reported as a finding", rep.Gate)
	}
}

// On a backend like the real one (no User-Agent logged, a me_no_token WARN
// per refused token) a maintenance rotation completes: the probe's own
// refusals are left out by time, and the pre-existing findings (HS384,
// HS512, no exp) are reported as such.
func TestEngineOnTheValineBackend(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{backend: testbed.BackendValine, profile: profile.Presets["valine"], logs: true,
		busy: &testbed.BusyOptions{Every: 9, RetryAfterSeconds: 1}})
	out, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
	if err != nil || out.Journal.Phase != journal.PhaseCompleted {
		t.Fatalf("maintenance on the valine backend: %v, phase %s", err, out.Journal.Phase)
	}
	rep := out.Reports[len(out.Reports)-1]
	logs, _ := rep.Result("no-log-errors")
	if logs.Outcome != probes.Pass || logs.Details["failures"] != 0 {
		t.Errorf("no-log-errors: %s %v (%s)", logs.Outcome, logs.Details, logs.Reason)
	}
	if n, _ := logs.Details["probeRejectionsIgnored"].(int); n == 0 {
		t.Errorf("no deliberate refusal was accounted for: %v", logs.Details)
	}
	if rep.Gate == nil || !slices.Equal(rep.Gate.PreExisting, []string{"security-hs384-hs512", "security-no-exp"}) {
		t.Errorf("gate %+v, want hs384-hs512 and no-exp pre-existing", rep.Gate)
	}
	for _, name := range []string{"old-token-rejected", "old-refresh-rejected", "refresh"} {
		if res, _ := rep.Result(name); res.Outcome != probes.Pass {
			t.Errorf("%s: %s (%s)", name, res.Outcome, res.Reason)
		}
	}
	if _, err := r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{}); !errors.Is(err, rotate.ErrNoSecondaryVar) {
		t.Errorf("zero-downtime on the valine profile: %v, want ErrNoSecondaryVar", err)
	}
}

// rollback exits 1 when its verification fails, and a refused
// zero-downtime proof and preflight's throwaway secondary are audited with
// every write.
func TestEngineRollbackAndAuditOfEveryWrite(t *testing.T) {
	t.Parallel()
	t.Run("rollback that does not verify", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{convergence: 300 * time.Millisecond})
		r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
		r.w.API.SetMisbehaviours(testbed.AcceptOldTokens) // the rolled-back secret stays trusted
		out, err := r.rollback(t, r.engine())
		if !errors.Is(err, rotate.ErrVerificationFailed) || out.Journal.Phase != journal.PhaseRolledBack {
			t.Fatalf("Rollback: %v, phase %s; want ErrVerificationFailed, rolled-back", err, out.Journal.Phase)
		}
		r.wantFleet(t, r.old, secret.Secret{})
	})
	t.Run("refused zero-downtime proof", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{misbehaviours: testbed.IgnoreSecondary, convergence: 300 * time.Millisecond})
		if _, err := r.rotate(t, r.engine(), journal.ModeZeroDowntime, rotate.RotateOptions{}); !errors.Is(err, rotate.ErrNoDualSecret) {
			t.Fatalf("Rotate: %v", err)
		}
		r.wantAuditedWrites(t)
	})
	t.Run("preflight", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{})
		rotate.Preflight(t.Context(), r.engine(), r.stsClient(), true)
		recs := r.wantAuditedWrites(t)
		var preflight []string
		for _, rec := range recs {
			if rec.Step == "preflight" {
				preflight = append(preflight, rec.Message)
			}
		}
		if len(preflight) != 2 || !strings.Contains(preflight[0], "setting a throwaway") || !strings.Contains(preflight[1], "removed") {
			t.Errorf("preflight records %q", preflight)
		}
	})
}

// wantAuditedWrites checks that the audit holds an "update" record for
// every write of the engine to the functions (one per function).
func (r *fleetRig) wantAuditedWrites(t *testing.T) []rotate.AuditRecord {
	t.Helper()
	recs, raw := r.auditRecords(t)
	updates := 0
	for _, rec := range recs {
		if rec.Step == "update" && rec.Outcome == "ok" {
			updates++
		}
	}
	if want := r.writes.checked() / len(r.w.Functions); updates != want || want == 0 {
		t.Errorf("%d update records for %d writes to %d functions:\n%s", updates, r.writes.checked(), len(r.w.Functions), raw)
	}
	r.wantNoLeak(t, "the audit", raw)
	return recs
}

// interruptingVerifier cancels the operation's context as its
// verification starts, as SIGINT would.
type interruptingVerifier struct {
	rotate.ProbeVerifier
	cancel context.CancelFunc
}

func (v interruptingVerifier) Verify(ctx context.Context, ver rotate.Verification) probes.Report {
	v.cancel()
	return v.ProbeVerifier.Verify(ctx, ver)
}

// An interrupt during the verification is reported as such, audited, and
// leaves the journal where a re-run expects it: the change's phase, its
// verification pending. Nothing is rolled back on a cut-short answer.
func TestEngineInterruptedDuringVerification(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e := r.engine(func(e *rotate.Engine) { e.Verifier = interruptingVerifier{ProbeVerifier: r.verifier(), cancel: cancel} })
	out, err := e.Rotate(ctx, journal.ModeMaintenance, rotate.RotateOptions{})
	if !errors.Is(err, rotate.ErrInterrupted) || errors.Is(err, rotate.ErrVerificationFailed) {
		t.Fatalf("Rotate interrupted during the verification: %v, want ErrInterrupted", err)
	}
	st := r.status(t)
	if st.Journal.Phase != journal.PhaseApplied || st.Journal.Verification != journal.VerificationPending || out.Journal.Phase != journal.PhaseApplied {
		t.Fatalf("journal %s, verification %q; want applied, pending", st.Journal.Phase, st.Journal.Verification)
	}
	recs, _ := r.auditRecords(t)
	if !slices.ContainsFunc(recs, func(rec rotate.AuditRecord) bool { return rec.Outcome == "interrupted" && rec.Step == "applied" }) {
		t.Error("the interrupt is not in the audit")
	}
	// The lock was released on the way out; the re-run finishes.
	out, err = r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
	if err != nil || out.Journal.Phase != journal.PhaseCompleted {
		t.Fatalf("re-run: %v, phase %s", err, out.Journal.Phase)
	}
	r.wantEnd(t, journal.PhaseCompleted)
}
