package rotate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

// Status is what `valine-check status` shows: the fleet, whether it
// agrees, the journalled rotation and the backup.
type Status struct {
	Fleet   FleetState
	Drift   Drift
	Journal journal.Journal
	// HasJournal is false when the backup has no rotation journal.
	HasJournal bool
	// BackupCurrent and BackupPrevious are the backup's fingerprints ("" when absent).
	BackupCurrent, BackupPrevious string
	// GraceRemaining is left of a grace period in progress (0 when none or over).
	GraceRemaining time.Duration
	// JournalError says why the journal could not be read ("" when it could):
	// the fleet is still shown.
	JournalError string
	// Mismatches are the functions that do not hold what the journal's
	// phase requires (by fingerprint), with what they hold.
	Mismatches []Mismatch
	// Lock is the fleet's lock, when one is held.
	Lock *LockState
	// Backup is the backup secret's name.
	Backup string
	// Source is the source of truth compared (the journalled one unless
	// another was asked for), Delivery how the fleet gets it, and
	// SourcePrimary and SourceSecondary the fingerprints it holds ("" for
	// none; both "" for the functions' environment). SourceError says why
	// the store could not be read.
	Source                         journal.Source
	Delivery                       journal.Delivery
	SourcePrimary, SourceSecondary string
	SourceError                    string
	// SourceDrift lists what disagrees with the source of truth: the store
	// against the journal's phase (Function "" names the store itself), and,
	// when the fleet's environment carries the secret, each function whose
	// secret is not the store's: a deploy or a hand edit since.
	SourceDrift []Mismatch
	// Stacks are the CloudFormation stacks that deploy the fleet, with how
	// each template supplies the secret variable.
	Stacks []StackDeploy
	// SecondaryUse says what the logs show of secondary-secret use (the
	// caller measures it: alarms.MeasureSecondaryUse); "" leaves it out.
	SecondaryUse string
}

// StatusSchema names the schema of Status's JSON (docs/json-output.md).
// It changes only when a field changes meaning or disappears.
const StatusSchema = "valine-check/status/v1"

// MarshalJSON writes the status as `valine-check status -o json` prints
// it: fingerprints only.
func (s Status) MarshalJSON() ([]byte, error) {
	fns := []map[string]any{}
	for _, f := range s.Fleet.Functions {
		fns = append(fns, map[string]any{"name": f.Name, "primary": f.Primary.Fingerprint(), "secondary": f.Secondary.Fingerprint(),
			"hasSecondary": f.HasSecondaryVar, "revisionId": f.RevisionID, "lastModified": f.LastModified, "lastUpdateStatus": f.LastUpdateStatus})
	}
	out := map[string]any{"schema": StatusSchema, "functions": fns, "consistent": s.Drift.Consistent, "drift": s.Drift.String(),
		"backup": map[string]string{"name": s.Backup, "current": s.BackupCurrent, "previous": s.BackupPrevious}, "unfinished": s.Unfinished(),
		"journalError": s.JournalError, "mismatches": append([]Mismatch{}, s.Mismatches...),
		"source": map[string]any{"name": s.Source.String(), "delivery": s.Delivery.OrEnv(), "primary": s.SourcePrimary, "secondary": s.SourceSecondary,
			"error": s.SourceError, "drift": append([]Mismatch{}, s.SourceDrift...)},
		"drifted": s.Drifted(), "stacks": stacksJSON(s.Stacks)}
	if s.SecondaryUse != "" {
		out["secondaryUse24h"] = s.SecondaryUse
	}
	if s.Lock != nil {
		out["lock"] = map[string]any{"holder": s.Lock.Info, "ageSeconds": int64(s.Lock.Age.Seconds()), "dead": s.Lock.Dead}
	}
	if s.HasJournal {
		out["rotation"] = map[string]any{"id": s.Journal.ID, "mode": s.Journal.Mode, "phase": s.Journal.Phase,
			"old": s.Journal.OldFingerprint, "new": s.Journal.NewFingerprint, "startedAt": s.Journal.StartedAt,
			"graceDeadline": s.Journal.GraceDeadline, "graceRemainingSeconds": int64(s.GraceRemaining.Seconds()),
			"verification": s.Journal.Verification, "baselineFindings": s.Journal.Baseline.Findings(),
			"source": s.Journal.Source.String(), "delivery": s.Journal.Delivery.OrEnv()}
	}
	return json.Marshal(out)
}

