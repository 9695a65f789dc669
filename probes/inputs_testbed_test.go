package probes_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// A rotation reaches the API only after its propagation delay: a strict run
// started at once waits for it within the convergence deadline, and says
// how long it waited; a deadline shorter than the delay fails, and says why.
func TestPropagation(t *testing.T) {
	t.Parallel()
	const delay = 300 * time.Millisecond
	tests := []struct {
		name        string
		convergence time.Duration
		want        probes.Outcome
		wantStatus  probes.Outcome
	}{
		{"converges within the deadline", 3 * time.Second, probes.Pass, probes.Pass},
		{"deadline shorter than the delay", 50 * time.Millisecond, probes.Fail, probes.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The API read its secrets at start; it re-reads them no sooner
			// than delay later, so the run below starts before the rotation
			// has reached it.
			r := baseRig(t, testbed.Options{PropagationDelay: delay}, probes.Strict)
			r.target.Logs = nil
			r.rotate(t, probes.Strict)
			runner := fastRunner()
			runner.Convergence = tt.convergence
			rep := r.runOnly(t, runner, "new-secret-in-use", "old-token-rejected")

			res := mustResult(t, rep, "old-token-rejected")
			if res.Outcome != tt.want {
				t.Fatalf("old-token-rejected: %s, want %s: %s", res.Outcome, tt.want, res.Reason)
			}
			if rep.Status() != tt.wantStatus {
				t.Errorf("Status() = %s, want %s", rep.Status(), tt.wantStatus)
			}
			switch tt.want {
			case probes.Pass:
				if res.Attempts < 2 {
					t.Errorf("passed at attempt %d: the run did not start before propagation, so nothing was waited for", res.Attempts)
				}
				if res.ConvergedAfter == nil || *res.ConvergedAfter <= 0 || *res.ConvergedAfter > tt.convergence {
					t.Errorf("ConvergedAfter = %v, want within (0, %s]", res.ConvergedAfter, tt.convergence)
				}
				if ns := mustResult(t, rep, "new-secret-in-use"); ns.Outcome != probes.Pass || ns.ConvergedAfter == nil {
					t.Errorf("new-secret-in-use: %s after %v: %s", ns.Outcome, ns.ConvergedAfter, ns.Reason)
				}
			case probes.Fail:
				wantReason(t, res, "still trusted", "convergence deadline "+tt.convergence.String())
				if res.ConvergedAfter != nil {
					t.Errorf("a failed check has ConvergedAfter %v", *res.ConvergedAfter)
				}
			}
		})
	}
}

