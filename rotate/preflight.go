package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// STSAPI is the one STS call made: who is running this.
type STSAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Identity returns the caller's ARN.
func Identity(ctx context.Context, api STSAPI) (string, error) {
	out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("asking STS who we are: %w", err)
	}
	return aws.ToString(out.Arn), nil
}

// Preflight checks, before a rotation, what can be checked: identity, that
// the fleet can be read and agrees, the backup, an unfinished rotation,
// the baseline a rotation runs first (login, refresh, the security battery
// against the current secret: its findings are warnings, reported by a
// rotation as pre-existing), which modes are possible, the environment's
// room for a secondary, and (with proveSecondary) that the API honours a
// secondary secret: a throwaway one is set on every function, tried, and
// removed, the primary untouched. Results use the probes' outcomes so they
// render like any report.
func Preflight(ctx context.Context, e *Engine, stsAPI STSAPI, proveSecondary bool) []probes.Result {
	var out []probes.Result
	add := func(name string, o probes.Outcome, format string, args ...any) {
		out = append(out, probes.Result{Name: name, Outcome: o, Reason: fmt.Sprintf(format, args...), Attempts: 1})
	}
	if arn, err := Identity(ctx, stsAPI); err != nil {
		add("identity", probes.Error, "%v", err)
	} else {
		add("identity", probes.Pass, "running as %s", arn)
	}

	fs, err := Inspect(ctx, e.Lambda, e.Fleet, e.Profile, e.concurrency())
	if err != nil {
		add("fleet", probes.Error, "reading the fleet's configuration (lambda:GetFunctionConfiguration): %v", err)
		return out
	}
	primary, secondary, consistent := fs.Secrets()
	switch {
	case !consistent:
		add("fleet", probes.Fail, "%s", fs.Drift())
	case primary.IsEmpty():
		add("fleet", probes.Fail, "all %d functions agree, but %s is empty", len(fs.Functions), e.Profile.SecretVar)
	default:
		add("fleet", probes.Pass, "%s", fs.Drift())
	}

	switch cur, err := e.Backup.Current(ctx); {
	case errors.Is(err, ErrNoBackup):
		add("backup", probes.Warn, "backup %s does not exist yet: the first rotation creates it (needs secretsmanager:CreateSecret)", e.Backup.Name)
	case err != nil:
		add("backup", probes.Error, "reading backup %s: %v", e.Backup.Name, err)
	case !cur.Equal(primary):
		add("backup", probes.Warn, "backup %s holds %s as AWSCURRENT, the fleet uses %s: the next rotation backs up the fleet's secret first", e.Backup.Name, cur, primary)
	default:
		add("backup", probes.Pass, "backup %s holds the fleet's secret %s", e.Backup.Name, cur)
	}
	if j, found, err := e.Backup.ReadJournal(ctx); err == nil && found && !j.Phase.Terminal() {
		add("journal", probes.Warn, "rotation %s (%s) is in phase %s: rotate, finalize or rollback continues it", j.ID, j.Mode, j.Phase)
	}

	loggedIn := false
	if e.Verifier != nil && !primary.IsEmpty() {
		// The baseline a rotation will run first: whether it can log in,
		// and the findings it will report as pre-existing (a warning
		// here: they do not stop a rotation).
		base := e.Verifier.Baseline(ctx, primary, nil)
		for _, r := range base.Results {
			if r.Outcome == probes.Fail && probes.RoleOf(r.Name) == probes.RoleBattery {
				r.Outcome = probes.Warn
				r.Reason = "a rotation reports this as a pre-existing finding and does not roll back for it: " + r.Reason
			}
			out = append(out, r)
		}
		login, _ := base.Result("login")
		loggedIn = login.Outcome == probes.Pass
		if !loggedIn {
			add("baseline", probes.Fail, "the probe cannot log in against the secret in force: rotate, finalize and rollback refuse before any write (an emergency rotation goes ahead with a warning)")
		}
	}

	add("maintenance", probes.Pass, "possible: a new primary and no secondary on every function; old tokens are refused at once (emergency: the same, now)")
	if e.Profile.SecondaryVar == "" {
		add("headroom", probes.Pass, "profile %s uses no secondary variable; smallest room left: %d bytes", e.Profile.Name, fs.Headroom(e.Profile, generatedSecretLen, e.Profile.SecondaryVar != ""))
		add("zero-downtime", probes.Warn, "impossible: profile %s names no secondary variable, so the deployment verifies with one secret and no grace period can be given; use --mode maintenance", e.Profile.Name)
		return out
	}
	if h := fs.Headroom(e.Profile, generatedSecretLen, e.Profile.SecondaryVar != ""); h < 0 {
		add("headroom", probes.Fail, "adding %s would exceed Lambda's 4 KB environment limit by %d bytes", e.Profile.SecondaryVar, -h)
	} else {
		add("headroom", probes.Pass, "%d bytes to spare after adding %s", h, e.Profile.SecondaryVar)
	}
	switch {
	case !proveSecondary:
		add("zero-downtime", probes.Skip, "not proven (--read-only): a zero-downtime rotation proves the API honours %s before changing the primary", e.Profile.SecondaryVar)
	case !consistent || primary.IsEmpty() || !secondary.IsEmpty() || e.Verifier == nil:
		add("zero-downtime", probes.Skip, "not tried: the fleet must agree on one primary and have no secondary")
	case !loggedIn:
		add("zero-downtime", probes.Skip, "not tried: the probe cannot log in, and nothing is written before it can")
	default:
		out = append(out, e.proveSecondary(ctx, primary))
	}
	return out
}

