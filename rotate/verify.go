package rotate

import (
	"context"
	"time"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// Verifier proves a change with the probes. The engine calls Baseline
// before an operation's first write and Verify after each change;
// ProbeVerifier is the real one.
type Verifier interface {
	// Baseline runs probes.BaselineChecks (login, new-token-valid, refresh,
	// the security battery) against the secret in force now, concurrently,
	// recording its deliberate requests in d.
	Baseline(ctx context.Context, current secret.Secret, d *probes.DeliberateLog) probes.Report
	// Verify runs the after-rotation checks of v.
	Verify(ctx context.Context, v Verification) probes.Report
	// Honours proves, waiting for propagation, that the API accepts a token
	// signed with key: a report of login and "secret-honoured". Its
	// deliberate requests are recorded in d (nil: not recorded).
	Honours(ctx context.Context, key secret.Secret, d *probes.DeliberateLog) probes.Report
	// RefreshLifetime is the lifetime of the refresh tokens the API issues,
	// when it can be read from one (false when not).
	RefreshLifetime(ctx context.Context) (time.Duration, bool)
}

// Verification is what one verification after a change checks.
type Verification struct {
	// Expect is strict (old tokens refused) or grace (still accepted).
	Expect probes.Expect
	// Old is the secret the change replaced, Current the one now in force.
	Old, Current secret.Secret
	// OldRefresh is a refresh token issued before the change (the
	// baseline's), tried across it; empty means forge one from Old.
	OldRefresh secret.Token
	// Since is the operation's first write: the log check reads from there
	// to the end of the verification.
	Since time.Time
	// Deliberate holds the operation's deliberate requests (the proof of a
	// secondary, say); the verification adds its own.
	Deliberate *probes.DeliberateLog
	// Propagation, when longer than the runner's convergence deadline, is
	// how long the checks that wait for the change must keep trying: the
	// cache TTL of functions that read the secret at run time.
	Propagation time.Duration
}

// ProbeVerifier runs the catalog's checks against Target.
type ProbeVerifier struct {
	Target probes.Target
	// Config carries the probe user's credentials; Expect, the secrets,
	// the old tokens and the log window are set per call.
	Config probes.Config
	Runner probes.Runner
}

// Baseline runs the baseline checks against current.
func (v ProbeVerifier) Baseline(ctx context.Context, current secret.Secret, d *probes.DeliberateLog) probes.Report {
	cfg := v.Config
	cfg.Expect, cfg.OldSecret, cfg.CurrentSecret = probes.Strict, secret.Secret{}, current
	cfg.OldToken, cfg.OldRefresh = secret.Token{}, secret.Token{}
	t := v.Target
	t.Deliberate = d
	return v.Runner.Run(ctx, probes.BaselineChecks(), t, cfg)
}

// Verify runs every catalog check for v.Expect. The log check reads from
// v.Since to the end of the run and leaves out the deliberate requests.
func (v ProbeVerifier) Verify(ctx context.Context, ver Verification) probes.Report {
	cfg := v.Config
	cfg.Expect, cfg.OldSecret, cfg.CurrentSecret = ver.Expect, ver.Old, ver.Current
	cfg.OldToken, cfg.OldRefresh = secret.Token{}, ver.OldRefresh
	cfg.LogsSince, cfg.LogsUntil, cfg.LogsThroughRun = ver.Since, time.Time{}, true
	if cfg.LogsSince.IsZero() {
		cfg.LogsSince = time.Now()
	}
	t := v.Target
	t.Deliberate = ver.Deliberate
	return v.within(ver.Propagation).Runner.Run(ctx, probes.ForExpect(probes.Catalog(), ver.Expect), t, cfg)
}

// within is v with its convergence deadline at least d plus the runner's
// own (a change reaches the functions within d; the checks then need their
// usual time).
func (v ProbeVerifier) within(d time.Duration) ProbeVerifier {
	if d > 0 {
		conv := v.Runner.Convergence
		if conv <= 0 {
			conv = 60 * time.Second // the runner's default
		}
		v.Runner.Convergence = d + conv
	}
	return v
}

// WithPropagation returns v waiting, in every check that waits for a
// change, d longer than its convergence deadline (see
// Verification.Propagation); the engine uses it for Honours.
func (v ProbeVerifier) WithPropagation(d time.Duration) Verifier { return v.within(d) }

// Honours runs login and a check that a token signed with key is accepted.
func (v ProbeVerifier) Honours(ctx context.Context, key secret.Secret, d *probes.DeliberateLog) probes.Report {
	login, _ := probes.CatalogCheck("login")
	t := v.Target
	t.Deliberate = d
	return v.Runner.Run(ctx, []probes.Check{login, probes.HonouredCheck(CheckSecretHonoured, key)}, t, v.Config)
}

// CheckSecretHonoured names the proof, in Honours's report, that the API
// accepts a token signed with a secret it was given as the secondary.
const CheckSecretHonoured = "secret-honoured"

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
