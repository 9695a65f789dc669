package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/progress"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// LambdaClient is every Lambda call the engine makes: the reads of fleet
// selection and inspection (GetFunction, ListFunctions), the writes of
// UpdateEnv and the owner tags.
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
	// Concurrency bounds the functions being updated at once; 0 means no
	// bound but Lambda's request rates, which pace every call (see Pace).
	Concurrency int
	// Pace is how the run paces its Lambda requests (zero fields:
	// DefaultLambdaPace's). A Lambda that is a *PacedLambda brings its
	// own, and then this is ignored: one run, one pace.
	Pace LambdaPace
	// SwitchFirst names the functions an update switches before the
	// others, in this order: the token issuers (see SwitchOrder). nil means
	// DefaultSwitchFirst's choice; an empty, non-nil slice means none.
	SwitchFirst []string
	// Source is the secret's source of truth a new rotation writes before
	// the fleet; the zero Source means the one the last rotation
	// journalled, or the functions' environment when none did. An
	// operation on a rotation in progress uses the journalled one and
	// refuses a different non-zero Source (ErrSourceMismatch).
	Source journal.Source
	// Delivery is how the fleet gets the secret ("" as for Source: the
	// journalled one, else DeliveryEnv), and CacheTTL how long functions
	// reading it at run time cache it (0: the journalled TTL, else
	// journal.DefaultCacheTTL). With DeliveryRuntime no function is
	// written and verification waits out the TTL.
	Delivery journal.Delivery
	CacheTTL time.Duration
	// Stores are the clients of the stores a source may name.
	Stores StoreClients
	// Deploy reads the templates of the stacks that deploy the fleet (nil:
	// the stacks are named from the functions' tags, their templates not
	// read). AllowDeployDrift lets a rotation change a stack-managed fleet
	// that the next deploy would revert (see checkDeploy).
	Deploy           DeployAPI
	AllowDeployDrift bool
	// Read is the fleet as its resolution read it moments before
	// (ResolveFleetRead): the run's first inspection uses it instead of
	// reading those functions again; later ones read.
	Read   FleetRead
	readMu sync.Mutex
	// Audit receives one record per step; nil discards them.
	Audit *AuditLog
	// Operator (the caller's ARN) and Reason go into the audit records.
	Operator, Reason string
	// Progress receives one human line per step; nil discards them.
	Progress io.Writer
	// Wait is told of a wait of the engine's that has lasted a second: a
	// fleet update's (once for the fleet, its functions' waits overlap)
	// and the logs' ingestion before a comparison. nil tells no one.
	Wait progress.Func
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StopAfter, when set, is called after each step with its name; an
	// error stops the engine there as a crash would. Tests inject stops
	// with it.
	StopAfter func(step string) error
	// Watch, when set, snapshots the logs and alarms before each operation
	// and after its verification, and compares them.
	Watch *Watch

	pacedOnce sync.Once
	paced     *PacedLambda
	// known holds each function's configuration as this run last read or
	// wrote it, so that a write needs no read before it (see UpdateEnv's
	// Known). Its values are never printed.
	knownMu sync.Mutex
	known   map[string]FunctionConfig
	// splits are the fleet updates' split windows, in order.
	splits []Split
	// op is the source of truth of the operation running.
	op operationSource
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
	// Splits are how long each fleet update of the operation left the
	// fleet split, in order.
	Splits []Split
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

// lambda is e.Lambda paced: every Lambda call of the engine goes through it.
func (e *Engine) lambda() *PacedLambda {
	e.pacedOnce.Do(func() { e.paced = NewPacedLambda(e.Lambda, e.Pace) })
	return e.paced
}

// inspect reads the named functions (GetFunction), remembering each one's
// configuration for the writes that follow.
func (e *Engine) inspect(ctx context.Context, names []string) (FleetState, error) {
	e.readMu.Lock()
	read := e.Read
	e.Read = nil // the first inspection only: later ones read afresh
	e.readMu.Unlock()
	fs, configs, err := inspect(ctx, e.lambda(), names, e.Profile, 0, read)
	if err != nil {
		return fs, err
	}
	for i, f := range fs.Functions {
		e.remember(f.Name, configs[i])
	}
	return fs, nil
}

func (e *Engine) remember(fn string, c FunctionConfig) {
	e.knownMu.Lock()
	defer e.knownMu.Unlock()
	if e.known == nil {
		e.known = map[string]FunctionConfig{}
	}
	e.known[fn] = c
}

func (e *Engine) forget(fn string) {
	e.knownMu.Lock()
	defer e.knownMu.Unlock()
	delete(e.known, fn)
}

func (e *Engine) knownConfig(fn string) (FunctionConfig, bool) {
	e.knownMu.Lock()
	defer e.knownMu.Unlock()
	c, ok := e.known[fn]
	return c, ok
}

// splitsSince returns the split windows recorded after the first n.
func (e *Engine) splitsSince(n int) []Split {
	if n >= len(e.splits) {
		return nil
	}
	return slices.Clone(e.splits[n:])
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
	e.auditRecord(j, step, outcome, message, rep, nil)
}

// auditSplit is audit for a fleet update, with its split window.
func (e *Engine) auditSplit(j journal.Journal, step, outcome, message string, split *Split) {
	e.auditRecord(j, step, outcome, message, nil, split)
}

