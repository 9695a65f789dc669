package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// DefaultGrace is the zero-downtime grace period when none is given: the
// runbook's refresh-token lifetime.
const DefaultGrace = 7 * 24 * time.Hour

// ErrNoSecondaryVar is returned, before anything is read or written, for
// a zero-downtime rotation with a profile that names no secondary
// variable: the deployment verifies with one secret, so no grace period is
// possible.
var ErrNoSecondaryVar = errors.New("the profile names no secondary variable")

// RotateOptions tune Rotate.
type RotateOptions struct {
	// Grace is the zero-downtime grace period (default DefaultGrace); it is
	// raised to the refresh-token lifetime when that is longer.
	Grace time.Duration
	// NoRollback leaves a change that failed verification in place.
	NoRollback bool
	// DryRun plans and changes nothing.
	DryRun bool
	// FailOnFindings makes findings the change did not cause (pre-existing
	// ones, log failures) an error (ErrFindingsReported) once the rotation
	// is done; they never roll anything back.
	FailOnFindings bool
	// New is the new secret; empty means generate one.
	New secret.Secret
}

// Rotate runs a rotation in mode, or, when the journal shows an unfinished
// one, resumes that one (whatever mode was asked) and says so.
//
// Before its first write it runs a baseline against the secret in force
// and refuses, writing nothing, when the probe cannot log in (except in
// emergency mode: a leaked secret is replaced even while the API is down).
// Zero-downtime: back up; give every function the new secret as its
// secondary and prove the API accepts tokens signed with it (refusing,
// with every function restored, when the API rejects them); swap to new
// primary + old secondary; verify in grace mode; record the grace
// deadline. Finalize ends it. Maintenance and emergency: back up; new
// primary, no secondary; verify in strict mode.
//
// A verification is judged against the baseline (probes.Judge): a failure
// the change caused rolls back (unless NoRollback; an emergency never
// restores the compromised secret by itself); a check that could not tell
// leaves the fleet as it is with the verification pending
// (ErrVerificationPending), and running Rotate again verifies again; a
// finding the deployment already had is reported, not rolled back for.
func (e *Engine) Rotate(ctx context.Context, mode journal.Mode, opt RotateOptions) (Outcome, error) {
	mark := len(e.splits)
	out, err := e.rotate(ctx, mode, opt)
	out.Splits = e.splitsSince(mark)
	return out, err
}

