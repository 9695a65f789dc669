package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

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
// that the API accepts tokens signed with the current secret, the
// environment's room for a secondary, and (with proveSecondary) that the API
// honours a secondary secret: a throwaway one is set on every function,
// tried, and removed, the primary untouched. Results use the probes'
// outcomes so they render like any report.
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

	if e.Verifier != nil && !primary.IsEmpty() {
		r := e.Verifier.Honours(ctx, primary)
		r.Name = "api"
		out = append(out, r)
	}

	if e.Profile.SecondaryVar == "" {
		add("headroom", probes.Pass, "profile %s uses no secondary variable; smallest room left: %d bytes", e.Profile.Name, fs.Headroom(e.Profile))
		add("dual-secret", probes.Skip, "profile %s names no secondary variable: only maintenance or emergency rotations", e.Profile.Name)
		return out
	}
	if h := fs.Headroom(e.Profile); h < 0 {
		add("headroom", probes.Fail, "adding %s would exceed Lambda's 4 KB environment limit by %d bytes", e.Profile.SecondaryVar, -h)
	} else {
		add("headroom", probes.Pass, "%d bytes to spare after adding %s", h, e.Profile.SecondaryVar)
	}
	switch {
	case !proveSecondary:
		add("dual-secret", probes.Skip, "not proven (--read-only): a zero-downtime rotation proves it before changing the primary")
	case !consistent || primary.IsEmpty() || !secondary.IsEmpty() || e.Verifier == nil:
		add("dual-secret", probes.Skip, "not tried: the fleet must agree on one primary and have no secondary")
	default:
		out = append(out, e.proveSecondary(ctx, primary))
	}
	return out
}

// proveSecondary sets a throwaway secondary, checks a token signed with it
// is accepted, and removes it again, whatever happened in between.
func (e *Engine) proveSecondary(ctx context.Context, primary probes.Secret) probes.Result {
	res := func(o probes.Outcome, format string, args ...any) probes.Result {
		return probes.Result{Name: "dual-secret", Outcome: o, Reason: fmt.Sprintf(format, args...), Attempts: 1}
	}
	unlock, err := e.lock(ctx, "preflight")
	if err != nil {
		return res(probes.Skip, "not tried: %v", err)
	}
	defer unlock()
	throwaway, err := GenerateSecret()
	if err != nil {
		return res(probes.Error, "%v", err)
	}
	if err := e.apply(ctx, secretPair{primary, throwaway}); err != nil {
		_ = e.apply(context.WithoutCancel(ctx), secretPair{primary, probes.Secret{}})
		return res(probes.Error, "setting a throwaway secondary (lambda:UpdateFunctionConfiguration): %v", err)
	}
	r := e.Verifier.Honours(ctx, throwaway)
	if err := e.apply(context.WithoutCancel(ctx), secretPair{primary, probes.Secret{}}); err != nil {
		return res(probes.Error, "removing the throwaway secondary %s failed: %v; remove %s by hand", throwaway, err, e.Profile.SecondaryVar)
	}
	if r.Outcome != probes.Pass {
		return res(probes.Fail, "the API ignores %s: %s; zero-downtime rotation is not possible, use --mode maintenance", e.Profile.SecondaryVar, r.Reason)
	}
	return res(probes.Pass, "the API honours %s (a throwaway secondary was set, accepted and removed)", e.Profile.SecondaryVar)
}
