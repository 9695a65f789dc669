package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// LambdaClient is every Lambda call the engine makes: the writes of
// UpdateEnv and the reads of fleet selection and inspection.
type LambdaClient interface {
	LambdaAPI
	FleetAPI
	TagAPI
}

// Engine rotates the secret of one fleet of Lambda functions. Each change
// is journalled on the backup secret before it is made, so a run that
// stops anywhere is finished (or undone) by the next run; see Rotate.
type Engine struct {
	Lambda   LambdaClient
	Backup   Backup
	Profile  profile.Profile
	Fleet    []string
	Verifier Verifier
	// Concurrency bounds the functions updated at once (default 10).
	Concurrency int
	// Audit receives one record per step; nil discards them.
	Audit *AuditLog
	// Operator (the caller's ARN) and Reason go into the audit records.
	Operator, Reason string
	// Progress receives one human line per step; nil discards them.
	Progress io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StopAfter, when set, is called after each step with its name; an
	// error stops the engine there as a crash would. Tests inject stops
	// with it.
	StopAfter func(step string) error
	// Watch, when set, snapshots the logs and alarms before each operation
	// and after its verification, and compares them.
	Watch *Watch
}

// Errors an engine operation returns; each is wrapped with the details.
var (
	ErrDrift              = errors.New("the fleet's functions do not agree on their secrets")
	ErrNoDualSecret       = errors.New("the API does not honour the secondary secret, so a zero-downtime rotation would log users out")
	ErrVerificationFailed = errors.New("verification failed")
	ErrGraceNotOver       = errors.New("the grace period is not over")
	ErrGraceInProgress    = errors.New("a zero-downtime rotation is in its grace period")
	ErrNothingToRollBack  = errors.New("nothing to roll back")
	ErrNoRotation         = errors.New("no rotation in progress")
	ErrBackupMismatch     = errors.New("the backup does not hold the journalled secrets")
)

// Outcome is what an operation did.
type Outcome struct {
	Journal journal.Journal
	// Reports are the verifications run, in order.
	Reports []probes.Report
	// DryRun says nothing was changed; Plan says what would have been.
	DryRun bool
	Plan   []string
	// Comparison is the before/after verdict, when the engine has a Watch.
	Comparison *alarms.Verdict
	// Baseline is the run of the checks against the secret in force before
	// the operation's first write, when one ran.
	Baseline *probes.Report
}

// secretPair is what a phase puts on every function.
type secretPair struct{ primary, secondary secret.Secret }

// target is PhaseHolds with the secrets of a rotation from old to next.
func target(p journal.Phase, old, next secret.Secret) secretPair {
	pick := func(w journal.Which) secret.Secret {
		switch w {
		case journal.WhichOld:
			return old
		case journal.WhichNew:
			return next
		}
		return secret.Secret{}
	}
	primary, secondary := journal.PhaseHolds(p)
	return secretPair{pick(primary), pick(secondary)}
}

// concurrency is the bound on functions handled at once (default 10).
func (e *Engine) concurrency() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return 10
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) say(format string, args ...any) {
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, format+"\n", args...)
	}
}

// step records a phase change: journal first (so a crash after it resumes
// towards the new phase), then the audit record, then the test stop.
func (e *Engine) step(ctx context.Context, j *journal.Journal, p journal.Phase, outcome, message string, rep *probes.Report) error {
	j.Phase = p
	j.Verification = "" // a new phase has nothing outstanding
	j.UpdatedAt = e.now().UTC()
	if err := e.Backup.WriteJournal(ctx, *j); err != nil {
		return interrupted(ctx, fmt.Errorf("journalling phase %s: %w", p, err))
	}
	e.audit(*j, string(p), outcome, message, rep)
	e.say("%s: %s", p, message)
	return e.stop(string(p))
}

// interrupted marks err as ErrInterrupted when ctx was cancelled (SIGINT):
// the step did not fail, it was cut short.
func interrupted(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ErrInterrupted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInterrupted, err)
}

func (e *Engine) stop(step string) error {
	if e.StopAfter == nil {
		return nil
	}
	if err := e.StopAfter(step); err != nil {
		return fmt.Errorf("stopped after %s: %w", step, err)
	}
	return nil
}

