package rotate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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

// PreflightTimeout bounds one preflight row; the proof of a secondary
// waits for propagation twice, so it is generous.
const PreflightTimeout = 5 * time.Minute

// Preflight checks, before a rotation, what can be checked: identity, that
// the fleet can be read and agrees, the backup, an unfinished rotation,
// the baseline a rotation runs first (login, refresh, the security battery
// against the current secret: its findings are warnings, reported by a
// rotation as pre-existing), which modes are possible, the environment's
// room for a secondary, and (with proveSecondary) that the API honours a
// secondary secret: a throwaway one is set on every function, tried, and
// removed, the primary untouched. Its rows are checks run by the probes'
// runner, with durations and deadlines like any report's; the baseline's
// own results follow the "baseline" row.
func Preflight(ctx context.Context, e *Engine, stsAPI STSAPI, proveSecondary bool) []probes.Result {
	pf := &preflight{e: e, sts: stsAPI, prove: proveSecondary}
	rep := probes.Runner{CheckTimeout: PreflightTimeout, Concurrency: 1}.Run(ctx, pf.checks(), probes.Target{}, probes.Config{})
	var out []probes.Result
	for _, r := range rep.Results {
		switch {
		case r.Name == "journal" && r.Outcome == probes.Pass:
			continue // nothing unfinished: not worth a line
		case r.Name == "baseline" && r.Outcome == probes.Skip:
			continue // no verifier, or no secret to run it against
		case r.Name == "baseline" && pf.base != nil:
			out = append(append(out, r), pf.baselineRows()...)
			continue
		}
		out = append(out, r)
	}
	return out
}

// preflight is one run's shared state: rows that need the fleet run after
// the "fleet" row (the runner orders them), which fills fs.
type preflight struct {
	e     *Engine
	sts   STSAPI
	prove bool

	fs                  FleetState
	primary, secondary  secret.Secret
	consistent          bool
	base                *probes.Report
	loggedIn, baseTried bool
}

func row(o probes.Outcome, format string, args ...any) probes.Result {
	return probes.Result{Outcome: o, Reason: fmt.Sprintf(format, args...)}
}

// checks are the rows, in report order.
func (pf *preflight) checks() []probes.Check {
	fleet := []string{"fleet"}
	probe := func(f func(ctx context.Context) probes.Result) probes.Probe {
		return func(ctx context.Context, _ probes.Target, _ probes.Config, _ *slog.Logger) probes.Result {
			return f(ctx)
		}
	}
	return []probes.Check{
		{Name: "identity", Description: "who runs this (STS)", Probe: probe(pf.identity)},
		{Name: "fleet", Description: "the fleet can be read and agrees on one secret", Probe: probe(pf.fleet)},
		{Name: "backup", Description: "the backup secret and what it holds", Needs: fleet, Probe: probe(pf.backup)},
		{Name: "journal", Description: "no rotation stopped mid-way", Probe: probe(pf.journal)},
		{Name: "source", Description: "the source of truth the next deploy reads, and the stacks that deploy the fleet", Needs: fleet, Probe: probe(pf.source)},
		{Name: "baseline", Description: "the baseline a rotation runs first can log in", Needs: fleet, Probe: probe(pf.baseline)},
		{Name: "maintenance", Description: "a maintenance or emergency rotation is possible", Needs: fleet, Probe: probe(pf.maintenance)},
		{Name: "headroom", Description: "every function has room for the rotation's largest write", Needs: fleet, Probe: probe(pf.headroom)},
		{Name: "zero-downtime", Description: "the API honours a secondary secret", Needs: fleet, After: []string{"source", "baseline", "headroom"}, Probe: probe(pf.zeroDowntime)},
	}
}

func (pf *preflight) identity(ctx context.Context) probes.Result {
	if pf.e.Operator != "" { // asked already, for the audit records
		return row(probes.Pass, "running as %s", pf.e.Operator)
	}
	arn, err := Identity(ctx, pf.sts)
	if err != nil {
		return row(probes.Error, "%v", err)
	}
	return row(probes.Pass, "running as %s", arn)
}