// Mismatch is a function that does not hold what its journal requires.
type Mismatch struct {
	Function string `json:"function"`
	// Variable is the secret variable that differs.
	Variable string `json:"variable"`
	// Holds and Want are fingerprints ("" for absent).
	Holds string `json:"holds"`
	Want  string `json:"want"`
	// Says what the function holds, for a human.
	Says string `json:"says"`
}

// LockState is a held lock, as status shows it.
type LockState struct {
	Info LockInfo `json:"holder"`
	// Age is how long it has been held.
	Age time.Duration `json:"-"`
	// Dead is true when its holder ran on this machine and is gone: a
	// crashed run, whose lock the next run takes over (or --break-lock frees).
	Dead bool `json:"dead"`
}

// String says who holds it, since when, and whether the holder is alive.
func (l LockState) String() string {
	s := fmt.Sprintf("%s, %s ago", l.Info, l.Age.Round(time.Second))
	if l.Dead {
		s += "; its holder is gone (a crashed run): the next rotate, finalize or rollback takes it over, or --break-lock frees it"
	}
	return s
}

// Status reads the fleet, the journal and the backup, changing nothing.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	fs, err := e.inspect(ctx, e.Fleet)
	if err != nil {
		return Status{}, fmt.Errorf("inspecting the fleet: %w", err)
	}
	st := Status{Fleet: fs, Drift: fs.Drift(), Backup: e.Backup.Name}
	if st.Journal, st.HasJournal, err = e.Backup.ReadJournal(ctx); err != nil && !errors.Is(err, ErrNoBackup) {
		st.JournalError = err.Error()
	}
	if cur, err := e.Backup.Current(ctx); err == nil {
		st.BackupCurrent = cur.Fingerprint()
	} else if !errors.Is(err, ErrNoBackup) && !errors.Is(err, ErrBadBackup) {
		return st, fmt.Errorf("reading backup %s: %w", e.Backup.Name, err)
	}
	if prev, err := e.Backup.Previous(ctx); err == nil {
		st.BackupPrevious = prev.Fingerprint()
	}
	if st.HasJournal && st.Journal.Phase == journal.PhaseGrace {
		st.GraceRemaining = max(0, st.Journal.GraceDeadline.Sub(e.now()))
	}
	if err := e.useSource(st.Journal, st.HasJournal, false); err != nil {
		return st, err
	}
	if st.HasJournal && !e.op.runtime() {
		// (Functions that read the store at run time hold no secret in
		// their environment: the store is compared instead.)
		st.Mismatches = mismatches(fs, st.Journal, e.Profile)
	}
	st.Source, st.Delivery = e.op.source, e.op.delivery
	st.Stacks = DescribeDeploys(ctx, e.Deploy, fs, e.Profile)
	if e.op.store != nil {
		e.compareSource(ctx, &st)
	}
	if held, found, err := e.Backup.lockHolder(ctx); err == nil && found {
		st.Lock = &LockState{Info: held, Age: e.now().Sub(held.Since), Dead: deadHere(held, e.Backup.lockName())}
	}
	return st, nil
}

// mismatches compares every function with the state the journal's phase
// requires, by fingerprint.
func mismatches(fs FleetState, j journal.Journal, p profile.Profile) []Mismatch {
	fpOf := func(w journal.Which) string {
		switch w {
		case journal.WhichOld:
			return j.OldFingerprint
		case journal.WhichNew:
			return j.NewFingerprint
		}
		return ""
	}
	wantPrimary, wantSecondary := journal.PhaseHolds(j.Phase)
	var out []Mismatch
	for _, f := range fs.Functions {
		check := func(variable string, has bool, holds secret.Secret, want journal.Which) {
			got := ""
			if has {
				got = holds.Fingerprint()
			}
			if got == fpOf(want) {
				return
			}
			out = append(out, Mismatch{Function: f.Name, Variable: variable, Holds: got, Want: fpOf(want), Says: describe(got, j)})
		}
		check(p.SecretVar, f.HasPrimaryVar, f.Primary, wantPrimary)
		if p.SecondaryVar != "" {
			check(p.SecondaryVar, f.HasSecondaryVar, f.Secondary, wantSecondary)
		}
	}
	return out
}