func (e *Engine) audit(j journal.Journal, step, outcome, message string, rep *probes.Report) {
	rec := AuditRecord{
		Time: e.now().UTC(), Operator: e.Operator, RotationID: j.ID, Step: step, Mode: j.Mode,
		Reason: e.Reason, Fleet: e.Fleet, OldFingerprint: j.OldFingerprint, NewFingerprint: j.NewFingerprint,
		Outcome: outcome, Message: message,
	}
	if rep != nil {
		s := rep.Summary
		rec.Verification = &s
		for _, r := range rep.Failed() {
			rec.Failed = append(rec.Failed, r.Name)
		}
		if g := rep.Gate; g != nil {
			rec.Caused, rec.CouldNotTell, rec.PreExisting, rec.Findings = g.Caused, g.Pending, g.PreExisting, g.Findings
		} else if step == "baseline" {
			rec.Baseline = probes.BaselineOf(*rep)
		}
	}
	if err := e.Audit.Append(rec); err != nil {
		e.say("warning: %v", err)
	}
}

// apply puts pair on every function (read-modify-write, bounded
// concurrency), then reads the fleet back: an operation never reports
// success while any function disagrees. Every write is audited (under j's
// rotation, if any).
func (e *Engine) apply(ctx context.Context, j journal.Journal, pair secretPair) (err error) {
	if pair.primary.IsEmpty() {
		return ErrEmptySecret
	}
	change := fmt.Sprintf("%s=%s", e.Profile.SecretVar, pair.primary)
	if e.Profile.SecondaryVar != "" {
		if pair.secondary.IsEmpty() {
			change += fmt.Sprintf(", no %s", e.Profile.SecondaryVar)
		} else {
			change += fmt.Sprintf(", %s=%s", e.Profile.SecondaryVar, pair.secondary)
		}
	}
	defer func() {
		outcome, msg := "ok", fmt.Sprintf("%d functions hold %s", len(e.Fleet), change)
		if err != nil {
			outcome, msg = "failed", fmt.Sprintf("putting %s on %d functions: %v", change, len(e.Fleet), err)
		}
		e.audit(j, "update", outcome, msg, nil)
	}()
	limit := e.concurrency()
	set := SetSecrets(e.Profile, pair.primary, pair.secondary)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	failed := make([]error, len(e.Fleet))
	for i, fn := range e.Fleet {
		g.Go(func() error {
			if _, err := UpdateEnv(gctx, e.Lambda, fn, set, EnvUpdate{}); err != nil {
				failed[i] = err
			}
			return nil // let the others finish: a half-applied step is resumed, not abandoned
		})
	}
	_ = g.Wait()
	if err := errors.Join(failed...); err != nil {
		return fmt.Errorf("updating the fleet: %w", err)
	}
	fs, err := Inspect(ctx, e.Lambda, e.Fleet, e.Profile, limit)
	if err != nil {
		return fmt.Errorf("reading the fleet back: %w", err)
	}
	var off []string
	for _, f := range fs.Functions {
		if !f.Primary.Equal(pair.primary) || !f.Secondary.Equal(pair.secondary) {
			off = append(off, f.Name)
		}
	}
	if len(off) > 0 {
		return fmt.Errorf("%w after the update: %s (%s)", ErrDrift, strings.Join(off, ", "), fs.Drift())
	}
	return nil
}

// secretsOf reads old and new from the backup and checks them against the
// journal's fingerprints: the engine never writes a secret the journal does
// not vouch for.
func (e *Engine) secretsOf(ctx context.Context, j journal.Journal) (old, next secret.Secret, err error) {
	if old, err = e.Backup.Previous(ctx); err != nil {
		return old, next, fmt.Errorf("reading the previous secret from backup %s: %w", e.Backup.Name, err)
	}
	if next, err = e.Backup.Current(ctx); err != nil {
		return old, next, fmt.Errorf("reading the current secret from backup %s: %w", e.Backup.Name, err)
	}
	if rolled := j.Phase == journal.PhaseRollingBack || j.Phase == journal.PhaseRolledBack; rolled && old.Fingerprint() == j.NewFingerprint && next.Fingerprint() == j.OldFingerprint {
		// A rollback records the restored secret as AWSCURRENT again; a
		// run that stopped just after that finds the stages swapped.
		return next, old, nil
	}
	if old.Fingerprint() != j.OldFingerprint || next.Fingerprint() != j.NewFingerprint {
		return old, next, fmt.Errorf("%w: journal of %s says old %s, new %s; backup holds previous %s, current %s",
			ErrBackupMismatch, j.ID, j.OldFingerprint, j.NewFingerprint, old, next)
	}
	return old, next, nil
}
