package rotate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// TestEnginePreflight runs preflight against healthy and unhealthy
// deployments: each result is what an operator needs to know, and every
// function's environment is byte for byte what it was, even after the
// dual-secret proof set and removed a throwaway secondary.
func TestEnginePreflight(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		opts  rigOptions
		setup func(t *testing.T, r *fleetRig)
		prove bool
		want  map[string]probes.Outcome
		// says holds fragments a result's reason must contain.
		says map[string]string
		// writes says the proof touched the functions.
		writes bool
	}{
		{
			name: "healthy, no backup yet", prove: true, writes: true,
			want: map[string]probes.Outcome{"identity": probes.Pass, "fleet": probes.Pass, "backup": probes.Warn, "login": probes.Pass, "security-hs384-hs512": probes.Pass, "maintenance": probes.Pass, "headroom": probes.Pass, "zero-downtime": probes.Pass},
			says: map[string]string{"backup": "does not exist yet", "fleet": "all 3 functions agree"},
		},
		{
			name: "healthy, after a rotation", prove: true, writes: true,
			setup: func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted) },
			want:  map[string]probes.Outcome{"identity": probes.Pass, "fleet": probes.Pass, "backup": probes.Pass, "login": probes.Pass, "security-hs384-hs512": probes.Pass, "maintenance": probes.Pass, "headroom": probes.Pass, "zero-downtime": probes.Pass},
		},
		{
			name: "read-only",
			want: map[string]probes.Outcome{"identity": probes.Pass, "fleet": probes.Pass, "backup": probes.Warn, "login": probes.Pass, "security-hs384-hs512": probes.Pass, "maintenance": probes.Pass, "headroom": probes.Pass, "zero-downtime": probes.Skip},
		},
		{
			name: "API ignores the secondary", prove: true, writes: true,
			opts: rigOptions{misbehaviours: testbed.IgnoreSecondary, convergence: 300 * time.Millisecond},
			want: map[string]probes.Outcome{"identity": probes.Pass, "fleet": probes.Pass, "backup": probes.Warn, "login": probes.Pass, "security-hs384-hs512": probes.Pass, "maintenance": probes.Pass, "headroom": probes.Pass, "zero-downtime": probes.Fail},
			says: map[string]string{"zero-downtime": "maintenance"},
		},
		{
			name: "drifted fleet", prove: true,
			setup: func(t *testing.T, r *fleetRig) {
				if err := r.w.EditEnv(t.Context(), r.w.Functions[1], func(env map[string]string) { env[r.w.Profile.SecretVar] = reveal(mustSecret(t)) }); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string]probes.Outcome{"identity": probes.Pass, "fleet": probes.Fail, "zero-downtime": probes.Skip},
			says: map[string]string{"fleet": "DRIFT"},
		},
		{
			name: "in a grace period", prove: true,
			setup: func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace) },
			want:  map[string]probes.Outcome{"identity": probes.Pass, "fleet": probes.Pass, "backup": probes.Pass, "journal": probes.Warn, "login": probes.Pass, "security-hs384-hs512": probes.Pass, "maintenance": probes.Pass, "zero-downtime": probes.Skip},
		},
		{
			name: "profile without a secondary variable", prove: true,
			opts: rigOptions{profile: profile.Presets["cookie"]},
			want: map[string]probes.Outcome{"identity": probes.Pass, "fleet": probes.Pass, "login": probes.Pass, "security-hs384-hs512": probes.Pass, "maintenance": probes.Pass, "headroom": probes.Pass, "zero-downtime": probes.Warn},
			says: map[string]string{"zero-downtime": "impossible: profile cookie names no secondary variable", "maintenance": "possible"},
		},
		{
			// The battery's findings are the ones a rotation will report as
			// pre-existing: warnings here, since they do not stop it.
			name: "pre-existing findings", prove: true, writes: true,
			opts: rigOptions{misbehaviours: testbed.AcceptAnyHMAC},
			want: map[string]probes.Outcome{"login": probes.Pass, "security-hs384-hs512": probes.Warn, "security-alg-none": probes.Pass, "zero-downtime": probes.Pass},
			says: map[string]string{"security-hs384-hs512": "pre-existing finding"},
		},
		{
			// A wrong password: nothing is written, not even the proof.
			name: "probe cannot log in", prove: true,
			setup: func(t *testing.T, r *fleetRig) { r.w.API.AddUser(r.w.ProbeEmail, "another password") },
			want:  map[string]probes.Outcome{"login": probes.Fail, "baseline": probes.Fail, "zero-downtime": probes.Skip},
			says:  map[string]string{"zero-downtime": "nothing is written"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, tc.opts)
			if tc.setup != nil {
				tc.setup(t, r)
			}
			before, envs := r.updates(), r.envs(t)
			results := rotate.Preflight(t.Context(), r.engine(), r.stsClient(), tc.prove)
			got := map[string]probes.Result{}
			var text strings.Builder
			for _, res := range results {
				got[res.Name] = res
				text.WriteString(res.Name + ": " + res.Reason + "\n")
			}
			for name, want := range tc.want {
				res, ok := got[name]
				switch {
				case !ok:
					t.Errorf("no %s result:\n%s", name, text.String())
				case res.Outcome != want:
					t.Errorf("%s: %s, want %s: %s", name, res.Outcome, want, res.Reason)
				case !strings.Contains(res.Reason, tc.says[name]):
					t.Errorf("%s: reason %q does not say %q", name, res.Reason, tc.says[name])
				}
			}
			if n := r.updates() - before; (n > 0) != tc.writes {
				t.Errorf("preflight made %d UpdateFunctionConfiguration calls", n)
			}
			r.wantEnvsEqual(t, envs)
			r.wantNoLeak(t, "the preflight results", text.String())
		})
	}
}