// proveSecondary sets a throwaway secondary, checks a token signed with it
// is accepted, and removes it again, whatever happened in between. Each
// write is audited. Only the API's rejection of the token is a "no"; a
// proof that could not tell says so.
func (e *Engine) proveSecondary(ctx context.Context, primary secret.Secret) probes.Result {
	res := func(o probes.Outcome, format string, args ...any) probes.Result {
		return probes.Result{Name: "zero-downtime", Outcome: o, Reason: fmt.Sprintf(format, args...), Attempts: 1}
	}
	if err := e.Audit.Check(); err != nil {
		return res(probes.Skip, "not tried: %v (nothing is written without an audit trail)", err)
	}
	unlock, err := e.lock(ctx, "preflight", journal.Journal{})
	if err != nil {
		return res(probes.Skip, "not tried: %v", err)
	}
	defer unlock()
	throwaway, err := GenerateSecret()
	if err != nil {
		return res(probes.Error, "%v", err)
	}
	e.audit(journal.Journal{}, "preflight", "ok", fmt.Sprintf("setting a throwaway %s=%s on %d functions to prove the API honours it", e.Profile.SecondaryVar, throwaway, len(e.Fleet)), nil)
	if err := e.apply(ctx, journal.Journal{}, secretPair{primary, throwaway}); err != nil {
		_ = e.apply(context.WithoutCancel(ctx), journal.Journal{}, secretPair{primary, secret.Secret{}})
		return res(probes.Error, "setting a throwaway secondary (lambda:UpdateFunctionConfiguration): %v", err)
	}
	rep := e.Verifier.Honours(ctx, throwaway, nil)
	if err := e.apply(context.WithoutCancel(ctx), journal.Journal{}, secretPair{primary, secret.Secret{}}); err != nil {
		return res(probes.Error, "removing the throwaway secondary %s failed: %v; remove %s by hand", throwaway, err, e.Profile.SecondaryVar)
	}
	e.audit(journal.Journal{}, "preflight", "ok", fmt.Sprintf("removed the throwaway %s from %d functions", e.Profile.SecondaryVar, len(e.Fleet)), nil)
	honoured, _ := rep.Result(CheckSecretHonoured)
	switch honoured.Outcome {
	case probes.Pass:
		return res(probes.Pass, "possible: the API honours %s (a throwaway secondary was set, accepted and removed)", e.Profile.SecondaryVar)
	case probes.Fail:
		return res(probes.Fail, "impossible: the API ignores %s: %s; use --mode maintenance", e.Profile.SecondaryVar, honoured.Reason)
	}
	why := honoured.Reason
	if login, _ := rep.Result("login"); login.Outcome != probes.Pass {
		why = "login: " + login.Reason
	}
	return res(probes.Error, "could not tell whether the API honours %s (%s); the throwaway secondary was removed", e.Profile.SecondaryVar, why)
}
