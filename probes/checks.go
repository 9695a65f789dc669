package probes

// Labels group checks for selection (the Ginkgo suites' label filters use the same words).
const (
	LabelSmoke    = "smoke"
	LabelStrict   = "strict"
	LabelGrace    = "grace"
	LabelSecurity = "security"
	LabelLogs     = "logs"
)

// Check is one row of the table the runner walks.
type Check struct {
	// Name identifies the check in reports and selections.
	Name string
	// Description says in a line what it proves.
	Description string
	// Needs names the checks that must pass first; their session is handed on.
	Needs []string
	// After names checks that must finish first without having to pass (an
	// ordering, not a requirement); a passing one's session is handed on.
	After []string
	// Expect limits the check to one expectation; "" runs it in both.
	Expect Expect
	// Eventually marks a check that depends on propagation: the runner retries
	// it while it fails, within the convergence deadline.
	Eventually bool
	// Labels group the check (smoke, strict, grace, security, logs).
	Labels []string
	// Probe does the work.
	Probe Probe
}

// Catalog returns every check, in report order. It is the one explicit list:
// the CLI, the suites and the scheduled probe all select from it.
func Catalog() []Check {
	login := []string{"login"}
	// While a rotation propagates, old and new instances serve side by side:
	// a token from the login may be signed with the old secret. So the checks
	// that use a token run after new-secret-in-use and take its session,
	// signed with the new secret (After: an ordering, not a requirement).
	// Attacks signed with the current secret need that session outright.
	// old-token-accepted must wait too: before propagation the old secret is
	// still the primary, and accepting an old token proves nothing about the
	// secondary.
	fresh := []string{"new-secret-in-use"}
	needsFresh := []string{"login", "new-secret-in-use"}
	return []Check{
		{Name: "login", Description: "the probe user's credentials give an access token", Labels: []string{LabelSmoke}, Probe: Login},
		{Name: "new-token-valid", Description: "the profile endpoint accepts a freshly issued access token", Needs: login, After: fresh, Labels: []string{LabelSmoke}, Probe: NewTokenValid},
		{Name: "new-secret-in-use", Description: "fresh tokens are signed with the new secret, not the old one", Needs: login, Eventually: true, Labels: []string{LabelSmoke}, Probe: NewSecretInUse},
		{Name: "old-token-rejected", Description: "a token signed with the old secret is refused", Needs: login, Expect: Strict, Eventually: true, Labels: []string{LabelStrict}, Probe: OldTokenRejected},
		{Name: "old-token-accepted", Description: "a token signed with the old secret is still accepted during the grace period", Needs: login, After: fresh, Expect: Grace, Eventually: true, Labels: []string{LabelGrace}, Probe: OldTokenAccepted},
		{Name: "refresh", Description: "the refresh endpoint gives an access token the profile endpoint accepts", Needs: login, After: fresh, Labels: []string{LabelSmoke}, Probe: Refresh},
		{Name: "old-refresh-rejected", Description: "a refresh token issued before the change is refused", Needs: login, After: fresh, Expect: Strict, Eventually: true, Labels: []string{LabelStrict}, Probe: OldRefreshRejected},
		{Name: "old-refresh-accepted", Description: "a refresh token issued before the change still refreshes during the grace period, into a token signed with the new secret", Needs: login, After: fresh, Expect: Grace, Eventually: true, Labels: []string{LabelGrace}, Probe: OldRefreshAccepted},
		{Name: "no-log-errors", Description: "no failed JWT verifications in the function's log group since the rotation", Labels: []string{LabelLogs}, Probe: NoLogErrors},
		{Name: "security-alg-none", Description: "an unsigned alg=none token is refused", Needs: login, After: fresh, Labels: []string{LabelSecurity}, Probe: AlgNone},
		{Name: "security-hs384-hs512", Description: "HS384 and HS512 tokens signed with the current secret are refused (HS256 pinned)", Needs: needsFresh, Labels: []string{LabelSecurity}, Probe: AlgHS384HS512},
		{Name: "security-expired", Description: "an expired token signed with the current secret is refused", Needs: needsFresh, Labels: []string{LabelSecurity}, Probe: Expired},
		{Name: "security-no-exp", Description: "a token without exp signed with the current secret is refused", Needs: needsFresh, Labels: []string{LabelSecurity}, Probe: NoExp},
		{Name: "security-tampered-signature", Description: "a token with a tampered signature is refused", Needs: login, After: fresh, Labels: []string{LabelSecurity}, Probe: Tampered},
		{Name: "security-empty-key", Description: "a token signed with an empty key is refused", Needs: login, After: fresh, Labels: []string{LabelSecurity}, Probe: EmptyKey},
		{Name: "security-refresh-as-access", Description: "a refresh token is refused where an access token is required", Needs: login, After: fresh, Labels: []string{LabelSecurity}, Probe: RefreshAsAccess},
	}
}

// HasLabel reports whether the check carries the label.
func (c Check) HasLabel(label string) bool {
	for _, l := range c.Labels {
		if l == label {
			return true
		}
	}
	return false
}

// ForExpect keeps the checks that run under the expectation.
func ForExpect(checks []Check, e Expect) []Check {
	var out []Check
	for _, c := range checks {
		if c.Expect == "" || c.Expect == e {
			out = append(out, c)
		}
	}
	return out
}
