package rotate

import (
	"context"
	"fmt"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// FinalizeOptions tune Finalize.
type FinalizeOptions struct {
	// Force finalizes before the grace deadline.
	Force bool
	// NoRollback leaves a finalize that failed verification in place.
	NoRollback bool
	// DryRun plans and changes nothing.
	DryRun bool
	// FailOnFindings: see RotateOptions.
	FailOnFindings bool
}

// Finalize ends a zero-downtime rotation's grace period: the secondary is
// removed from every function and the old secret is verified refused.
// Before the deadline it refuses unless Force. An unfinished step of the
// rotation (a stop before the grace period began) is resumed first. Like
// every change it runs a baseline first and refuses, writing nothing, when
// the probe cannot log in.
func (e *Engine) Finalize(ctx context.Context, opt FinalizeOptions) (Outcome, error) {
	mark := len(e.splits)
	out, err := e.finalize(ctx, opt)
	out.Splits = e.splitsSince(mark)
	return out, err
}

func (e *Engine) finalize(ctx context.Context, opt FinalizeOptions) (Outcome, error) {
	j, found, err := e.Backup.ReadJournal(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("reading the rotation journal: %w", err)
	}
	if !found || j.Phase.Terminal() {
		return Outcome{Journal: j}, fmt.Errorf("%w: there is no grace period to finalize", ErrNoRotation)
	}
	if err := e.useSource(j, true, true); err != nil {
		return Outcome{Journal: j}, err
	}
	var resumed []probes.Report
	if j.Phase != journal.PhaseGrace && j.Phase != journal.PhaseFinalizing {
		if opt.DryRun {
			return Outcome{Journal: j, DryRun: true, Plan: []string{fmt.Sprintf("resume rotation %s from phase %s first", j.ID, j.Phase)}}, nil
		}
		e.say("rotation %s stopped in phase %s: resuming it first", j.ID, j.Phase)
		out, err := e.resumeRotation(ctx, j, RotateOptions{NoRollback: opt.NoRollback})
		if err != nil {
			return out, err
		}
		if out.Journal.Phase != journal.PhaseGrace {
			return out, fmt.Errorf("%w: the resumed rotation %s ended in phase %s, so there is no grace period to finalize", ErrNoRotation, j.ID, out.Journal.Phase)
		}
		j, resumed = out.Journal, out.Reports
	}
	if j.Phase == journal.PhaseGrace {
		if left := j.GraceDeadline.Sub(e.now()); left > 0 && !opt.Force {
			return Outcome{Journal: j, Reports: resumed}, fmt.Errorf("%w: %s left (until %s); tokens issued before the rotation may still be in use; --force finalizes now",
				ErrGraceNotOver, left.Round(time.Minute), j.GraceDeadline.Format(time.RFC3339))
		}
	}
	old, next, err := e.secretsOf(ctx, j)
	if err != nil {
		return Outcome{Journal: j}, err
	}
	if opt.DryRun {
		return Outcome{Journal: j, DryRun: true, Plan: []string{
			fmt.Sprintf("baseline: login, refresh and the security battery against %s (refused if the probe cannot log in)", next),
			e.op.describe(fmt.Sprintf("remove %s (%s) from %d functions, keeping %s=%s; verify in strict mode", e.Profile.SecondaryVar, old, len(e.Fleet), e.Profile.SecretVar, next)),
		}}, nil
	}
	if err := e.checkFleetOwners(ctx); err != nil {
		return Outcome{Journal: j}, err
	}
	g, base, err := e.runBaseline(ctx, next, nil)
	if err != nil {
		return Outcome{Journal: j, Baseline: base, Reports: resumed}, err
	}
	if j.Phase == journal.PhaseFinalizing && j.Baseline != nil {
		g.baseline = fromJournal(j.Baseline) // judge a resumed finalize by its own baseline
	}
	g.failOnFindings = opt.FailOnFindings
	if j.Phase == journal.PhaseGrace {
		e.audit(j, "baseline", "ok", baselineMessage(base, next), base)
	}
	if err := e.Audit.Check(); err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	unlock, err := e.lock(ctx, "finalize", j)
	if err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	defer unlock()
	if err := e.journalUnchanged(ctx, j, true); err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	watch := e.snapshotBefore(ctx)
	if j.Phase == journal.PhaseGrace {
		j.Baseline = journalled(g.baseline)
		if err := e.step(ctx, &j, journal.PhaseFinalizing, "ok", "removing the secondary", nil); err != nil {
			return Outcome{Journal: j, Baseline: base}, err
		}
	}
	out, err := e.run(ctx, j, old, next, g, RotateOptions{NoRollback: opt.NoRollback})
	out.Baseline, out.Reports = base, append(resumed, out.Reports...)
	if err == nil {
		err = e.compareAfter(ctx, &out, watch, true, g)
	}
	if err == nil {
		err = g.findingsError()
	}
	return out, err
}

// RollbackOptions tune Rollback.
type RollbackOptions struct {
	// DryRun plans and changes nothing.
	DryRun bool
	// FailOnFindings: see RotateOptions.
	FailOnFindings bool
}

// Rollback puts the previous secret back on every function, from the
// backup, verifies that tokens signed with the rolled-back secret are
// refused, and makes the backup's AWSCURRENT the restored secret again. It
// refuses when the journal shows nothing to undo, and before any change
// when the backup does not hold the journalled secrets (or holds an empty
// or short one), or when the baseline gets a wrong answer at login (a
// wrong password); an API that does not answer at all does not stop it,
// since a broken API may be why it runs. A verification that fails after
// the rollback is ErrVerificationFailed. Rolling back an emergency
// rotation restores the compromised secret: callers confirm that first.
func (e *Engine) Rollback(ctx context.Context, opt RollbackOptions) (Outcome, error) {
	mark := len(e.splits)
	out, err := e.rollback(ctx, opt)
	out.Splits = e.splitsSince(mark)
	return out, err
}

func (e *Engine) rollback(ctx context.Context, opt RollbackOptions) (Outcome, error) {
	j, found, err := e.Backup.ReadJournal(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("reading the rotation journal: %w", err)
	}
	if !found {
		return Outcome{}, fmt.Errorf("%w: backup %s has no rotation journal", ErrNothingToRollBack, e.Backup.Name)
	}
	switch j.Phase {
	case journal.PhaseRolledBack, journal.PhaseAbandoned:
		return Outcome{Journal: j}, fmt.Errorf("%w: rotation %s is already %s", ErrNothingToRollBack, j.ID, j.Phase)
	}
	if err := e.useSource(j, true, true); err != nil {
		return Outcome{Journal: j}, err
	}
	old, next, err := e.secretsOf(ctx, j)
	if err != nil {
		return Outcome{Journal: j}, err
	}
	if opt.DryRun {
		plan := []string{e.op.describe(fmt.Sprintf("set %s=%s (from backup %s, AWSPREVIOUS) on %d functions, removing %s; verify tokens signed with %s are refused; AWSCURRENT becomes %s again",
			e.Profile.SecretVar, old, e.Backup.Name, len(e.Fleet), orNothing(e.Profile.SecondaryVar), next, old))}
		if j.Mode == journal.ModeEmergency {
			plan = append(plan, fmt.Sprintf("WARNING: rotation %s was an emergency: %s is the compromised secret", j.ID, old))
		}
		return Outcome{Journal: j, DryRun: true, Plan: plan}, nil
	}
	if err := e.checkFleetOwners(ctx); err != nil {
		return Outcome{Journal: j}, err
	}
	g, base, err := e.runBaseline(ctx, target(j.Phase, old, next).primary, func(login probes.Result) (bool, string) {
		return login.Outcome == probes.Error, "a rollback undoes a change that may have broken the API"
	})
	if err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	if j.Phase == journal.PhaseRollingBack && j.Baseline != nil {
		g.baseline = fromJournal(j.Baseline)
	}
	g.failOnFindings = opt.FailOnFindings
	if j.Phase != journal.PhaseRollingBack {
		e.audit(j, "baseline", "ok", baselineMessage(base, target(j.Phase, old, next).primary), base)
	}
	if err := e.Audit.Check(); err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	unlock, err := e.lock(ctx, "rollback", j)
	if err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	defer unlock()
	if err := e.journalUnchanged(ctx, j, true); err != nil {
		return Outcome{Journal: j, Baseline: base}, err
	}
	watch := e.snapshotBefore(ctx)
	if j.Phase != journal.PhaseRollingBack {
		was := j.Phase
		j.Baseline = journalled(g.baseline)
		if err := e.step(ctx, &j, journal.PhaseRollingBack, "ok", fmt.Sprintf("rolling back rotation %s (was %s)", j.ID, was), nil); err != nil {
			return Outcome{Journal: j, Baseline: base}, err
		}
	}
	out, err := e.run(ctx, j, old, next, g, RotateOptions{})
	out.Baseline = base
	if err == nil {
		err = e.compareAfter(ctx, &out, watch, true, g)
	}
	if err == nil {
		err = g.findingsError()
	}
	return out, err
}

// recordRollback makes the backup's stages name what the fleet holds after
// a rollback: AWSCURRENT the restored secret, AWSPREVIOUS the one rolled
// back from (which the next rotation then may not reuse). A legacy secret
// shorter than MinSecretBytes is never stored as current: the backup then
// keeps its stages, and says so.
func (e *Engine) recordRollback(ctx context.Context, restored, removed secret.Secret) error {
	if tooShort(restored) {
		e.say("warning: the restored secret %s is shorter than %d bytes, so backup %s keeps AWSCURRENT %s", restored, MinSecretBytes, e.Backup.Name, removed)
		return nil
	}
	if err := e.Backup.Store(ctx, removed, restored); err != nil {
		return fmt.Errorf("recording the rollback in backup %s: %w", e.Backup.Name, err)
	}
	return nil
}

func orNothing(v string) string {
	if v == "" {
		return "no secondary"
	}
	return "the secondary " + v
}
