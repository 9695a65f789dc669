package rotate

import (
	"context"
	"time"

	"github.com/valine/valine-check/probes"
)

// Verifier proves a rotation with the probes. The engine calls it after
// every change; ProbeVerifier is the real one.
type Verifier interface {
	// Verify runs the after-rotation checks expecting expect, with the secret
	// that was replaced (old) and the one now in force (current).
	Verify(ctx context.Context, expect probes.Expect, old, current probes.Secret) probes.Report
	// Honours proves, waiting for propagation, that the API accepts a token
	// signed with key.
	Honours(ctx context.Context, key probes.Secret) probes.Result
	// RefreshLifetime is the lifetime of the refresh tokens the API issues,
	// when it can be read from one (false when not).
	RefreshLifetime(ctx context.Context) (time.Duration, bool)
}

// ProbeVerifier runs the catalog's checks against Target.
type ProbeVerifier struct {
	Target probes.Target
	// Config carries the probe user's credentials; Expect, OldSecret,
	// CurrentSecret and the log window are set per call.
	Config probes.Config
	Runner probes.Runner
}

// Verify runs every catalog check for expect. The log window starts when
// Verify is called: the change it verifies has just been made.
func (v ProbeVerifier) Verify(ctx context.Context, expect probes.Expect, old, current probes.Secret) probes.Report {
	cfg := v.Config
	cfg.Expect, cfg.OldSecret, cfg.CurrentSecret = expect, old, current
	cfg.OldToken = probes.Token{}
	if cfg.LogsSince.IsZero() {
		cfg.LogsSince = time.Now()
	}
	return v.Runner.Run(ctx, probes.ForExpect(probes.Catalog(), expect), v.Target, cfg)
}

// Honours runs login and a check that a token signed with key is accepted.
func (v ProbeVerifier) Honours(ctx context.Context, key probes.Secret) probes.Result {
	login, _ := probes.CatalogCheck("login")
	rep := v.Runner.Run(ctx, []probes.Check{login, probes.HonouredCheck("secret-honoured", key)}, v.Target, v.Config)
	if r, _ := rep.Result("login"); r.Outcome != probes.Pass {
		return r
	}
	r, _ := rep.Result("secret-honoured")
	return r
}

// RefreshLifetime logs in and reads exp - iat of the refresh token.
func (v ProbeVerifier) RefreshLifetime(ctx context.Context) (time.Duration, bool) {
	s, err := v.Target.API.Login(ctx, v.Config.ProbeEmail, v.Config.ProbePassword)
	if err != nil || s.Refresh.IsEmpty() {
		return 0, false
	}
	in, err := probes.Inspect(s.Refresh, time.Now())
	if err != nil || in.ExpiresAt == nil || in.IssuedAt == nil {
		return 0, false
	}
	return in.ExpiresAt.Sub(*in.IssuedAt), true
}