func (e *Engine) rotate(ctx context.Context, mode journal.Mode, opt RotateOptions) (Outcome, error) {
	if mode == journal.ModeZeroDowntime && e.Profile.SecondaryVar == "" {
		return Outcome{}, fmt.Errorf("%w: profile %s says the deployment verifies with one secret (no secondary variable), so no grace period is possible; rotate with --mode maintenance",
			ErrNoSecondaryVar, e.Profile.Name)
	}
	// Everything up to the lock only reads: a refusal writes nothing.
	j, found, err := e.Backup.ReadJournal(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("reading the rotation journal: %w", err)
	}
	if found && j.Phase == journal.PhaseGrace {
		return Outcome{Journal: j}, fmt.Errorf("%w: rotation %s is in its grace period until %s; finalize it (--force ends it now) or roll it back before a new %s rotation",
			ErrGraceInProgress, j.ID, j.GraceDeadline.Format(time.RFC3339), mode)
	}
	if found && !j.Phase.Terminal() {
		if err := e.useSource(j, true, true); err != nil {
			return Outcome{Journal: j}, err
		}
		if opt.DryRun {
			return Outcome{Journal: j, DryRun: true, Plan: []string{
				fmt.Sprintf("resume rotation %s (%s), stopped in phase %s, to its end first", j.ID, j.Mode, j.Phase)}}, nil
		}
		out, err := e.resumeRotation(ctx, j, opt)
		if err != nil || out.Journal.Mode == mode {
			return out, err // running the same command again finishes it: that is all
		}
		if !out.Journal.Phase.Terminal() {
			return out, fmt.Errorf("%w: the resumed rotation %s is in phase %s; your %s rotation did not start", ErrGraceInProgress, j.ID, out.Journal.Phase, mode)
		}
		e.say("rotation %s is %s; starting the %s rotation asked for", j.ID, out.Journal.Phase, mode)
		next, err := e.Rotate(ctx, mode, opt)
		next.Reports = append(out.Reports, next.Reports...)
		return next, err
	}
	if err := e.useSource(j, found, false); err != nil {
		return Outcome{}, err
	}
	// The grace period is worked out once, before the plan that shows it
	// (it may log in to read the refresh tokens' lifetime).
	grace := e.grace(ctx, mode, opt.Grace)
	plan, fs, old, next, err := e.plan(ctx, mode, grace, opt)
	if err != nil || opt.DryRun {
		return Outcome{DryRun: opt.DryRun, Plan: plan}, err
	}
	for _, line := range e.op.notes {
		e.say("%s", line) // who deploys the fleet, and the source written with it
	}
	g, base, err := e.runBaseline(ctx, old, func(probes.Result) (bool, string) {
		return mode == journal.ModeEmergency, "an emergency replaces a leaked secret even while the API is down"
	})
	if err != nil {
		return Outcome{Baseline: base}, err
	}
	g.failOnFindings = opt.FailOnFindings
	now := e.now().UTC()
	was, wasFound := j, found
	j = journal.Journal{ID: journal.NewRotationID(now), Mode: mode, OldFingerprint: old.Fingerprint(), NewFingerprint: next.Fingerprint(),
		StartedAt: now, Reason: e.Reason, Baseline: journalled(g.baseline)}
	e.journalSource(&j)
	if err := e.Audit.Check(); err != nil {
		return Outcome{Baseline: base}, err
	}
	e.audit(j, "baseline", "ok", baselineMessage(base, old), base)
	unlock, err := e.lock(ctx, "rotate --mode "+string(mode), j)
	if err != nil {
		return Outcome{Baseline: base}, err
	}
	defer unlock()
	if err := e.journalUnchanged(ctx, was, wasFound); err != nil {
		return Outcome{Baseline: base}, err
	}
	if err := e.claim(ctx, j, fs); err != nil {
		return Outcome{Baseline: base}, interrupted(ctx, err)
	}
	watch := e.snapshotBefore(ctx)
	if mode == journal.ModeZeroDowntime {
		j.GraceDeadline = now.Add(grace)
	}
	if err := e.Backup.Store(ctx, old, next); err != nil {
		return Outcome{Journal: j, Baseline: base}, interrupted(ctx, fmt.Errorf("backing up before any change: %w", err))
	}
	if err := e.stageStore(ctx, j, old, next); err != nil {
		return Outcome{Journal: j, Baseline: base}, interrupted(ctx, err)
	}
	if err := e.step(ctx, &j, journal.PhaseBackedUp, "ok", fmt.Sprintf("old %s and new %s stored in %s", old, next, e.Backup.Name), nil); err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	out, err := e.run(ctx, j, old, next, g, opt)
	out.Baseline = base
	if err == nil {
		err = e.compareAfter(ctx, &out, watch, out.Journal.Phase == journal.PhaseCompleted, g)
	}
	if err == nil {
		err = g.findingsError()
	}
	return out, err
}

// resumeRotation finishes the unfinished rotation j: a baseline against
// what the fleet holds in j's phase (which must log in, unless the
// rotation is an emergency or a rollback), the lock, then the phases left,
// judged against the baseline journalled when the operation began.
func (e *Engine) resumeRotation(ctx context.Context, j journal.Journal, opt RotateOptions) (Outcome, error) {
	if err := e.useSource(j, true, true); err != nil {
		return Outcome{Journal: j}, err
	}
	old, next, err := e.secretsOf(ctx, j)
	if err != nil {
		return Outcome{Journal: j}, err
	}
	if err := e.checkFleetOwners(ctx); err != nil {
		return Outcome{Journal: j}, err
	}
	g, base, err := e.runBaseline(ctx, target(j.Phase, old, next).primary, goAheadFor(j))
	if err != nil {
		return Outcome{Journal: j, Baseline: base}, fmt.Errorf("%w; rotation %s stays in phase %s", err, j.ID, j.Phase)
	}
	if j.Baseline != nil {
		g.baseline = fromJournal(j.Baseline)
	}
	g.failOnFindings = opt.FailOnFindings
	if err := e.Audit.Check(); err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	unlock, err := e.lock(ctx, "rotate (resuming "+j.ID+")", j)
	if err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	defer unlock()
	if err := e.journalUnchanged(ctx, j, true); err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	e.say("resuming rotation %s (%s), stopped in phase %s", j.ID, j.Mode, j.Phase)
	if j.Phase == journal.PhaseStarted {
		j.Phase = journal.PhaseBackedUp
	}
	out, err := e.run(ctx, j, old, next, g, opt)
	out.Baseline = base
	if err == nil {
		err = g.findingsError()
	}
	return out, err
}

