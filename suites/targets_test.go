package suites

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// The environment variables that point the suite at a real deployment, named
// as the CLI names them. Secrets come only from the environment.
const (
	envAPIURL        = "VALINE_API_URL"
	envProfile       = "VALINE_PROFILE"
	envProbeEmail    = "VALINE_PROBE_EMAIL"
	envProbePassword = "VALINE_PROBE_PASSWORD"
	envOldSecret     = "VALINE_OLD_SECRET"
	envSecret        = "VALINE_SECRET"
	envOldToken      = "VALINE_OLD_TOKEN"
	envFunction      = "VALINE_FUNCTION"
	envExpect        = "VALINE_EXPECT"
	envSince         = "VALINE_SINCE"
	envConvergence   = "VALINE_CONVERGENCE"
	envCheckTimeout  = "VALINE_CHECK_TIMEOUT"
)

// deployment is a real Valine deployment, checked as it is: nothing is rotated.
type deployment struct{ in Input }

// deploymentFromEnv reads the deployment from the environment. The log window
// ends now, before any spec runs, so the specs' own deliberate rejections
// (old tokens, forged tokens) are never counted as failures.
func deploymentFromEnv(ctx context.Context, getenv func(string) string) (deployment, error) {
	var missing []string
	for _, k := range []string{envAPIURL, envProbeEmail, envProbePassword} {
		if getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return deployment{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	profile, err := profile.Resolve(getenv(envProfile))
	if err != nil {
		return deployment{}, fmt.Errorf("%s: %w", envProfile, err)
	}
	expect, err := probes.ParseExpect(orDefault(getenv(envExpect), string(probes.Strict)))
	if err != nil {
		return deployment{}, fmt.Errorf("%s: %w", envExpect, err)
	}
	now := time.Now()
	since, err := parseSince(orDefault(getenv(envSince), "1h"), now)
	if err != nil {
		return deployment{}, fmt.Errorf("%s: %w", envSince, err)
	}
	var runner probes.Runner
	for k, d := range map[string]*time.Duration{envConvergence: &runner.Convergence, envCheckTimeout: &runner.CheckTimeout} {
		if v := getenv(k); v != "" {
			if *d, err = time.ParseDuration(v); err != nil {
				return deployment{}, fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	target := probes.Target{
		API:      &probes.Client{BaseURL: getenv(envAPIURL), Profile: profile, UserAgent: "valine-check-suites"},
		Function: getenv(envFunction),
	}
	if target.Function != "" {
		// AWS is configured the standard way (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL...).
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return deployment{}, fmt.Errorf("loading AWS configuration: %w", err)
		}
		target.Logs = cloudwatchlogs.NewFromConfig(awsCfg)
	}
	return deployment{in: Input{Target: target, Runner: runner, Config: probes.Config{
		Expect:        expect,
		ProbeEmail:    getenv(envProbeEmail),
		ProbePassword: secret.NewSecret(getenv(envProbePassword)),
		OldToken:      secret.NewToken(getenv(envOldToken)),
		OldSecret:     secret.NewSecret(getenv(envOldSecret)),
		CurrentSecret: secret.NewSecret(getenv(envSecret)),
		LogsSince:     since,
		LogsUntil:     now,
	}}}, nil
}

// stage returns the deployment's Input, or why the expectation does not
// apply: VALINE_EXPECT chose the other one.
func (d deployment) stage(_ context.Context, expect probes.Expect) (Input, string) {
	if d.in.Config.Expect != expect {
		return Input{}, fmt.Sprintf("%s=%s: the deployment is checked for %s, so the %s specs do not apply",
			envExpect, d.in.Config.Expect, d.in.Config.Expect, expect)
	}
	return d.in, ""
}

// secrets returns the secret values the deployment was given, for the leak check.
func (d deployment) secrets() []string {
	c := d.in.Config
	return []string{string(c.ProbePassword.Reveal()), string(c.OldSecret.Reveal()),
		string(c.CurrentSecret.Reveal()), c.OldToken.Reveal()}
}

// parseSince accepts an RFC 3339 time or a duration before now, as the CLI's --since does.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("neither an RFC 3339 time nor a positive duration")
	}
	return now.Add(-d), nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// localTestbed is the in-process world (kumo and the reference Valine API),
// rotated by the suite itself: the initial secret is the old one, a fresh
// one the new.
type localTestbed struct {
	world   *testbed.World
	current secret.Secret
}

func startTestbed(ctx context.Context) (*localTestbed, error) {
	current, err := rotate.GenerateSecret()
	if err != nil {
		return nil, err
	}
	w, err := testbed.Start(ctx, testbed.Options{PropagationDelay: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	return &localTestbed{world: w, current: current}, nil
}

// stage puts the world in the state the expectation checks: for grace, the
// new secret primary and the old one secondary (the runbook's staging); for
// strict, the secondary removed (the finalize). The log window opens just
// before the change, after any earlier container's deliberate rejections,
// and closes once ordinary users have made verified requests, before this
// container's own specs send their forged tokens.
func (tb *localTestbed) stage(ctx context.Context, expect probes.Expect) (Input, string) {
	GinkgoHelper()
	secondary := ""
	if expect == probes.Grace {
		secondary = tb.world.InitialSecret()
	}
	since := testbed.NextLogMillisecond()
	Expect(tb.world.SetSecrets(ctx, string(tb.current.Reveal()), secondary)).To(Succeed(), "rotating the testbed's secret")
	in := tb.input(expect, since)
	// Users come once the API signs with the new secret: one whose login and
	// profile call straddled a maintenance rotation would be logged out, a
	// failure that has no place in this window.
	By("waiting for the API to sign with the new secret")
	ExpectCheckPasses(ctx, in, "new-secret-in-use")
	Expect(tb.world.SimulateUsers(ctx, 3)).To(Succeed(), "simulating users")
	in.Config.LogsUntil = testbed.NextLogMillisecond()
	return in, ""
}

// secrets returns the testbed's secret values, for the leak check.
func (tb *localTestbed) secrets() []string {
	return []string{tb.world.InitialSecret(), string(tb.current.Reveal()), tb.world.ProbePassword}
}

func (tb *localTestbed) input(expect probes.Expect, since time.Time) Input {
	w := tb.world
	return Input{
		Target: probes.Target{
			API:      &probes.Client{BaseURL: w.APIURL, Profile: w.Profile, UserAgent: "valine-check-suites"},
			Function: w.Function,
			Logs:     cloudwatchlogs.NewFromConfig(w.AWS),
		},
		Config: probes.Config{
			Expect:        expect,
			ProbeEmail:    w.ProbeEmail,
			ProbePassword: secret.NewSecret(w.ProbePassword),
			OldSecret:     secret.NewSecret(w.InitialSecret()),
			CurrentSecret: tb.current,
			LogsSince:     since,
		},
		// Short: the testbed converges within its 200 ms propagation delay.
		Runner: probes.Runner{Convergence: 10 * time.Second, RetryInterval: 50 * time.Millisecond, MaxRetryInterval: 200 * time.Millisecond},
	}
}