// describe says what a function holding fp holds, in the light of j.
func describe(fp string, j journal.Journal) string {
	switch {
	case fp == "":
		return "holds nothing"
	case fp == j.OldFingerprint && j.Phase == journal.PhaseRolledBack:
		return "holds the secret this rotation put back"
	case fp == j.OldFingerprint:
		return "holds the secret this rotation replaced: reverted by a deploy or another writer?"
	case fp == j.NewFingerprint && (j.Phase == journal.PhaseRolledBack || j.Phase == journal.PhaseAbandoned):
		return "holds the secret this rotation withdrew: reverted by a deploy or another writer?"
	case fp == j.NewFingerprint:
		return "holds this rotation's new secret"
	}
	return "holds " + fp + ", a secret this rotation does not know: set by hand or by another tool?"
}

// Unfinished reports whether the journal shows a rotation stopped mid-way
// (anything but a grace period, which is a state of its own), or cannot be
// read at all.
func (s Status) Unfinished() bool {
	return s.JournalError != "" || s.HasJournal && !s.Journal.Phase.Terminal() && s.Journal.Phase != journal.PhaseGrace
}

// compareSource reads the store and compares it with the journal and, for
// environment delivery, with every function.
func (e *Engine) compareSource(ctx context.Context, st *Status) {
	primary, secondary, err := e.op.store.Read(ctx)
	if err != nil {
		st.SourceError = err.Error()
		return
	}
	st.SourcePrimary, st.SourceSecondary = primary.Fingerprint(), fpOrEmpty(secondary)
	src := e.op.source.String()
	if st.HasJournal && st.Journal.Source.String() == src && journal.Steady(st.Journal.Phase) {
		want, wantSecondary := journal.PhaseHolds(st.Journal.Phase)
		fpOf := func(w journal.Which) string {
			switch w {
			case journal.WhichOld:
				return st.Journal.OldFingerprint
			case journal.WhichNew:
				return st.Journal.NewFingerprint
			}
			return ""
		}
		if st.SourcePrimary != fpOf(want) {
			st.SourceDrift = append(st.SourceDrift, Mismatch{Variable: src, Holds: st.SourcePrimary, Want: fpOf(want), Says: describe(st.SourcePrimary, st.Journal)})
		}
		if e.op.source.Kind == journal.SourceSSM && st.SourceSecondary != fpOf(wantSecondary) {
			st.SourceDrift = append(st.SourceDrift, Mismatch{Variable: e.op.source.SecondaryParameter(), Holds: st.SourceSecondary, Want: fpOf(wantSecondary), Says: describe(st.SourceSecondary, st.Journal)})
		}
	}
	if e.op.runtime() || st.HasJournal && !journal.Steady(st.Journal.Phase) {
		// The functions' environment does not carry the secret, or a
		// rotation stopped mid-way has written the store ahead of them.
		return
	}
	for _, f := range st.Fleet.Functions {
		if got := fpOrEmpty(f.Primary); got != st.SourcePrimary {
			st.SourceDrift = append(st.SourceDrift, Mismatch{Function: f.Name, Variable: e.Profile.SecretVar, Holds: got, Want: st.SourcePrimary,
				Says: fmt.Sprintf("does not hold what %s holds, which the next deploy writes: %s", src, describeOrUnknown(got, st))})
		}
	}
}

// describeOrUnknown says what fp is, in the light of the journal when
// there is one.
func describeOrUnknown(fp string, st *Status) string {
	if st.HasJournal {
		return describe(fp, st.Journal)
	}
	if fp == "" {
		return "holds nothing"
	}
	return "holds " + fp
}

// fpOrEmpty is a secret's fingerprint, or "" for none.
func fpOrEmpty(s secret.Secret) string {
	if s.IsEmpty() {
		return ""
	}
	return s.Fingerprint()
}

// Drifted reports whether anything disagrees: the fleet's functions among
// themselves, with the journal's phase, or with the source of truth; or
// the journal or the store cannot be read. It is what status
// --fail-on-drift gates on.
func (s Status) Drifted() bool {
	return !s.Drift.Consistent || len(s.Mismatches) > 0 || len(s.SourceDrift) > 0 || s.JournalError != "" || s.SourceError != ""
}

// stacksJSON is the stacks as status's JSON shows them: how each
// function's secret variable is supplied, in words (fingerprints only).
func stacksJSON(stacks []StackDeploy) []map[string]any {
	out := []map[string]any{}
	for _, d := range stacks {
		supplies := map[string]string{}
		for fn, s := range d.Supplies {
			supplies[fn] = s.String()
		}
		out = append(out, map[string]any{"stack": d.Stack, "functions": d.Functions, "supplies": supplies})
	}
	return out
}