func (e *Engine) auditRecord(j journal.Journal, step, outcome, message string, rep *probes.Report, split *Split) {
	rec := AuditRecord{Split: split,
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

// apply puts pair on every function and checks each one as its update
// settled: an operation never reports success while any function
// disagrees. The updates are dispatched in SwitchOrder, each as soon as the
// control-plane rate gives it a turn, and their waits overlap; a function
// this run already knows to hold pair is not written. Each write starts
// from the configuration this run last read or wrote (a function changed
// by someone else since costs one refused write and a read). The split
// window is printed, audited and kept for the Outcome. Every write is
// audited (under j's rotation, if any).
func (e *Engine) apply(ctx context.Context, j journal.Journal, pair secretPair) (err error) {
	if pair.primary.IsEmpty() {
		return ErrEmptySecret
	}
	// The source of truth first: a deploy from now on writes what the
	// fleet is about to hold.
	if err := e.putStore(ctx, j, pair); err != nil {
		return err
	}
	if e.op.runtime() {
		return nil // the functions read the store: none is written
	}
	return e.applyFleet(ctx, j, pair)
}

// applyFleet is apply's fleet part: the functions alone, the source of
// truth untouched.
func (e *Engine) applyFleet(ctx context.Context, j journal.Journal, pair secretPair) (err error) {
	change := fmt.Sprintf("%s=%s", e.Profile.SecretVar, pair.primary)
	if e.Profile.SecondaryVar != "" {
		if pair.secondary.IsEmpty() {
			change += fmt.Sprintf(", no %s", e.Profile.SecondaryVar)
		} else {
			change += fmt.Sprintf(", %s=%s", e.Profile.SecondaryVar, pair.secondary)
		}
	}
	var split *Split
	defer func() {
		outcome, msg := "ok", fmt.Sprintf("%d functions hold %s", len(e.Fleet), change)
		if err != nil {
			outcome, msg = "failed", fmt.Sprintf("putting %s on %d functions: %v", change, len(e.Fleet), err)
		}
		if split != nil {
			msg += "; " + split.String()
		}
		e.auditSplit(j, "update", outcome, msg, split)
	}()
	set := SetSecrets(e.Profile, pair.primary, pair.secondary)
	order := SwitchOrder(e.Fleet, e.switchFirst())
	results := make([]EnvResult, len(order))
	failed := make([]error, len(order))
	var wg sync.WaitGroup
	var slots chan struct{}
	if e.Concurrency > 0 {
		slots = make(chan struct{}, e.Concurrency)
	}
	p := e.lambda()
	// One wait for the fleet, bounded by the last dispatch's read-modify-
	// write rounds and its waiter (UpdateEnv's defaults).
	bound := EnvUpdate{}.withDefaults()
	dispatch := time.Duration(float64(len(order)) / float64(p.buckets[classControl].Limit()) * float64(time.Second))
	ctx, stopWaiting := e.Wait.Start(ctx, fmt.Sprintf("Lambda to finish updating %d function(s)", len(order)),
		e.now().Add(dispatch+bound.Deadline+bound.MaxWait))
	defer stopWaiting()
	for i, fn := range order {
		known, haveKnown := e.knownConfig(fn)
		if haveKnown && !needsWrite(known, set) {
			results[i] = EnvResult{Config: known}
			continue // holds pair already: no turn taken, no request
		}
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				failed[i] = ctx.Err()
			}
			if failed[i] != nil {
				break // interrupted: nothing more is dispatched
			}
		}
		// This function's turn at the control-plane rate, taken here, in
		// order, so that the updates go out in SwitchOrder.
		turn, err := p.admit(ctx)
		if err != nil {
			failed[i] = err
			if slots != nil {
				<-slots
			}
			break // interrupted: nothing more is dispatched
		}
		opt := EnvUpdate{}
		if haveKnown {
			opt.Known = &known
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if slots != nil {
				defer func() { <-slots }()
			}
			res, err := UpdateEnv(turn, p, fn, set, opt)
			results[i], failed[i] = res, err
			if err != nil {
				e.forget(fn) // unknown now: the next write reads first
				return
			}
			e.remember(fn, res.Config)
		}()
	}
	wg.Wait()
	stopWaiting()
	split = splitOf(j.Phase, order, results)
	if split != nil {
		e.splits = append(e.splits, *split)
		e.say("%s", split)
	}
	if err := errors.Join(failed...); err != nil {
		return fmt.Errorf("updating the fleet: %w", err)
	}
	settled := FleetState{Functions: make([]FunctionState, len(order))}
	var off []string
	for i, fn := range order {
		st, err := stateOfEnv(fn, results[i].Config.Env, e.Profile)
		if err != nil {
			return err
		}
		settled.Functions[i] = st
		if !st.Primary.Equal(pair.primary) || !st.Secondary.Equal(pair.secondary) {
			off = append(off, fn)
		}
	}
	if len(off) > 0 {
		return fmt.Errorf("%w after the update: %s (%s)", ErrDrift, strings.Join(off, ", "), settled.Drift())
	}
	return nil
}

// needsWrite reports whether change would alter the environment in c.
func needsWrite(c FunctionConfig, change func(map[string]string) error) bool {
	next := maps.Clone(c.Env)
	if next == nil {
		next = map[string]string{}
	}
	if err := change(next); err != nil {
		return true // let UpdateEnv report it
	}
	return !maps.Equal(c.Env, next)
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
