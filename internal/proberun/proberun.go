// Package proberun is the scheduled probe's run, shared by the Lambda
// (cmd/valine-probe) and `valine-check probe`, so both do exactly the same:
// resolve the probe user's credentials, read the rotation journal, choose
// the checks and their inputs from it, and run them.
//
// It lives outside probes because it reads the journal (the read side,
// package journal), which probes has no business with; it links nothing
// that writes to AWS.
package proberun

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/probes"
)

// Setup is what a scheduled probe needs; build it once (its credential
// source caches across runs) and call Run for each run.
type Setup struct {
	// API speaks the deployment's auth API.
	API *probes.Client
	// Credentials gives the probe user's credentials at the start of each run.
	Credentials CredentialSource
	// Backup is the rotation's backup secret, whose tags hold the journal
	// and whose stages hold the old and the new secret. A zero Backup (no
	// Name) runs without the journal: no old-token check, and
	// new-secret-in-use (with the attacks signed with the current secret)
	// is skipped; so it is when the secret exists without a journal. A
	// Name whose secret does not exist errs new-secret-in-use: it is a
	// misconfiguration, not a fleet never rotated. Only DescribeSecret and
	// GetSecretValue are called.
	Backup journal.Reader
	// Sources reads the source of truth a journalled rotation names (an
	// SSM parameter, a Secrets Manager secret), so that the journal check
	// (new-secret-in-use) fails when it does not hold the secret the
	// rotation put in force: the next deploy would write it onto every
	// function. Source is the one store the probe may read (its IAM
	// policy): a journal naming another errs the check. A zero Source does
	// not compare.
	Sources journal.SourceReader
	Source  journal.Source
	// Runner owns deadlines, retries and concurrency.
	Runner probes.Runner
	// Logger receives one info line per run about what the journal said;
	// nil discards it.
	Logger *slog.Logger
}

// Defaults of a scheduled run's runner, shorter than after-rotation's: a
// run every few minutes must end well within the Lambda's timeout.
const (
	DefaultCheckTimeout = 10 * time.Second
	DefaultConvergence  = 20 * time.Second
)

// Checks is what a scheduled run always checks (the old-token check is
// added from the journal): login, the fresh token, its signer, refresh and
// the security battery. The log check is left out: it reads the API's log
// group, a permission the probe does not need for anything else.
var Checks = []string{"login", "new-token-valid", checkNewSecretInUse, "refresh", probes.LabelSecurity}

// Run runs the probe once and returns the report. It never fails as a
// whole: an unreachable API is a failed (errored) login, unreadable
// credentials are an errored login with the reason, an unreadable journal
// is an errored new-secret-in-use; the checks that need them are skipped.
func (s Setup) Run(ctx context.Context) probes.Report {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	overrides := map[string]*probes.Result{}
	cfg := probes.Config{}
	switch {
	case s.Credentials == nil:
		overrides["login"] = stop(probes.Error, "no probe credentials configured")
	default:
		c, err := s.Credentials.Credentials(ctx)
		if err != nil {
			overrides["login"] = stop(probes.Error, err.Error())
			break
		}
		cfg.ProbeEmail, cfg.ProbePassword = c.Email, c.Password
	}

	plan := planRotation(ctx, s.Backup)
	s.compareSource(ctx, &plan)
	cfg.Expect = plan.expect
	cfg.CurrentSecret = plan.signer
	cfg.OldSecret = plan.retired
	names := Checks
	if plan.oldCheck != "" {
		names = append(names[:len(names):len(names)], plan.oldCheck)
		if plan.oldStop != nil {
			overrides[plan.oldCheck] = plan.oldStop
		}
	}
	if plan.signerStop != nil {
		overrides[checkNewSecretInUse] = plan.signerStop
	}
	if j := plan.journal; j != nil {
		log.Info("rotation journal", "backup", s.Backup.Name, "rotation", j.ID, "mode", j.Mode, "phase", j.Phase,
			"signer", plan.signer, "retired", plan.retired, "oldCheck", plan.oldCheck)
	}

	checks, err := probes.Select(probes.Catalog(), names)
	if err != nil {
		// The names are the catalog's own; only a renamed check gets here.
		return probes.NewReport([]probes.Result{{Name: "login", Outcome: probes.Error,
			Reason: fmt.Sprintf("choosing the checks: %v", err)}}, s.API.BaseURL, s.API.Profile.Name, "", time.Now())
	}
	for i, c := range checks {
		if r, ok := overrides[c.Name]; ok {
			checks[i].Probe = fixed(*r)
			checks[i].Eventually = false
		}
	}
	rep := s.Runner.Run(ctx, checks, probes.Target{API: s.API}, cfg)
	if login, ok := rep.Result("login"); ok && login.Outcome == probes.Fail {
		// The API refused the password: it may have just been changed.
		if f, ok := s.Credentials.(interface{ Forget() }); ok {
			f.Forget()
		}
	}
	return rep
}

// fixed is a probe that returns r: the verdict, known before the run, of a
// check whose input is missing.
func fixed(r probes.Result) probes.Probe {
	return func(context.Context, probes.Target, probes.Config, *slog.Logger) probes.Result { return r }
}