func (pf *preflight) fleet(ctx context.Context) probes.Result {
	e := pf.e
	fs, err := e.inspect(ctx, e.Fleet)
	if err != nil {
		return row(probes.Error, "reading the fleet's configuration (lambda:GetFunction): %v", err)
	}
	pf.fs = fs
	pf.primary, pf.secondary, pf.consistent = fs.Secrets()
	switch {
	case !pf.consistent:
		return row(probes.Fail, "%s", fs.Drift())
	case pf.primary.IsEmpty():
		return row(probes.Fail, "all %d functions agree, but %s is empty", len(fs.Functions), e.Profile.SecretVar)
	}
	return row(probes.Pass, "%s", fs.Drift())
}

func (pf *preflight) backup(ctx context.Context) probes.Result {
	b := pf.e.Backup
	switch cur, err := b.Current(ctx); {
	case errors.Is(err, ErrNoBackup):
		return row(probes.Warn, "backup %s does not exist yet: the first rotation creates it (needs secretsmanager:CreateSecret)", b.Name)
	case err != nil:
		return row(probes.Error, "reading backup %s: %v", b.Name, err)
	case !cur.Equal(pf.primary):
		return row(probes.Warn, "backup %s holds %s as AWSCURRENT, the fleet uses %s: the next rotation backs up the fleet's secret first", b.Name, cur, pf.primary)
	default:
		return row(probes.Pass, "backup %s holds the fleet's secret %s", b.Name, cur)
	}
}

func (pf *preflight) journal(ctx context.Context) probes.Result {
	j, found, err := pf.e.Backup.ReadJournal(ctx)
	switch {
	case err != nil:
		return row(probes.Error, "reading the rotation journal: %v", err)
	case found && !j.Phase.Terminal():
		return row(probes.Warn, "rotation %s (%s) is in phase %s: rotate, finalize or rollback continues it", j.ID, j.Mode, j.Phase)
	}
	return row(probes.Pass, "no rotation stopped mid-way")
}

// baseline runs the baseline a rotation will run first: whether it can log
// in, and the findings it will report as pre-existing.
func (pf *preflight) baseline(ctx context.Context) probes.Result {
	if pf.e.Verifier == nil || pf.primary.IsEmpty() {
		return row(probes.Skip, "no verifier, or no secret in force to run it against")
	}
	base := pf.e.Verifier.Baseline(ctx, pf.primary, nil)
	pf.base, pf.baseTried = &base, true
	login, _ := base.Result("login")
	if pf.loggedIn = login.Outcome == probes.Pass; !pf.loggedIn {
		return row(probes.Fail, "the probe cannot log in against the secret in force (%s): rotate, finalize and rollback refuse before any write (an emergency rotation goes ahead with a warning)", login.Reason)
	}
	return row(probes.Pass, "login works against the secret in force")
}

// baselineRows are the baseline's own results, its findings as warnings:
// they do not stop a rotation.
func (pf *preflight) baselineRows() []probes.Result {
	var out []probes.Result
	for _, r := range pf.base.Results {
		if r.Outcome == probes.Fail && probes.RoleOf(r.Name) == probes.RoleBattery {
			r.Outcome = probes.Warn
			r.Reason = "a rotation reports this as a pre-existing finding and does not roll back for it: " + r.Reason
		}
		out = append(out, r)
	}
	return out
}

func (pf *preflight) maintenance(context.Context) probes.Result {
	return row(probes.Pass, "possible: a new primary and no secondary on every function; old tokens are refused at once (emergency: the same, now)")
}

func (pf *preflight) headroom(context.Context) probes.Result {
	p := pf.e.Profile
	h := pf.fs.Headroom(p, generatedSecretLen, p.SecondaryVar != "")
	switch {
	case p.SecondaryVar == "":
		return row(probes.Pass, "profile %s uses no secondary variable; smallest room left: %d bytes", p.Name, h)
	case h < 0:
		return row(probes.Fail, "adding %s would exceed Lambda's 4 KB environment limit by %d bytes", p.SecondaryVar, -h)
	}
	return row(probes.Pass, "%d bytes to spare after adding %s", h, p.SecondaryVar)
}

