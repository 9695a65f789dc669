package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valine/valine-check/probes"
)

// DefaultGrace is the zero-downtime grace period when none is given: the
// runbook's refresh-token lifetime.
const DefaultGrace = 7 * 24 * time.Hour

// RotateOptions tune Rotate.
type RotateOptions struct {
	// Grace is the zero-downtime grace period (default DefaultGrace); it is
	// raised to the refresh-token lifetime when that is longer.
	Grace time.Duration
	// NoRollback leaves a change that failed verification in place.
	NoRollback bool
	// DryRun plans and changes nothing.
	DryRun bool
	// New is the new secret; empty means generate one.
	New probes.Secret
}

// Rotate runs a rotation in mode, or, when the journal shows an unfinished
// one, resumes that one (whatever mode was asked) and says so.
//
// Zero-downtime: back up; give every function the new secret as its
// secondary and prove the API accepts tokens signed with it (refusing, with
// every function restored, when it does not); swap to new primary + old
// secondary; verify in grace mode; record the grace deadline. Finalize ends
// it. Maintenance and emergency: back up; new primary, no secondary; verify
// in strict mode. A verification failure rolls back unless NoRollback.
func (e *Engine) Rotate(ctx context.Context, mode Mode, opt RotateOptions) (Outcome, error) {
	if !opt.DryRun {
		unlock, err := e.lock(ctx, "rotate --mode "+string(mode))
		if err != nil {
			return Outcome{}, err
		}
		defer unlock()
	}
	j, found, err := e.Backup.ReadJournal(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("reading the rotation journal: %w", err)
	}
	if found && j.Phase == PhaseGrace {
		return Outcome{Journal: j}, fmt.Errorf("%w: rotation %s is in its grace period until %s; finalize it (--force ends it now) or roll it back before a new %s rotation",
			ErrGraceInProgress, j.ID, j.GraceDeadline.Format(time.RFC3339), mode)
	}
	if found && !j.Phase.Terminal() {
		if opt.DryRun {
			return Outcome{Journal: j, DryRun: true, Plan: []string{
				fmt.Sprintf("resume rotation %s (%s), stopped in phase %s, to its end first", j.ID, j.Mode, j.Phase)}}, nil
		}
		e.say("resuming rotation %s (%s), stopped in phase %s", j.ID, j.Mode, j.Phase)
		out, err := e.resume(ctx, j, opt)
		if err != nil || j.Mode == mode {
			return out, err // running the same command again finishes it: that is all
		}
		if !out.Journal.Phase.Terminal() {
			return out, fmt.Errorf("%w: the resumed rotation %s is in phase %s; your %s rotation did not start", ErrGraceInProgress, j.ID, out.Journal.Phase, mode)
		}
		e.say("rotation %s is %s; starting the %s rotation asked for", j.ID, out.Journal.Phase, mode)
	}
	// The grace period is worked out once, before the plan that shows it
	// (it may log in to read the refresh tokens' lifetime).
	grace := e.grace(ctx, mode, opt.Grace)
	plan, old, next, err := e.plan(ctx, mode, grace, opt)
	if err != nil || opt.DryRun {
		return Outcome{DryRun: opt.DryRun, Plan: plan}, err
	}
	watch := e.snapshotBefore(ctx)
	now := e.now().UTC()
	j = Journal{ID: NewRotationID(now), Mode: mode, OldFingerprint: old.Fingerprint(), NewFingerprint: next.Fingerprint(),
		StartedAt: now, Reason: e.Reason}
	if mode == ModeZeroDowntime {
		j.GraceDeadline = now.Add(grace)
	}
	if err := e.Backup.Store(ctx, old, next); err != nil {
		return Outcome{Journal: j}, fmt.Errorf("backing up before any change: %w", err)
	}
	if err := e.step(ctx, &j, PhaseBackedUp, "ok", fmt.Sprintf("old %s and new %s stored in %s", old, next, e.Backup.Name), nil); err != nil {
		return Outcome{Journal: j}, err
	}
	out, err := e.run(ctx, j, old, next, opt)
	if err == nil {
		err = e.compareAfter(ctx, &out, watch, out.Journal.Phase == PhaseCompleted)
	}
	return out, err
}