// The old token comes from the input, or is forged with the old secret; the
// check says what it cannot do without one, and refuses an input that
// proves nothing.
func TestOldTokenInputs(t *testing.T) {
	t.Parallel()
	// signedWithOld is a token with a real session's claims (subject, type),
	// expiring at exp, signed with the old secret, as a token kept from
	// before the rotation would be.
	signedWithOld := func(t *testing.T, r *rig, exp time.Time) secret.Token {
		t.Helper()
		s, err := r.target.API.Login(t.Context(), r.w.ProbeEmail, secret.NewSecret(r.w.ProbePassword))
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		claims, err := probes.Claims(s.Access)
		if err != nil {
			t.Fatalf("Claims: %v", err)
		}
		claims["iat"] = exp.Add(-15 * time.Minute).Unix()
		claims["exp"] = exp.Unix()
		tok, err := probes.Forge(claims, jwt.SigningMethodHS256, r.old)
		if err != nil {
			t.Fatalf("Forge: %v", err)
		}
		return tok
	}
	later := func() time.Time { return time.Now().Add(10 * time.Minute) }
	tests := []struct {
		name   string
		expect probes.Expect
		m      testbed.Misbehaviour
		// input changes the config after the rotation.
		input      func(t *testing.T, r *rig)
		check      string
		want       probes.Outcome
		reason     []string
		wantSource string
	}{
		{
			name: "given old token, strict", expect: probes.Strict,
			input: func(t *testing.T, r *rig) {
				r.cfg.OldToken = signedWithOld(t, r, later())
				r.cfg.OldSecret = secret.Secret{}
			},
			check: "old-token-rejected", want: probes.Pass, wantSource: "given",
		},
		{
			// The same input against an API that still trusts the old
			// secret: the given token is really what is sent.
			name: "given old token, strict, API accepts old tokens", expect: probes.Strict, m: testbed.AcceptOldTokens,
			input: func(t *testing.T, r *rig) {
				r.cfg.OldToken = signedWithOld(t, r, later())
				r.cfg.OldSecret = secret.Secret{}
			},
			check: "old-token-rejected", want: probes.Fail, reason: []string{"given", "still trusted"}, wantSource: "given",
		},
		{
			name: "given old token, grace", expect: probes.Grace,
			input: func(t *testing.T, r *rig) {
				r.cfg.OldToken = signedWithOld(t, r, later())
				r.cfg.OldSecret = secret.Secret{}
			},
			check: "old-token-accepted", want: probes.Pass, wantSource: "given",
		},
		{
			name: "given old token wins over the old secret", expect: probes.Strict,
			input: func(t *testing.T, r *rig) { r.cfg.OldToken = signedWithOld(t, r, later()) },
			check: "old-token-rejected", want: probes.Pass, wantSource: "given",
		},
		{
			// An expired token is refused whatever its secret: its
			// rejection proves nothing, so it must not pass.
			name: "expired given old token", expect: probes.Strict,
			input: func(t *testing.T, r *rig) {
				r.cfg.OldToken = signedWithOld(t, r, time.Now().Add(-time.Minute))
				r.cfg.OldSecret = secret.Secret{}
			},
			check: "old-token-rejected", want: probes.Warn, reason: []string{"expired", "proves nothing"},
		},
		{
			name: "forged with the old secret", expect: probes.Strict,
			check: "old-token-rejected", want: probes.Pass, wantSource: "forged with old secret",
		},
		{
			name: "neither old token nor old secret, strict", expect: probes.Strict,
			input: func(t *testing.T, r *rig) { r.cfg.OldSecret = secret.Secret{} },
			check: "old-token-rejected", want: probes.Skip, reason: []string{"VALINE_OLD_TOKEN", "VALINE_OLD_SECRET"},
		},
		{
			name: "neither old token nor old secret, grace", expect: probes.Grace,
			input: func(t *testing.T, r *rig) { r.cfg.OldSecret = secret.Secret{} },
			check: "old-token-accepted", want: probes.Skip, reason: []string{"VALINE_OLD_TOKEN", "VALINE_OLD_SECRET"},
		},
		{
			name: "old secret equal to current", expect: probes.Strict,
			input: func(t *testing.T, r *rig) { r.cfg.OldSecret = r.cfg.CurrentSecret },
			check: "old-token-rejected", want: probes.Error, reason: []string{"the same", "nothing was rotated"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := baseRig(t, testbed.Options{}, tt.expect)
			r.target.Logs = nil
			r.rotate(t, tt.expect)
			if tt.input != nil {
				tt.input(t, r)
			}
			r.w.API.SetMisbehaviours(tt.m)
			rep := r.runOnly(t, fastRunner(), tt.check)
			res := mustResult(t, rep, tt.check)
			if res.Outcome != tt.want {
				t.Fatalf("%s: %s, want %s: %s", tt.check, res.Outcome, tt.want, res.Reason)
			}
			wantReason(t, res, tt.reason...)
			if tt.wantSource != "" {
				if src, _ := res.Details["oldToken"].(string); !strings.HasPrefix(src, tt.wantSource) {
					t.Errorf("details oldToken = %q, want it to start with %q", src, tt.wantSource)
				}
			}
			if login := mustResult(t, rep, "login"); login.Outcome != probes.Pass {
				t.Errorf("login: %s: %s", login.Outcome, login.Reason)
			}
		})
	}
}
