package probes_test

import (
	"testing"
	"time"

	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// While a rotation propagates, the login may hand out a token signed with
// the old secret. The checks that use a token must wait for
// new-secret-in-use and take its session: otherwise a healthy API fails
// new-token-valid and refresh, and an API that accepts refresh tokens as
// access tokens passes (its old-secret refresh token is refused for its
// signature, not its type).
func TestChecksUseASessionSignedWithTheNewSecret(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		misbehaviours testbed.Misbehaviour
		want          map[string]probes.Outcome
	}{
		{name: "healthy", want: map[string]probes.Outcome{}},
		{name: "refresh accepted as access", misbehaviours: testbed.AcceptRefreshAsAccess,
			want: map[string]probes.Outcome{"security-refresh-as-access": probes.Fail}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// 200 ms per request: the login lands before the API re-reads its
			// secrets, the next request after.
			r := baseRig(t, testbed.Options{PropagationDelay: 300 * time.Millisecond, Latency: 200 * time.Millisecond, Misbehaviours: tc.misbehaviours}, probes.Strict)
			// Let the API cache its (old) secret, so the run starts inside
			// the propagation delay.
			if err := r.w.SimulateUsers(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
			r.cfg.LogsSince = testbed.NextLogMillisecond()
			r.rotate(t, probes.Strict)
			testbed.NextLogMillisecond()
			rep := r.run(t, probes.Runner{Convergence: 5 * time.Second, RetryInterval: 20 * time.Millisecond, MaxRetryInterval: 50 * time.Millisecond})
			want := map[string]probes.Outcome{"no-log-errors": probes.Warn} // no user traffic in the window
			for k, v := range tc.want {
				want[k] = v
			}
			wantOutcomes(t, rep, want, probes.Pass)
		})
	}
}
