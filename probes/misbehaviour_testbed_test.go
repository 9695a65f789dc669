package probes_test

import (
	"strings"
	"testing"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// Each defect of the testbed API must make exactly the check that looks for
// it fail, while the rest of the run still passes: a run that fails for the
// wrong check, or fails everything, tells the on-call nothing.
func TestEachMisbehaviourFailsItsCheck(t *testing.T) {
	t.Parallel()
	// downOutcomes is a run against a down API: login errs, the log check
	// (which reads AWS, not the API) passes, everything else is skipped.
	downOutcomes := func(expect probes.Expect) map[string]probes.Outcome {
		want := map[string]probes.Outcome{"login": probes.Error, "no-log-errors": probes.Pass}
		for _, c := range probes.ForExpect(probes.Catalog(), expect) {
			if _, ok := want[c.Name]; !ok {
				want[c.Name] = probes.Skip
			}
		}
		return want
	}
	tests := []struct {
		name   string
		expect probes.Expect
		m      testbed.Misbehaviour
		// want are the outcomes that are not Pass.
		want map[string]probes.Outcome
		// reasons are fragments the named checks' reasons must contain.
		reasons    map[string][]string
		wantStatus probes.Outcome
	}{
		{
			name: "AcceptOldTokens strict", expect: probes.Strict, m: testbed.AcceptOldTokens,
			want: map[string]probes.Outcome{"old-token-rejected": probes.Fail, "old-refresh-rejected": probes.Fail},
			reasons: map[string][]string{"old-token-rejected": {"old secret", "still trusted", "convergence deadline"},
				"old-refresh-rejected": {"still refreshes", "old secret"}},
			wantStatus: probes.Fail,
		},
		{
			name: "IgnoreSecondary grace", expect: probes.Grace, m: testbed.IgnoreSecondary,
			want: map[string]probes.Outcome{"old-token-accepted": probes.Fail, "old-refresh-accepted": probes.Fail},
			reasons: map[string][]string{"old-token-accepted": {"HTTP 401", "AUTH_JWT_SECRET_SECONDARY"},
				"old-refresh-accepted": {"refused to refresh", "logged out"}},
			wantStatus: probes.Fail,
		},
		{
			// The refresh endpoint forgets the secondary: old sessions die
			// at their access token's expiry, whatever the grace period.
			name: "RefreshIgnoresSecondary grace", expect: probes.Grace, m: testbed.RefreshIgnoresSecondary,
			want:       map[string]probes.Outcome{"old-refresh-accepted": probes.Fail},
			reasons:    map[string][]string{"old-refresh-accepted": {"refused to refresh", "old secret"}},
			wantStatus: probes.Fail,
		},
		{
			// The refresh endpoint signs with the secret that verified the
			// refresh token: old sessions outlive the grace period.
			name: "RefreshSignsWithVerifier grace", expect: probes.Grace, m: testbed.RefreshSignsWithVerifier,
			want:       map[string]probes.Outcome{"old-refresh-accepted": probes.Fail},
			reasons:    map[string][]string{"old-refresh-accepted": {"not signed with the new secret", "outlive the grace period"}},
			wantStatus: probes.Fail,
		},
		{
			name: "AcceptAlgNone", expect: probes.Strict, m: testbed.AcceptAlgNone,
			want:       map[string]probes.Outcome{"security-alg-none": probes.Fail},
			reasons:    map[string][]string{"security-alg-none": {"alg=none"}},
			wantStatus: probes.Fail,
		},
		{
			name: "AcceptAnyHMAC", expect: probes.Strict, m: testbed.AcceptAnyHMAC,
			want:       map[string]probes.Outcome{"security-hs384-hs512": probes.Fail},
			reasons:    map[string][]string{"security-hs384-hs512": {"accepted HS384 and HS512 tokens signed with the current secret: the algorithm is not pinned to HS256", "alg=none was refused"}},
			wantStatus: probes.Fail,
		},
		{
			// A 500 says nothing about tokens: could not tell, after
			// retrying within the check's deadline.
			name: "RefreshFails", expect: probes.Strict, m: testbed.RefreshFails,
			want:       map[string]probes.Outcome{"refresh": probes.Error, "old-refresh-rejected": probes.Error},
			reasons:    map[string][]string{"refresh": {"HTTP 500", "could not answer", "still unavailable"}},
			wantStatus: probes.Error,
		},
		{
			name: "AcceptExpired", expect: probes.Strict, m: testbed.AcceptExpired,
			// Not checking exp also accepts a token with none.
			want:       map[string]probes.Outcome{"security-expired": probes.Fail, "security-no-exp": probes.Fail},
			reasons:    map[string][]string{"security-expired": {"expired"}, "security-no-exp": {"without exp", "works forever"}},
			wantStatus: probes.Fail,
		},
		{
			name: "AcceptRefreshAsAccess", expect: probes.Strict, m: testbed.AcceptRefreshAsAccess,
			want:       map[string]probes.Outcome{"security-refresh-as-access": probes.Fail},
			reasons:    map[string][]string{"security-refresh-as-access": {"refresh token"}},
			wantStatus: probes.Fail,
		},
		{
			// An API that checks no signature also accepts the token signed
			// with the old secret, so in strict mode that check fails too,
			// rightly.
			name: "SkipSignature strict", expect: probes.Strict, m: testbed.SkipSignature,
			want: map[string]probes.Outcome{
				"security-tampered-signature": probes.Fail, "security-empty-key": probes.Fail, "old-token-rejected": probes.Fail,
				"old-refresh-rejected": probes.Fail,
			},
			reasons:    map[string][]string{"security-tampered-signature": {"tampered"}, "security-empty-key": {"empty key"}},
			wantStatus: probes.Fail,
		},
		{
			name: "SkipSignature grace", expect: probes.Grace, m: testbed.SkipSignature,
			want:       map[string]probes.Outcome{"security-tampered-signature": probes.Fail, "security-empty-key": probes.Fail},
			wantStatus: probes.Fail,
		},
		{
			name: "Down strict", expect: probes.Strict, m: testbed.Down,
			want:       downOutcomes(probes.Strict),
			reasons:    map[string][]string{"login": {"unreachable"}, "new-token-valid": {"needs login"}},
			wantStatus: probes.Error,
		},
		{
			name: "Down grace", expect: probes.Grace, m: testbed.Down,
			want:       downOutcomes(probes.Grace),
			reasons:    map[string][]string{"login": {"unreachable"}},
			wantStatus: probes.Error,
		},
		{name: "none strict", expect: probes.Strict, wantStatus: probes.Pass},
		{name: "none grace", expect: probes.Grace, wantStatus: probes.Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := rotatedRig(t, testbed.Options{}, tt.expect)
			r.w.API.SetMisbehaviours(tt.m)
			rep := r.run(t, fastRunner())

			wantOutcomes(t, rep, tt.want, probes.Pass)
			for name, fragments := range tt.reasons {
				wantReason(t, mustResult(t, rep, name), fragments...)
			}
			for _, res := range rep.Results {
				// A finding of the security battery says so first, so it
				// stands out from an environment's failure.
				if strings.HasPrefix(res.Name, "security-") && res.Outcome == probes.Fail && !strings.HasPrefix(res.Reason, "FINDING") {
					t.Errorf("%s failed without a FINDING: %s", res.Name, res.Reason)
				}
				// A check that waits for propagation and failed was retried
				// until the deadline, not judged on one answer.
				if res.Outcome == probes.Fail && strings.HasPrefix(res.Name, "old-") && res.Attempts < 2 {
					t.Errorf("%s failed after %d attempt(s); it waits for propagation", res.Name, res.Attempts)
				}
			}
			if got := rep.Status(); got != tt.wantStatus {
				t.Errorf("Status() = %s, want %s", got, tt.wantStatus)
			}
			if rep.Summary.Total != len(rep.Results) {
				t.Errorf("summary counts %d results, report has %d", rep.Summary.Total, len(rep.Results))
			}
		})
	}
}

// A refresh token really issued before the rotation (VALINE_OLD_REFRESH_TOKEN,
// or a rotation's baseline session) is used as it is: refused after a
// maintenance rotation, still refreshing during a grace period.
func TestRefreshAcrossTheRotationWithARealOldToken(t *testing.T) {
	t.Parallel()
	for _, expect := range []probes.Expect{probes.Strict, probes.Grace} {
		t.Run(string(expect), func(t *testing.T) {
			t.Parallel()
			r := baseRig(t, testbed.Options{}, expect)
			before, err := r.target.API.Login(t.Context(), r.w.ProbeEmail, secret.NewSecret(r.w.ProbePassword))
			if err != nil {
				t.Fatal(err)
			}
			r.rotate(t, expect)
			r.cfg.OldRefresh = before.Refresh
			name := "old-refresh-rejected"
			if expect == probes.Grace {
				name = "old-refresh-accepted"
			}
			rep := r.runOnly(t, fastRunner(), name)
			res := mustResult(t, rep, name)
			if res.Outcome != probes.Pass || !strings.Contains(res.Reason, "issued before the change") {
				t.Errorf("%s with the real old refresh token: %s (%s)", name, res.Outcome, res.Reason)
			}
		})
	}
}