// plan checks everything that can be checked before a change and says what
// the rotation would do.
func (e *Engine) plan(ctx context.Context, mode Mode, grace time.Duration, opt RotateOptions) (plan []string, old, next probes.Secret, err error) {
	if mode == ModeZeroDowntime && e.Profile.SecondaryVar == "" {
		return nil, old, next, fmt.Errorf("%w: profile %s names no secondary variable; use --mode maintenance", ErrNoDualSecret, e.Profile.Name)
	}
	fs, err := Inspect(ctx, e.Lambda, e.Fleet, e.Profile, e.concurrency())
	if err != nil {
		return nil, old, next, fmt.Errorf("inspecting the fleet: %w", err)
	}
	old, secondary, ok := fs.Secrets()
	switch {
	case !ok:
		return nil, old, next, fmt.Errorf("%w: %s; make them agree (or finish the rotation that split them) before rotating", ErrDrift, fs.Drift())
	case !secondary.IsEmpty():
		return nil, old, next, fmt.Errorf("the fleet already has a secondary secret %s (a grace period nobody journalled?): remove it or finish that rotation first", secondary)
	case old.IsEmpty():
		return nil, old, next, fmt.Errorf("%w: the fleet's %s is empty, so there is no secret to back up; set one by hand first", ErrEmptySecret, e.Profile.SecretVar)
	}
	next = opt.New
	if next.IsEmpty() {
		if next, err = GenerateSecret(); err != nil {
			return nil, old, next, err
		}
	}
	previous, err := e.Backup.Previous(ctx)
	if err != nil && !errors.Is(err, ErrNoBackup) && !errors.Is(err, ErrBadBackup) {
		return nil, old, next, fmt.Errorf("reading backup %s: %w", e.Backup.Name, err)
	}
	if err := ValidateNew(next, old, previous); err != nil {
		return nil, old, next, err
	}
	if h := fs.Headroom(e.Profile); mode == ModeZeroDowntime && h < 0 {
		return nil, old, next, fmt.Errorf("%w: adding %s leaves %d bytes", ErrEnvTooLarge, e.Profile.SecondaryVar, h)
	}
	plan = append(plan, fmt.Sprintf("back up old %s and new %s in Secrets Manager secret %s", old, next, e.Backup.Name))
	switch mode {
	case ModeZeroDowntime:
		plan = append(plan,
			fmt.Sprintf("set %s=%s on %d functions and prove the API accepts it", e.Profile.SecondaryVar, next, len(e.Fleet)),
			fmt.Sprintf("set %s=%s, %s=%s on %d functions; verify in grace mode", e.Profile.SecretVar, next, e.Profile.SecondaryVar, old, len(e.Fleet)),
			fmt.Sprintf("grace period %s, then 'valine-check finalize'", grace))
	default:
		plan = append(plan, fmt.Sprintf("set %s=%s on %d functions (no secondary); verify in strict mode", e.Profile.SecretVar, next, len(e.Fleet)))
	}
	for _, f := range fs.Functions {
		plan = append(plan, fmt.Sprintf("  %s: %s %s → %s, %d other variables kept", f.Name, e.Profile.SecretVar, f.Primary, next, f.OtherVars))
	}
	return plan, old, next, nil
}

