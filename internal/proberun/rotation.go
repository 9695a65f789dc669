package proberun

import (
	"context"
	"errors"
	"fmt"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// Names of the checks whose inputs come from the rotation journal.
const (
	checkNewSecretInUse   = "new-secret-in-use"
	checkOldTokenAccepted = "old-token-accepted"
	checkOldTokenRejected = "old-token-rejected"
)

// rotationPlan is what the journal on the backup secret says the run can
// check: which secret signs fresh tokens, which one was retired, and
// whether tokens signed with the retired one must still be accepted (the
// grace period) or refused.
type rotationPlan struct {
	expect probes.Expect
	// signer signs fresh tokens (Config.CurrentSecret); retired was
	// replaced (Config.OldSecret). Either may be empty.
	signer, retired secret.Secret
	// oldCheck is old-token-accepted, old-token-rejected or "".
	oldCheck string
	// signerStop, when set, replaces new-secret-in-use: why the signer
	// cannot be known. oldStop likewise replaces oldCheck.
	signerStop, oldStop *probes.Result
	// journal is the journal read, if any (for the log line).
	journal *journal.Journal
}

// planRotation reads the journal and the secrets it names from the backup.
// Nothing here fails the run: a problem becomes the verdict of the check
// that needed the missing input.
func planRotation(ctx context.Context, b journal.Reader) rotationPlan {
	p := rotationPlan{expect: probes.Strict}
	if b.Name == "" || b.API == nil {
		p.signerStop = stop(probes.Skip, "no backup secret configured (VALINE_BACKUP_SECRET, --backup-secret), so the rotation journal is not read and the secret that should sign fresh tokens is unknown")
		return p
	}
	j, found, err := b.Read(ctx)
	switch {
	case err != nil:
		p.signerStop = stop(probes.Error, fmt.Sprintf("the rotation journal cannot be read, so the signer is unknown: %v", err))
		return p
	case !found:
		p.signerStop = noJournal(ctx, b)
		return p
	}
	p.journal = &j
	// The journal's own table (journal.PhaseHolds) says which secret signs
	// fresh tokens once every function holds what the phase says, and
	// whether the rotation rests in the phase: then the backup must hold
	// its secrets, and a token signed with the retired one has a verdict
	// (accepted in grace, refused otherwise). In the phases between,
	// functions change under the probe and the retired secret is not judged.
	steady := journal.Steady(j.Phase)
	signerFP, retiredFP := j.OldFingerprint, j.NewFingerprint
	if journal.SignsWithNew(j.Phase) {
		signerFP, retiredFP = j.NewFingerprint, j.OldFingerprint
	}
	if steady {
		p.oldCheck = checkOldTokenRejected
		if j.Phase == journal.PhaseGrace {
			p.oldCheck, p.expect = checkOldTokenAccepted, probes.Grace
		}
	}
	held, readErr := backupSecrets(ctx, b)
	find := func(fp, role string) (secret.Secret, *probes.Result) {
		for _, s := range held {
			if s.Fingerprint() == fp {
				return s, nil
			}
		}
		outcome := probes.Error
		if !steady {
			// Mid-rotation the backup may not hold this rotation's secrets yet.
			outcome = probes.Skip
		}
		why := fmt.Sprintf("rotation %s is %s; the %s secret %s is not in backup %s (it holds %s)", j.ID, j.Phase, role, fp, b.Name, fingerprints(held))
		if readErr != nil {
			why += ": " + readErr.Error()
		}
		return secret.Secret{}, stop(outcome, why)
	}
	p.signer, p.signerStop = find(signerFP, "signing")
	if p.oldCheck != "" {
		p.retired, p.oldStop = find(retiredFP, "retired")
	}
	return p
}

// noJournal is the verdict on the signer when the backup holds no journal.
// ReadJournal says the same for a backup secret that does not exist and for
// one without journal tags; only the second is a fleet never rotated. The
// first is a misconfiguration (a wrong --backup-secret or
// VALINE_BACKUP_SECRET) that would otherwise pass for "nothing to check".
func noJournal(ctx context.Context, b journal.Reader) *probes.Result {
	exists, err := b.Exists(ctx)
	switch {
	case err == nil && !exists:
		return stop(probes.Error, fmt.Sprintf("the backup secret %s does not exist, so the rotation journal and the secret that should sign fresh tokens are unknown (is the backup secret's name right?)", b.Name))
	case err != nil:
		return stop(probes.Error, fmt.Sprintf("the backup secret %s cannot be described, so the signer is unknown: %v", b.Name, err))
	}
	return stop(probes.Skip, fmt.Sprintf("no rotation journalled on %s, so the secret that should sign fresh tokens is unknown", b.Name))
}

// backupSecrets returns the backup's AWSCURRENT and AWSPREVIOUS values,
// whatever their length (journal.Reader.Stage): a legacy short secret
// retired by a rotation must still be checked during its grace period. The
// caller trusts a value only when its fingerprint is the journal's. A stage
// that does not exist is left out; other errors are returned with what
// could be read.
func backupSecrets(ctx context.Context, b journal.Reader) ([]secret.Secret, error) {
	var held []secret.Secret
	var errs []error
	for _, stage := range []string{journal.StageCurrent, journal.StagePrevious} {
		v, _, err := b.Stage(ctx, stage)
		switch {
		case errors.Is(err, journal.ErrNoBackup):
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		if !v.IsEmpty() {
			held = append(held, v)
		}
	}
	return held, errors.Join(errs...)
}

func fingerprints(ss []secret.Secret) string {
	if len(ss) == 0 {
		return "nothing"
	}
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " and "
		}
		out += s.Fingerprint()
	}
	return out
}

// stop is a fixed verdict for a check whose input is missing.
func stop(o probes.Outcome, reason string) *probes.Result {
	return &probes.Result{Outcome: o, Reason: reason}
}

// compareSource checks, for a rotation at rest whose journal names a store,
// that the store holds the secret the rotation signs with: a deploy writes
// the store's value onto the fleet, so a store that disagrees is a revert
// waiting for the next deploy. It fails new-secret-in-use, saying what the
// store holds (by fingerprint).
func (s Setup) compareSource(ctx context.Context, p *rotationPlan) {
	j := p.journal
	if j == nil || !j.Source.IsStore() || !journal.Steady(j.Phase) || p.signerStop != nil || !s.Source.IsStore() {
		return
	}
	if j.Source != s.Source {
		p.signerStop = stop(probes.Error, fmt.Sprintf("rotation %s journalled the source of truth %s, but this probe may read only %s (VALINE_SOURCE): give it %s", j.ID, j.Source, s.Source, j.Source))
		return
	}
	held, err := s.Sources.Primary(ctx, j.Source)
	switch {
	case err != nil:
		p.signerStop = stop(probes.Error, fmt.Sprintf("rotation %s is %s, but its source of truth cannot be read: %v", j.ID, j.Phase, err))
	case !held.Equal(p.signer):
		p.signerStop = stop(probes.Fail, fmt.Sprintf("rotation %s (%s) signs with %s, but its source of truth %s holds %s: the next deploy would put that on every function (status --fail-on-drift names them)",
			j.ID, j.Phase, p.signer, j.Source, held))
	}
}
