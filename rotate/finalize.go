package rotate

import (
	"context"
	"fmt"
	"time"
)

// FinalizeOptions tune Finalize.
type FinalizeOptions struct {
	// Force finalizes before the grace deadline.
	Force bool
	// NoRollback leaves a finalize that failed verification in place.
	NoRollback bool
	// DryRun plans and changes nothing.
	DryRun bool
}

// Finalize ends a zero-downtime rotation's grace period: the secondary is
// removed from every function and the old secret is verified refused.
// Before the deadline it refuses unless Force. An unfinished step of the
// rotation (a stop before the grace period began) is resumed first.
func (e *Engine) Finalize(ctx context.Context, opt FinalizeOptions) (Outcome, error) {
	if !opt.DryRun {
		unlock, err := e.lock(ctx, "finalize")
		if err != nil {
			return Outcome{}, err
		}
		defer unlock()
	}
	j, found, err := e.Backup.ReadJournal(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("reading the rotation journal: %w", err)
	}
	if !found || j.Phase.Terminal() {
		return Outcome{Journal: j}, fmt.Errorf("%w: there is no grace period to finalize", ErrNoRotation)
	}
	if j.Phase != PhaseGrace && j.Phase != PhaseFinalizing {
		if opt.DryRun {
			return Outcome{Journal: j, DryRun: true, Plan: []string{fmt.Sprintf("resume rotation %s from phase %s first", j.ID, j.Phase)}}, nil
		}
		e.say("rotation %s stopped in phase %s: resuming it first", j.ID, j.Phase)
		out, err := e.resume(ctx, j, RotateOptions{NoRollback: opt.NoRollback})
		if err != nil {
			return out, err
		}
		if out.Journal.Phase != PhaseGrace {
			return out, fmt.Errorf("%w: the resumed rotation %s ended in phase %s, so there is no grace period to finalize", ErrNoRotation, j.ID, out.Journal.Phase)
		}
		j = out.Journal
	}
	if j.Phase == PhaseGrace {
		if left := j.GraceDeadline.Sub(e.now()); left > 0 && !opt.Force {
			return Outcome{Journal: j}, fmt.Errorf("%w: %s left (until %s); tokens issued before the rotation may still be in use; --force finalizes now",
				ErrGraceNotOver, left.Round(time.Minute), j.GraceDeadline.Format(time.RFC3339))
		}
	}
	old, next, err := e.secretsOf(ctx, j)
	if err != nil {
		return Outcome{Journal: j}, err
	}
	if opt.DryRun {
		return Outcome{Journal: j, DryRun: true, Plan: []string{
			fmt.Sprintf("remove %s (%s) from %d functions, keeping %s=%s; verify in strict mode", e.Profile.SecondaryVar, old, len(e.Fleet), e.Profile.SecretVar, next),
		}}, nil
	}
	watch := e.snapshotBefore(ctx)
	if j.Phase == PhaseGrace {
		if err := e.step(ctx, &j, PhaseFinalizing, "ok", "removing the secondary", nil); err != nil {
			return Outcome{Journal: j}, err
		}
	}
	out, err := e.run(ctx, j, old, next, RotateOptions{NoRollback: opt.NoRollback})
	if err == nil {
		err = e.compareAfter(ctx, &out, watch, true)
	}
	return out, err
}

// Rollback puts the previous secret back on every function, from the
// backup, and verifies that tokens signed with the rolled-back secret are
// refused. It refuses when the journal shows nothing to undo, and before any
// change when the backup does not hold the journalled secrets (or holds an
// empty or short one).
func (e *Engine) Rollback(ctx context.Context, dryRun bool) (Outcome, error) {
	if !dryRun {
		unlock, err := e.lock(ctx, "rollback")
		if err != nil {
			return Outcome{}, err
		}
		defer unlock()
	}
	j, found, err := e.Backup.ReadJournal(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("reading the rotation journal: %w", err)
	}
	if !found {
		return Outcome{}, fmt.Errorf("%w: backup %s has no rotation journal", ErrNothingToRollBack, e.Backup.Name)
	}
	switch j.Phase {
	case PhaseRolledBack, PhaseAbandoned:
		return Outcome{Journal: j}, fmt.Errorf("%w: rotation %s is already %s", ErrNothingToRollBack, j.ID, j.Phase)
	}
	old, next, err := e.secretsOf(ctx, j)
	if err != nil {
		return Outcome{Journal: j}, err
	}
	if dryRun {
		return Outcome{Journal: j, DryRun: true, Plan: []string{
			fmt.Sprintf("set %s=%s (from backup %s, AWSPREVIOUS) on %d functions, removing %s; verify tokens signed with %s are refused",
				e.Profile.SecretVar, old, e.Backup.Name, len(e.Fleet), orNothing(e.Profile.SecondaryVar), next),
		}}, nil
	}
	watch := e.snapshotBefore(ctx)
	if j.Phase != PhaseRollingBack {
		if err := e.step(ctx, &j, PhaseRollingBack, "ok", fmt.Sprintf("rolling back rotation %s (was %s)", j.ID, j.Phase), nil); err != nil {
			return Outcome{Journal: j}, err
		}
	}
	out, err := e.run(ctx, j, old, next, RotateOptions{})
	if err == nil {
		err = e.compareAfter(ctx, &out, watch, true)
	}
	return out, err
}

func orNothing(v string) string {
	if v == "" {
		return "no secondary"
	}
	return "the secondary " + v
}