// goAheadFor says when a resumed operation goes on although the baseline
// could not log in: an emergency always; a rollback when the API did not
// answer (a change may have broken it), never on a wrong answer.
func goAheadFor(j journal.Journal) func(probes.Result) (bool, string) {
	return func(login probes.Result) (bool, string) {
		switch {
		case j.Mode == journal.ModeEmergency && j.Phase != journal.PhaseRollingBack:
			return true, "an emergency replaces a leaked secret even while the API is down"
		case j.Phase == journal.PhaseRollingBack && login.Outcome == probes.Error:
			return true, "a rollback undoes a change that may have broken the API"
		}
		return false, ""
	}
}

// journalUnchanged refuses when the journal is no longer what the
// operation read before taking the lock: another operator's run finished
// in between.
func (e *Engine) journalUnchanged(ctx context.Context, was journal.Journal, wasFound bool) error {
	now, found, err := e.Backup.ReadJournal(ctx)
	if err != nil {
		return fmt.Errorf("reading the rotation journal: %w", err)
	}
	if found != wasFound || now.ID != was.ID || now.Phase != was.Phase || !now.UpdatedAt.Equal(was.UpdatedAt) {
		return fmt.Errorf("%w: the journal changed while this run prepared (rotation %s is now %s): another operator ran; nothing was changed, look at 'valine-check status' and run again",
			ErrLocked, orDash(now.ID), orDash(string(now.Phase)))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// baselineMessage says what the baseline found, for the audit.
func baselineMessage(rep *probes.Report, current secret.Secret) string {
	if rep == nil {
		return "no verifier: no baseline"
	}
	found := probes.BaselineOf(*rep).Findings()
	if len(found) == 0 {
		return fmt.Sprintf("against %s: no findings", current)
	}
	return fmt.Sprintf("against %s: pre-existing findings %v", current, found)
}

// plan checks everything that can be checked before a change and says what
// the rotation would do.
func (e *Engine) plan(ctx context.Context, mode journal.Mode, grace time.Duration, opt RotateOptions) (plan []string, fs FleetState, old, next secret.Secret, err error) {
	fs, err = e.inspect(ctx, e.Fleet)
	if err != nil {
		return nil, fs, old, next, fmt.Errorf("inspecting the fleet: %w", err)
	}
	if err := e.checkOwners(fs); err != nil {
		return nil, fs, old, next, err
	}
	stacks := DescribeDeploys(ctx, e.Deploy, fs, e.Profile)
	if err := checkDeploy(stacks, e.op.source, e.Profile.SecretVar, e.AllowDeployDrift); err != nil {
		return nil, fs, old, next, err
	}
	var stored, storedSecondary secret.Secret
	if e.op.store != nil {
		if stored, storedSecondary, err = e.op.store.Read(ctx); err != nil {
			return nil, fs, old, next, fmt.Errorf("reading the source of truth %s: %w", e.op.source, err)
		}
	}
	if e.op.runtime() {
		old = stored
		if shape, problem := SecretShape(string(old.Reveal())); problem != "" && !e.Profile.OwnSecretVar() {
			return nil, fs, old, next, fmt.Errorf("%w: %s (%s) does not look like an HMAC signing secret: is the source right? Nothing was changed", ErrSecretShape, e.op.source, shape)
		}
	} else {
		var secondary secret.Secret
		var ok bool
		old, secondary, ok = fs.Secrets()
		switch {
		case !ok:
			return nil, fs, old, next, fmt.Errorf("%w: %s; make them agree (or finish the rotation that split them) before rotating", ErrDrift, fs.Drift())
		case !secondary.IsEmpty():
			return nil, fs, old, next, fmt.Errorf("the fleet already has a secondary secret %s (a grace period nobody journalled?): remove it or finish that rotation first", secondary)
		case old.IsEmpty():
			return nil, fs, old, next, fmt.Errorf("%w: the fleet's %s is empty, so there is no secret to back up; set one by hand first", ErrEmptySecret, e.Profile.SecretVar)
		case e.op.store != nil && !stored.Equal(old):
			return nil, fs, old, next, fmt.Errorf("%w: every function holds %s but %s holds %s: a deploy or an edit by hand has split them. Make them agree first (deploy from the source, or put the fleet's secret in it); nothing was changed",
				ErrStoreMismatch, old, e.op.source, stored)
		}
	}
	next = opt.New
	if next.IsEmpty() {
		if next, err = GenerateSecret(); err != nil {
			return nil, fs, old, next, err
		}
	}
	previous, err := e.Backup.Previous(ctx)
	if err != nil && !errors.Is(err, ErrNoBackup) && !errors.Is(err, ErrBadBackup) {
		return nil, fs, old, next, fmt.Errorf("reading backup %s: %w", e.Backup.Name, err)
	}
	if err := ValidateNew(next, old, previous); err != nil {
		return nil, fs, old, next, err
	}
	if !e.Profile.OwnSecretVar() {
		for _, f := range fs.Functions {
			if shape, problem := SecretShape(string(f.Primary.Reveal())); problem != "" {
				return nil, fs, old, next, fmt.Errorf("%w: %s on %s (%s) does not look like an HMAC signing secret: is the secret variable right? Nothing was changed",
					ErrSecretShape, e.Profile.SecretVar, f.Name, shape)
			}
		}
	}
	if h := fs.Headroom(e.Profile, len(next.Reveal()), mode == journal.ModeZeroDowntime); h < 0 && !e.op.runtime() {
		what := "the new " + e.Profile.SecretVar
		if mode == journal.ModeZeroDowntime {
			what += " and " + e.Profile.SecondaryVar
		}
		return nil, fs, old, next, fmt.Errorf("%w: %s would leave %d bytes on the fullest function", ErrEnvTooLarge, what, h)
	}
	e.op.notes = nil
	for _, d := range stacks {
		e.op.notes = append(e.op.notes, d.String(e.Profile.SecretVar))
	}
	if e.op.store != nil {
		e.op.notes = append(e.op.notes, e.storePlan(stored, storedSecondary, next)...)
	}
	plan = append(plan, e.op.notes...)
	plan = append(plan,
		fmt.Sprintf("baseline: login, refresh and the security battery against %s (refused if the probe cannot log in%s)", old, emergencyNote(mode)),
		fmt.Sprintf("back up old %s and new %s in Secrets Manager secret %s", old, next, e.Backup.Name))
	switch mode {
	case journal.ModeZeroDowntime:
		plan = append(plan,
			fmt.Sprintf("set %s=%s on %d functions and prove the API accepts it", e.Profile.SecondaryVar, next, len(e.Fleet)),
			fmt.Sprintf("set %s=%s, %s=%s on %d functions; verify in grace mode", e.Profile.SecretVar, next, e.Profile.SecondaryVar, old, len(e.Fleet)),
			fmt.Sprintf("grace period %s, then 'valine-check finalize'", grace))
	default:
		plan = append(plan, fmt.Sprintf("set %s=%s on %d functions (no secondary); verify in strict mode", e.Profile.SecretVar, next, len(e.Fleet)))
	}
	for _, f := range fs.Functions {
		if e.op.runtime() {
			plan = append(plan, fmt.Sprintf("  %s: reads %s at run time; not written", f.Name, e.op.source))
			continue
		}
		shape, _ := SecretShape(string(f.Primary.Reveal()))
		plan = append(plan, fmt.Sprintf("  %s: %s %s (%s) → %s, %d other variables kept", f.Name, e.Profile.SecretVar, f.Primary, shape, next, f.OtherVars))
	}
	return plan, fs, old, next, nil
}

func emergencyNote(mode journal.Mode) string {
	if mode == journal.ModeEmergency {
		return "; an emergency goes ahead with a warning"
	}
	return ""
}

// grace is the grace period: asked (or the default), never shorter than the
// refresh tokens' lifetime when that can be read.
func (e *Engine) grace(ctx context.Context, mode journal.Mode, asked time.Duration) time.Duration {
	if mode != journal.ModeZeroDowntime {
		return 0
	}
	if asked <= 0 {
		asked = DefaultGrace
	}
	if e.Verifier != nil {
		if ttl, ok := e.Verifier.RefreshLifetime(ctx); ok && ttl > asked {
			e.say("grace period raised from %s to the refresh tokens' lifetime %s", asked, ttl)
			return ttl
		}
	}
	return asked
}

// run drives the journal's phase to the end of the operation: each phase
// first puts its target state on every function (idempotent, so a resumed
// phase converges), then does its work and moves on.
func (e *Engine) run(ctx context.Context, j journal.Journal, old, next secret.Secret, g *gate, opt RotateOptions) (out Outcome, err error) {
	defer func() { out.Journal = j }() // whichever way it ends, report the last phase
	if g.since.IsZero() {
		// The log window of this run's verifications starts before its
		// first write (a resumed phase converges with one).
		g.since = e.now()
	}
	for {
		out.Journal = j
		if j.Phase.Terminal() {
			return out, nil
		}
		// backed-up changed no function (a stop inside the next step is
		// journalled as that step), so there is nothing to converge.
		if j.Phase != journal.PhaseBackedUp {
			if err := e.apply(ctx, j, target(j.Phase, old, next)); err != nil {
				return out, e.applyFailed(ctx, &j, old, next, err)
			}
		}
		switch j.Phase {
		case journal.PhaseBackedUp:
			nextPhase, msg := journal.PhaseApplied, fmt.Sprintf("replacing %s on %d functions with %s, no secondary", e.Profile.SecretVar, len(e.Fleet), next)
			if j.Mode == journal.ModeZeroDowntime {
				nextPhase, msg = journal.PhaseProbing, fmt.Sprintf("giving %d functions %s=%s to prove the API honours a secondary", len(e.Fleet), e.Profile.SecondaryVar, next)
			}
			if err := e.step(ctx, &j, nextPhase, "ok", msg, nil); err != nil {
				return out, err
			}
		case journal.PhaseProbing:
			if done, err := e.probeSecondary(ctx, &j, old, next, g); done || err != nil {
				return out, err
			}
		case journal.PhaseStaged, journal.PhaseApplied, journal.PhaseFinalizing:
			expect := probes.Strict
			if j.Phase == journal.PhaseStaged {
				expect = probes.Grace
			}
			rep, jd := e.verify(ctx, g, expect, old, next)
			out.Reports = append(out.Reports, rep)
			if ctx.Err() != nil {
				return out, e.pending(ctx, &j, "", &rep) // interrupted: no verdict to act on
			}
			switch jd.Verdict() {
			case probes.Fail:
				return out, e.verificationFailed(ctx, &j, old, next, g, rep, opt.NoRollback)
			case probes.Error:
				return out, e.pending(ctx, &j, "the verification could not tell ("+rep.Gate.Summary()+")", &rep)
			}
			g.note(jd)
			done := journal.PhaseCompleted
			msg := "verified in strict mode: old tokens are refused; " + rep.Gate.Summary()
			if j.Phase == journal.PhaseStaged {
				done = journal.PhaseGrace
				msg = fmt.Sprintf("verified in grace mode (%s); finalize after %s", rep.Gate.Summary(), j.GraceDeadline.Format(time.RFC3339))
			}
			if err := e.step(ctx, &j, done, "ok", msg, &rep); err != nil {
				return out, err
			}
			if done == journal.PhaseGrace {
				out.Journal = j
				return out, nil
			}
		case journal.PhaseGrace:
			return out, nil
		case journal.PhaseRollingBack:
			rep, jd := e.verify(ctx, g, probes.Strict, next, old)
			out.Reports = append(out.Reports, rep)
			if jd.Verdict() == probes.Error || ctx.Err() != nil {
				return out, e.pending(ctx, &j, "the verification of the rollback could not tell ("+rep.Gate.Summary()+")", &rep)
			}
			// The backup's stages name what the fleet holds: AWSCURRENT is
			// live again.
			if err := e.recordRollback(ctx, old, next); err != nil {
				return out, fmt.Errorf("every function is back on %s, but %w; re-run to finish", old, err)
			}
			outcome, msg := "ok", fmt.Sprintf("every function is back on %s (AWSCURRENT in %s again); tokens signed with %s are refused; %s", old, e.Backup.Name, next, rep.Gate.Summary())
			var failure error
			if jd.Verdict() == probes.Fail {
				outcome, msg = "verification failed", fmt.Sprintf("every function is back on %s (AWSCURRENT in %s again), but verification failed: %s", old, e.Backup.Name, rep.Gate.Summary())
				failure = fmt.Errorf("%w after the rollback: %s", ErrVerificationFailed, rep.Gate.Summary())
			} else {
				g.note(jd)
			}
			if err := e.step(ctx, &j, journal.PhaseRolledBack, outcome, msg, &rep); err != nil {
				return out, errors.Join(failure, err)
			}
			if failure != nil {
				out.Journal = j
				return out, failure
			}
		default:
			return out, fmt.Errorf("journal of %s has phase %q, which this version cannot resume", j.ID, j.Phase)
		}
	}
}

// probeSecondary proves, in phase probing, that the API honours the new
// secret given as the secondary. Only the API's rejection of a token
// signed with it is a "no" (the rotation is abandoned, every function
// restored); a login the change broke rolls back too; anything that could
// not tell leaves the harmless probing state with the verification
// pending. done reports that the operation ends here.
func (e *Engine) probeSecondary(ctx context.Context, j *journal.Journal, old, next secret.Secret, g *gate) (done bool, err error) {
	rep := e.propagatingVerifier().Honours(ctx, next, g.deliberate)
	if ctx.Err() != nil {
		return true, e.pending(ctx, j, "", &rep)
	}
	login, _ := rep.Result("login")
	honoured, _ := rep.Result(CheckSecretHonoured)
	switch {
	case honoured.Outcome == probes.Pass:
		return false, e.step(ctx, j, journal.PhaseStaged, "ok", "the API honours the secondary; swapping primary and secondary", &rep)
	case login.Outcome == probes.Fail, honoured.Outcome == probes.Fail:
		if err := e.apply(ctx, *j, target(journal.PhaseAbandoned, old, next)); err != nil {
			return true, e.applyFailed(ctx, j, old, next, err)
		}
		cause, outcome, wrap := honoured.Reason, "refused", ErrNoDualSecret
		if login.Outcome == probes.Fail {
			cause, outcome, wrap = "after the secondary was set, login failed: "+login.Reason, "verification failed", ErrVerificationFailed
		}
		msg := fmt.Sprintf("%s; every function is back on %s alone", cause, old)
		if wrap == ErrNoDualSecret {
			msg += "; rotate with --mode maintenance instead"
		}
		if err := e.step(ctx, j, journal.PhaseAbandoned, outcome, msg, &rep); err != nil {
			return true, err
		}
		return true, fmt.Errorf("%w: %s", wrap, msg)
	}
	why := honoured.Reason
	if login.Outcome != probes.Pass {
		why = "login: " + login.Reason
	}
	return true, e.pending(ctx, j, "could not tell whether the API honours the secondary ("+why+"); the functions hold the old primary and the new secondary, which changes nothing for users", &rep)
}

// verificationFailed acts on a verification that found a failure the
// change caused: it rolls back, unless told not to or the rotation is an
// emergency, which never restores the compromised secret by itself.
func (e *Engine) verificationFailed(ctx context.Context, j *journal.Journal, old, next secret.Secret, g *gate, rep probes.Report, noRollback bool) error {
	failure := fmt.Errorf("%w in phase %s: %s", ErrVerificationFailed, j.Phase, rep.Gate.Summary())
	what := failure.Error()
	switch {
	case j.Mode == journal.ModeEmergency && j.Phase == journal.PhaseApplied:
		msg := what + fmt.Sprintf("; the new secret %s stays (an emergency never restores the compromised secret %s by itself): fix what failed and run the same command again to verify, or 'valine-check rollback' to restore the compromised secret", next, old)
		if err := e.mark(ctx, j, journal.VerificationFailed, "verification failed", msg, &rep); err != nil {
			return errors.Join(failure, err)
		}
		return fmt.Errorf("%w; the new secret stays (emergency): fix what failed and re-run, or 'valine-check rollback' restores the compromised secret", failure)
	case noRollback:
		if err := e.mark(ctx, j, journal.VerificationFailed, "verification failed", what+"; left in place (--no-rollback)", &rep); err != nil {
			return errors.Join(failure, err)
		}
		return fmt.Errorf("%w; left in place (--no-rollback): run 'valine-check rollback' or fix and re-run", failure)
	case j.Phase == journal.PhaseFinalizing:
		// Undoing a finalize is going back to the grace period.
		if err := e.apply(ctx, *j, target(journal.PhaseGrace, old, next)); err != nil {
			return fmt.Errorf("%w; restoring the secondary also failed: %w", failure, err)
		}
		if err := e.step(ctx, j, journal.PhaseGrace, "rolled back", what+"; the secondary is restored, the grace period goes on", &rep); err != nil {
			return errors.Join(failure, err)
		}
		return fmt.Errorf("%w; rolled back to the grace period", failure)
	}
	if err := e.step(ctx, j, journal.PhaseRollingBack, "verification failed", what+"; rolling back", &rep); err != nil {
		return errors.Join(failure, err)
	}
	back, err := e.run(ctx, *j, old, next, g, RotateOptions{})
	*j = back.Journal
	switch {
	case err != nil && j.Phase == journal.PhaseRolledBack:
		return fmt.Errorf("%w; rolled back to %s, but the rollback did not verify either: %v", failure, old, err)
	case err != nil:
		return fmt.Errorf("%w; rollback: %w", failure, err)
	}
	return fmt.Errorf("%w; rolled back to %s", failure, old)
}

// applyFailed is called when the fleet could not be put in a phase's state
// even after the SDK's retries. A rotation that had started changing
// functions is rolled back (an emergency is not: the compromised secret is
// never restored by itself); if that fails too, the journal keeps the
// phase and the next run resumes it. Either way the error says so.
func (e *Engine) applyFailed(ctx context.Context, j *journal.Journal, old, next secret.Secret, cause error) error {
	if ctx.Err() != nil {
		// Interrupted while updating: nothing failed, the journal keeps the
		// phase, and a re-run puts its state on every function.
		e.audit(*j, string(j.Phase), "interrupted", "interrupted while updating the functions; the journal keeps the phase", nil)
		return fmt.Errorf("%w while updating the functions: the journal keeps phase %s; run the same command again to finish", ErrInterrupted, j.Phase)
	}
	e.audit(*j, string(j.Phase), "failed", cause.Error(), nil)
	switch {
	case j.Mode == journal.ModeEmergency && j.Phase == journal.PhaseApplied:
		return fmt.Errorf("%w; the journal keeps phase %s: re-run to finish putting the new secret everywhere (an emergency never restores the compromised secret by itself)", cause, j.Phase)
	case j.Phase == journal.PhaseProbing, j.Phase == journal.PhaseStaged, j.Phase == journal.PhaseApplied:
		if err := e.step(ctx, j, journal.PhaseRollingBack, "failed", "could not update every function; rolling back", nil); err != nil {
			return errors.Join(cause, err)
		}
		if err := e.apply(ctx, *j, target(journal.PhaseRollingBack, old, next)); err != nil {
			return fmt.Errorf("%w; rolling back failed too (%v): the fleet is half-rotated, 'valine-check status' shows it and re-running finishes the rollback", cause, err)
		}
		if err := e.recordRollback(ctx, old, next); err != nil {
			return fmt.Errorf("%w; every function is back on %s, but %v: re-run to finish", cause, old, err)
		}
		if err := e.step(ctx, j, journal.PhaseRolledBack, "rolled back", fmt.Sprintf("every function is back on %s", old), nil); err != nil {
			return errors.Join(cause, err)
		}
		return fmt.Errorf("%w; rolled back: every function is back on %s", cause, old)
	}
	return fmt.Errorf("%w; the journal keeps phase %s: re-run to finish", cause, j.Phase)
}