// grace is the grace period: asked (or the default), never shorter than the
// refresh tokens' lifetime when that can be read.
func (e *Engine) grace(ctx context.Context, mode Mode, asked time.Duration) time.Duration {
	if mode != ModeZeroDowntime {
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

// resume continues an unfinished rotation from its journalled phase.
func (e *Engine) resume(ctx context.Context, j Journal, opt RotateOptions) (Outcome, error) {
	old, next, err := e.secretsOf(ctx, j)
	if err != nil {
		return Outcome{Journal: j}, err
	}
	if j.Phase == PhaseStarted {
		j.Phase = PhaseBackedUp
	}
	return e.run(ctx, j, old, next, opt)
}

// run drives the journal's phase to the end of the operation: each phase
// first puts its target state on every function (idempotent, so a resumed
// phase converges), then does its work and moves on.
func (e *Engine) run(ctx context.Context, j Journal, old, next probes.Secret, opt RotateOptions) (out Outcome, err error) {
	defer func() { out.Journal = j }() // whichever way it ends, report the last phase
	for {
		out.Journal = j
		if j.Phase.Terminal() {
			return out, nil
		}
		// backed-up changed no function (a stop inside the next step is
		// journalled as that step), so there is nothing to converge.
		if j.Phase != PhaseBackedUp {
			if err := e.apply(ctx, target(j.Phase, old, next)); err != nil {
				return out, e.applyFailed(ctx, &j, old, next, err)
			}
		}
		switch j.Phase {
		case PhaseBackedUp:
			nextPhase, msg := PhaseApplied, fmt.Sprintf("replacing %s on %d functions with %s, no secondary", e.Profile.SecretVar, len(e.Fleet), next)
			if j.Mode == ModeZeroDowntime {
				nextPhase, msg = PhaseProbing, fmt.Sprintf("giving %d functions %s=%s to prove the API honours a secondary", len(e.Fleet), e.Profile.SecondaryVar, next)
			}
			if err := e.step(ctx, &j, nextPhase, "ok", msg, nil); err != nil {
				return out, err
			}
		case PhaseProbing:
			r := e.Verifier.Honours(ctx, next)
			if r.Outcome == probes.Error {
				// No answer is not a "no": restore, and say what failed.
				if err := e.apply(ctx, target(PhaseAbandoned, old, next)); err != nil {
					return out, e.applyFailed(ctx, &j, old, next, err)
				}
				msg := fmt.Sprintf("could not prove the API honours the secondary: %s; every function is back on %s alone", r.Reason, old)
				if err := e.step(ctx, &j, PhaseAbandoned, "failed", msg, nil); err != nil {
					return out, err
				}
				return out, errors.New(msg)
			}
			if r.Outcome != probes.Pass {
				if err := e.apply(ctx, target(PhaseAbandoned, old, next)); err != nil {
					return out, e.applyFailed(ctx, &j, old, next, err)
				}
				msg := fmt.Sprintf("refused: %s; every function is back on %s alone; rotate with --mode maintenance instead", r.Reason, old)
				if err := e.step(ctx, &j, PhaseAbandoned, "refused", msg, nil); err != nil {
					return out, err
				}
				out.Journal = j
				return out, fmt.Errorf("%w: %s", ErrNoDualSecret, msg)
			}
			if err := e.step(ctx, &j, PhaseStaged, "ok", "the API honours the secondary; swapping primary and secondary", nil); err != nil {
				return out, err
			}
		case PhaseStaged, PhaseApplied, PhaseFinalizing:
			expect := probes.Strict
			if j.Phase == PhaseStaged {
				expect = probes.Grace
			}
			rep := e.Verifier.Verify(ctx, expect, old, next)
			out.Reports = append(out.Reports, rep)
			if rep.Status() != probes.Pass {
				return out, e.verificationFailed(ctx, &j, old, next, rep, opt.NoRollback)
			}
			done := PhaseCompleted
			msg := "verified in strict mode: old tokens are refused"
			if j.Phase == PhaseStaged {
				done = PhaseGrace
				msg = fmt.Sprintf("verified in grace mode; finalize after %s", j.GraceDeadline.Format(time.RFC3339))
			}
			if err := e.step(ctx, &j, done, "ok", msg, &rep); err != nil {
				return out, err
			}
			if done == PhaseGrace {
				out.Journal = j
				return out, nil
			}
		case PhaseGrace:
			return out, nil
		case PhaseRollingBack:
			rep := e.Verifier.Verify(ctx, probes.Strict, next, old)
			out.Reports = append(out.Reports, rep)
			outcome, msg := "ok", fmt.Sprintf("every function is back on %s; tokens signed with %s are refused", old, next)
			if rep.Status() != probes.Pass {
				outcome, msg = "verification failed", fmt.Sprintf("every function is back on %s, but verification failed: %s", old, failedNames(rep))
			}
			if err := e.step(ctx, &j, PhaseRolledBack, outcome, msg, &rep); err != nil {
				return out, err
			}
		default:
			return out, fmt.Errorf("journal of %s has phase %q, which this version cannot resume", j.ID, j.Phase)
		}
	}
}

// verificationFailed rolls back (unless told not to) after a change that
// did not verify, and says which way it went.
func (e *Engine) verificationFailed(ctx context.Context, j *Journal, old, next probes.Secret, rep probes.Report, noRollback bool) error {
	failure := fmt.Errorf("%w in phase %s: %s", ErrVerificationFailed, j.Phase, failedNames(rep))
	what := failure.Error()
	if noRollback {
		e.audit(*j, string(j.Phase), "verification failed", what+"; left in place (--no-rollback)", &rep)
		return fmt.Errorf("%w; left in place (--no-rollback): run 'valine-check rollback' or fix and re-run", failure)
	}
	if j.Phase == PhaseFinalizing {
		// Undoing a finalize is going back to the grace period.
		if err := e.apply(ctx, target(PhaseGrace, old, next)); err != nil {
			return fmt.Errorf("%w; restoring the secondary also failed: %w", failure, err)
		}
		if err := e.step(ctx, j, PhaseGrace, "rolled back", what+"; the secondary is restored, the grace period goes on", &rep); err != nil {
			return errors.Join(failure, err)
		}
		return fmt.Errorf("%w; rolled back to the grace period", failure)
	}
	if err := e.step(ctx, j, PhaseRollingBack, "verification failed", what+"; rolling back", &rep); err != nil {
		return errors.Join(failure, err)
	}
	back, err := e.run(ctx, *j, old, next, RotateOptions{})
	*j = back.Journal
	if err != nil {
		return fmt.Errorf("%w; rollback failed: %w", failure, err)
	}
	return fmt.Errorf("%w; rolled back to %s", failure, old)
}

// applyFailed is called when the fleet could not be put in a phase's state
// even after the SDK's retries. A rotation that had started changing
// functions is rolled back; if that fails too, the journal keeps the phase
// and the next run resumes it. Either way the error says so.
func (e *Engine) applyFailed(ctx context.Context, j *Journal, old, next probes.Secret, cause error) error {
	e.audit(*j, string(j.Phase), "failed", cause.Error(), nil)
	switch j.Phase {
	case PhaseProbing, PhaseStaged, PhaseApplied:
		if err := e.step(ctx, j, PhaseRollingBack, "failed", "could not update every function; rolling back", nil); err != nil {
			return errors.Join(cause, err)
		}
		if err := e.apply(ctx, target(PhaseRollingBack, old, next)); err != nil {
			return fmt.Errorf("%w; rolling back failed too (%v): the fleet is half-rotated, 'valine-check status' shows it and re-running finishes the rollback", cause, err)
		}
		if err := e.step(ctx, j, PhaseRolledBack, "rolled back", fmt.Sprintf("every function is back on %s", old), nil); err != nil {
			return errors.Join(cause, err)
		}
		return fmt.Errorf("%w; rolled back: every function is back on %s", cause, old)
	}
	return fmt.Errorf("%w; the journal keeps phase %s: re-run to finish", cause, j.Phase)
}

func failedNames(rep probes.Report) string {
	var names []string
	for _, r := range rep.Results {
		if r.Outcome == probes.Fail || r.Outcome == probes.Error {
			names = append(names, r.Name+" ("+string(r.Outcome)+")")
		}
	}
	if len(names) == 0 {
		return "no failing check"
	}
	return fmt.Sprint(names)
}
