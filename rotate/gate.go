package rotate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// Errors of the gate; each is wrapped with the details.
var (
	// ErrBaselineFailed: before its first write the operation could not log
	// in against the secret in force (wrong password, URL or profile, or
	// the API is down), so it refused and wrote nothing.
	ErrBaselineFailed = errors.New("refused before any write: the baseline could not log in")
	// ErrVerificationPending: the verification after a change could not
	// tell (network, 5xx, throttling, timeouts). The fleet is left as it
	// is and the journal says so; running the same command again verifies
	// again and carries on.
	ErrVerificationPending = errors.New("verification could not tell")
	// ErrInterrupted: the operation was interrupted (SIGINT, SIGTERM); the
	// journal says where it stopped, and running it again carries on.
	ErrInterrupted = errors.New("interrupted")
	// ErrFindingsReported: the change verified, but the verification
	// reported findings it does not count against the change (pre-existing
	// ones, log failures) and --fail-on-findings was given.
	ErrFindingsReported = errors.New("the verification reported findings (--fail-on-findings)")
)

// gate is one operation's judging state, from its baseline to its last
// verification.
type gate struct {
	// baseline is what verifications are judged against (nil: strictly).
	baseline probes.Baseline
	// session is the baseline's login: its refresh token was issued before
	// the change and is tried across it.
	session probes.Session
	// since is this run's first write to a function: the log window's start.
	since time.Time
	// deliberate collects the requests this operation sent expecting a
	// refusal, for the log check.
	deliberate *probes.DeliberateLog
	// findings are the checks whose failures were reported but not counted
	// (pre-existing findings, log failures), by name.
	findings       []string
	failOnFindings bool
}

// runBaseline runs the checks against the secret in force before any
// write, and refuses (ErrBaselineFailed) when the probe cannot log in,
// unless goAhead says the operation must go on anyway (an emergency
// rotation replaces a leaked secret even while the API is down; a rollback
// undoes a change that may have broken it), where the failure is a loud
// warning and the verification afterwards decides.
func (e *Engine) runBaseline(ctx context.Context, current secret.Secret, goAhead func(login probes.Result) (bool, string)) (*gate, *probes.Report, error) {
	g := &gate{deliberate: &probes.DeliberateLog{}}
	if e.Verifier == nil {
		return g, nil, nil
	}
	rep := e.Verifier.Baseline(ctx, current, g.deliberate)
	g.baseline = probes.BaselineOf(rep)
	login, _ := rep.Result("login")
	if login.Outcome != probes.Pass {
		ok, why := false, ""
		if goAhead != nil {
			ok, why = goAhead(login)
		}
		if !ok {
			return g, &rep, fmt.Errorf("%w (%s: %s); nothing was changed: check the probe user's password, --api-url and --profile", ErrBaselineFailed, login.Outcome, login.Reason)
		}
		e.say("WARNING: the baseline could not log in (%s: %s); going ahead: %s; the verification afterwards decides", login.Outcome, login.Reason, why)
		e.audit(journal.Journal{}, "baseline", "could not log in", fmt.Sprintf("%s; going ahead: %s", login.Reason, why), &rep)
		return g, &rep, nil
	}
	g.session, _ = rep.LoginSession()
	if found := g.baseline.Findings(); len(found) > 0 {
		e.say("baseline against %s: login works; findings the deployment already has (reported, not rolled back for): %s", current, strings.Join(found, ", "))
	} else {
		e.say("baseline against %s: login works, no findings", current)
	}
	return g, &rep, nil
}

// oldRefresh is the baseline's refresh token when it was signed with the
// secret the change replaced, so it is a refresh token from before the
// change; otherwise none (the probe forges one from old).
func (g *gate) oldRefresh(old secret.Secret) secret.Token {
	if g.session.Refresh.IsEmpty() || !probes.SignedWith(g.session.Refresh, old) {
		return secret.Token{}
	}
	return g.session.Refresh
}

// note keeps the findings a passing verification reported.
func (g *gate) note(j probes.Judgement) {
	for _, r := range append(append([]probes.Result{}, j.PreExisting...), j.Findings...) {
		g.findings = append(g.findings, r.Name)
	}
}

// findingsError is ErrFindingsReported when the operation reported
// findings and was told to fail on them.
func (g *gate) findingsError() error {
	if !g.failOnFindings || len(g.findings) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; nothing was rolled back", ErrFindingsReported, strings.Join(g.findings, ", "))
}

// verify runs a verification and judges it against the baseline.
func (e *Engine) verify(ctx context.Context, g *gate, expect probes.Expect, old, current secret.Secret) (probes.Report, probes.Judgement) {
	rep := e.Verifier.Verify(ctx, Verification{Expect: expect, Old: old, Current: current,
		OldRefresh: g.oldRefresh(old), Since: g.since, Deliberate: g.deliberate, Propagation: e.propagation()})
	return rep, rep.JudgeAgainst(g.baseline)
}

// pending journals that the verification of the current phase could not
// tell, leaves every function as it is, and returns ErrVerificationPending.
func (e *Engine) pending(ctx context.Context, j *journal.Journal, what string, rep *probes.Report) error {
	kind, outcome := ErrVerificationPending, "could not tell"
	if ctx.Err() != nil {
		// Interrupted (SIGINT): the verification was cut short, not
		// answered. Record it, with a context that is not cancelled, where
		// the re-run expects it.
		kind, outcome, what = ErrInterrupted, "interrupted", "interrupted during the verification"
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	msg := fmt.Sprintf("%s; every function is left as it is (phase %s); run the same command again to verify again and carry on", what, j.Phase)
	if err := e.mark(ctx, j, journal.VerificationPending, outcome, msg, rep); err != nil {
		return errors.Join(fmt.Errorf("%w: %s", kind, msg), err)
	}
	return fmt.Errorf("%w: %s", kind, msg)
}

// mark journals a verification state without changing phase.
func (e *Engine) mark(ctx context.Context, j *journal.Journal, verification, outcome, message string, rep *probes.Report) error {
	j.Verification = verification
	j.UpdatedAt = e.now().UTC()
	if err := e.Backup.WriteJournal(ctx, *j); err != nil {
		return fmt.Errorf("journalling the verification of phase %s: %w", j.Phase, err)
	}
	e.audit(*j, string(j.Phase), outcome, message, rep)
	e.say("%s: %s", j.Phase, message)
	return nil
}

// journalled is a baseline as the journal keeps it.
func journalled(b probes.Baseline) journal.Verdicts {
	if b == nil {
		return nil
	}
	v := journal.Verdicts{}
	for name, o := range b {
		v[name] = string(o)
	}
	return v
}

// fromJournal is the journal's baseline for judging (nil when none).
func fromJournal(v journal.Verdicts) probes.Baseline {
	if v == nil {
		return nil
	}
	b := probes.Baseline{}
	for name, o := range v {
		b[name] = probes.Outcome(o)
	}
	return b
}