func (pf *preflight) zeroDowntime(ctx context.Context) probes.Result {
	e := pf.e
	switch {
	case e.Profile.SecondaryVar == "":
		return row(probes.Warn, "impossible: profile %s names no secondary variable, so the deployment verifies with one secret and no grace period can be given; use --mode maintenance", e.Profile.Name)
	case !pf.prove:
		return row(probes.Skip, "not proven (--read-only): a zero-downtime rotation proves the API honours %s before changing the primary", e.Profile.SecondaryVar)
	case !pf.consistent || pf.primary.IsEmpty() || !pf.secondary.IsEmpty() || e.Verifier == nil:
		return row(probes.Skip, "not tried: the fleet must agree on one primary and have no secondary")
	case pf.fs.Headroom(e.Profile, generatedSecretLen, true) < 0:
		return row(probes.Skip, "not tried: the fleet has no room for a secondary")
	case pf.baseTried && !pf.loggedIn:
		return row(probes.Skip, "not tried: the probe cannot log in, and nothing is written before it can")
	}
	return e.proveSecondary(ctx, pf.primary)
}

// proveSecondary sets a throwaway secondary, checks a token signed with it
// is accepted, and removes it again, whatever happened in between. Each
// write is audited. Only the API's rejection of the token is a "no"; a
// proof that could not tell says so.
func (e *Engine) proveSecondary(ctx context.Context, primary secret.Secret) probes.Result {
	res := row
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
	// Functions that read the store at run time get the throwaway there (as
	// its secondary, named after this proof); otherwise only the functions
	// get it: a deploy in between drops it, which is harmless, while the
	// source of truth never holds a throwaway.
	set, where := e.applyFleet, fmt.Sprintf("%s on %d functions", e.Profile.SecondaryVar, len(e.Fleet))
	proof := journal.Journal{ID: "preflight-" + strings.TrimPrefix(journal.NewRotationID(e.now()), "rot-")}
	if e.op.runtime() {
		set, where = e.putStore, fmt.Sprintf("the secondary of %s", e.op.source)
	}
	e.audit(journal.Journal{}, "preflight", "ok", fmt.Sprintf("setting a throwaway %s as %s to prove the API honours it", throwaway, where), nil)
	if err := set(ctx, proof, secretPair{primary, throwaway}); err != nil {
		_ = set(context.WithoutCancel(ctx), proof, secretPair{primary, secret.Secret{}})
		return res(probes.Error, "setting a throwaway secondary (%s): %v", where, err)
	}
	rep := e.propagatingVerifier().Honours(ctx, throwaway, nil)
	if err := set(context.WithoutCancel(ctx), proof, secretPair{primary, secret.Secret{}}); err != nil {
		return res(probes.Error, "removing the throwaway secondary %s failed: %v; remove it from %s by hand", throwaway, err, where)
	}
	e.audit(journal.Journal{}, "preflight", "ok", fmt.Sprintf("removed the throwaway secondary from %s", where), nil)
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

// source reports the source of truth (asked, else journalled, else the
// functions' environment), whether it holds the fleet's secret, and the
// stacks that deploy the fleet: a rotation the next deploy would undo
// fails the row, as rotate refuses it.
func (pf *preflight) source(ctx context.Context) probes.Result {
	e := pf.e
	j, found, err := e.Backup.ReadJournal(ctx)
	if err != nil && !errors.Is(err, ErrNoBackup) {
		return row(probes.Error, "reading the rotation journal: %v", err)
	}
	if err := e.useSource(j, found, false); err != nil {
		return row(probes.Fail, "%v", err)
	}
	stacks := DescribeDeploys(ctx, e.Deploy, pf.fs, e.Profile)
	var deploys []string
	for _, d := range stacks {
		deploys = append(deploys, d.String(e.Profile.SecretVar))
	}
	said := ""
	if len(deploys) > 0 {
		said = "; " + strings.Join(deploys, "; ")
	}
	if err := checkDeploy(stacks, e.op.source, e.Profile.SecretVar, e.AllowDeployDrift); err != nil {
		return row(probes.Fail, "a rotation would be refused: %v", err)
	}
	if e.op.store == nil {
		return row(probes.Pass, "the functions' environment (lambda-env)%s", said)
	}
	primary, secondary, err := e.op.store.Read(ctx)
	if err != nil {
		return row(probes.Error, "reading %s: %v", e.op.source, err)
	}
	if !e.op.runtime() && pf.consistent && !primary.Equal(pf.primary) {
		return row(probes.Fail, "%s holds %s but the functions hold %s: a deploy would change them; make them agree first%s", e.op.source, primary, pf.primary, said)
	}
	return row(probes.Pass, "%s (%s delivery) holds primary %s, secondary %s%s", e.op.source, e.op.delivery, primary, fpOrNone(secondary), said)
}
