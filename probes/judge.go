package probes

import (
	"fmt"
	"slices"
	"strings"
)

// The gate judges a change, not the deployment: after a rotation (or a
// finalize, or a rollback) only what the change broke counts against it.
// Before its first write the change runs a baseline, the same checks
// against the secret in force then; after it, each result falls in one of
// four kinds (see Judge).

// Role is what a check judges, for the gate.
type Role string

// The roles.
const (
	// RoleRotation checks prove the change itself (login, the fresh token
	// and its signer, old tokens, refresh, refresh across the change, a
	// secondary honoured): any failure counts against the change.
	RoleRotation Role = "rotation"
	// RoleBattery checks probe the deployment's weaknesses (the security
	// battery): a failure counts against the change only if the baseline
	// passed.
	RoleBattery Role = "battery"
	// RoleLogs checks read the logs: failed verifications after the change
	// are reported (in strict mode they are mostly users' old tokens being
	// refused, as intended), never counted against it.
	RoleLogs Role = "logs"
)

// RoleOf is the role of the named check: the security label makes a
// battery check, the logs label a log check, anything else (including
// checks outside the catalog, such as a proof that a secret is honoured)
// a rotation check.
func RoleOf(name string) Role {
	c, ok := CatalogCheck(name)
	switch {
	case ok && c.HasLabel(LabelSecurity):
		return RoleBattery
	case ok && c.HasLabel(LabelLogs):
		return RoleLogs
	}
	return RoleRotation
}

// BaselineChecks are the checks a baseline runs, with the checks they
// need, in catalog order: login, new-token-valid, refresh and the security
// battery (whose attacks signed with the current secret need
// new-secret-in-use). They run concurrently, so a baseline costs about one
// login and one round of requests.
func BaselineChecks() []Check {
	checks, err := Select(Catalog(), []string{"login", "new-token-valid", "refresh", LabelSecurity})
	if err != nil {
		panic("probes: the catalog lost a baseline check: " + err.Error())
	}
	return checks
}

// Baseline is the security battery's verdicts against the secret in force
// before a change, by check name.
type Baseline map[string]Outcome

// BaselineOf keeps the battery's verdicts of a baseline run.
func BaselineOf(rep Report) Baseline {
	b := Baseline{}
	for _, r := range rep.Results {
		if RoleOf(r.Name) == RoleBattery {
			b[r.Name] = r.Outcome
		}
	}
	return b
}

// Findings are the names of the battery checks that failed, sorted.
func (b Baseline) Findings() []string {
	var names []string
	for name, o := range b {
		if o == Fail {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Judgement sorts a run after a change into what the gate acts on.
type Judgement struct {
	// Caused are the failures the change caused: a rotation check that
	// failed, or a battery check that passed in the baseline and fails now.
	Caused []Result
	// Pending are the checks that could not tell (network, 5xx, throttling,
	// timeouts): never a reason to undo, and never a pass.
	Pending []Result
	// PreExisting are the findings the baseline already had.
	PreExisting []Result
	// Findings are the other failures not counted against the change: log
	// failures, and battery findings the baseline could not judge.
	Findings []Result
}

// Verdict is Fail when the change caused a failure, else Error when some
// check could not tell, else Pass (findings or not).
func (j Judgement) Verdict() Outcome {
	switch {
	case len(j.Caused) > 0:
		return Fail
	case len(j.Pending) > 0:
		return Error
	}
	return Pass
}

// Judge sorts rep's results against the baseline. A nil baseline judges
// strictly: every failure counts against the change.
func Judge(base Baseline, rep Report) Judgement {
	var j Judgement
	for _, r := range rep.Results {
		switch r.Outcome {
		case Error:
			j.Pending = append(j.Pending, r)
		case Fail:
			before, known := base[r.Name]
			switch {
			case base == nil:
				j.Caused = append(j.Caused, r)
			case RoleOf(r.Name) == RoleLogs:
				j.Findings = append(j.Findings, r)
			case RoleOf(r.Name) == RoleRotation, known && before == Pass:
				j.Caused = append(j.Caused, r)
			case known && before == Fail:
				j.PreExisting = append(j.PreExisting, r)
			default:
				j.Findings = append(j.Findings, r)
			}
		}
	}
	return j
}

// Gate is a report's judgement against a baseline, as the report carries
// it (JSON "gate"): the verdict and the checks of each kind, by name.
type Gate struct {
	Verdict     Outcome  `json:"verdict"`
	Caused      []string `json:"caused"`
	Pending     []string `json:"pending"`
	PreExisting []string `json:"preExisting"`
	Findings    []string `json:"findings"`
}

// JudgeAgainst judges the report against base, marks each result with its
// baseline outcome (and PreExisting), records the gate in the report
// (Status then gives the gate's verdict) and returns the judgement.
func (r *Report) JudgeAgainst(base Baseline) Judgement {
	j := Judge(base, *r)
	pre := map[string]bool{}
	for _, res := range j.PreExisting {
		pre[res.Name] = true
	}
	for i := range r.Results {
		if o, ok := base[r.Results[i].Name]; ok {
			r.Results[i].Baseline = o
		}
		r.Results[i].PreExisting = pre[r.Results[i].Name]
	}
	r.Gate = &Gate{Verdict: j.Verdict(), Caused: names(j.Caused), Pending: names(j.Pending),
		PreExisting: names(j.PreExisting), Findings: names(j.Findings)}
	return j
}

// Failed returns the results that failed or errored, in report order.
func (r Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Outcome == Fail || res.Outcome == Error {
			out = append(out, res)
		}
	}
	return out
}

func names(rs []Result) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// Summary says in one line what the gate found: what the change caused,
// what could not be told, and the findings it does not count.
func (g Gate) Summary() string {
	var parts []string
	add := func(names []string, what string) {
		if len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (%s)", len(names), what, strings.Join(names, ", ")))
		}
	}
	add(g.Caused, "caused by the change")
	add(g.Pending, "could not tell")
	add(g.PreExisting, "pre-existing findings, not counted against the change")
	add(g.Findings, "other findings, not counted against the change")
	if len(parts) == 0 {
		return "nothing failed"
	}
	return strings.Join(parts, "; ")
}
