package main

import (
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/probes"
)

// probeFlags is the shared flag group of every command that runs the
// probes against a deployment: where the API is, who the probe user is, how
// long checks may take, and the deployment profile.
func probeFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "api-url", EnvVars: []string{"VALINE_API_URL"}, Category: runCategory,
			Usage: "base URL of the Valine API (required)"},
		&cli.StringFlag{Name: "probe-email", EnvVars: []string{"VALINE_PROBE_EMAIL"}, Category: runCategory,
			Usage: "the probe user's email (required; the password comes from VALINE_PROBE_PASSWORD or --env-stdin)"},
		&cli.StringFlag{Name: "function", EnvVars: []string{"VALINE_FUNCTION"}, Category: runCategory,
			Usage: "Lambda function whose log group /aws/lambda/<function> is checked for JWT failures"},
		&cli.DurationFlag{Name: "check-timeout", Value: 15 * time.Second, EnvVars: []string{"VALINE_CHECK_TIMEOUT"}, Category: runCategory,
			Usage: "deadline for one attempt of one check"},
		&cli.DurationFlag{Name: "convergence", Value: 60 * time.Second, EnvVars: []string{"VALINE_CONVERGENCE"}, Category: runCategory,
			Usage: "how long checks that depend on propagation keep retrying"},
		&cli.IntFlag{Name: "check-concurrency", Value: 8, EnvVars: []string{"VALINE_CHECK_CONCURRENCY"}, Category: runCategory,
			Usage: "checks run at once"},
		envStdinFlag,
	}
	return append(flags, profileFlags()...)
}

// probeSetup is the resolved probe inputs.
type probeSetup struct {
	apiURL   string
	profile  profile.Profile
	function string
	secrets  secretInputs
	// cfg carries the probe user's credentials; callers set the rest.
	cfg    probes.Config
	runner probes.Runner
}

// resolveProbeSetup reads and validates the probe flags; every problem is
// a usage error (exit 2). The numeric flags were checked by checkFlagValues.
func resolveProbeSetup(cCtx *cli.Context) (probeSetup, error) {
	if cCtx.NArg() > 0 {
		return probeSetup{}, usageError(cCtx, "unexpected arguments %q (secrets go in the environment or --env-stdin)", cCtx.Args().Slice())
	}
	var missing []string
	if cCtx.String("api-url") == "" {
		missing = append(missing, "--api-url (VALINE_API_URL)")
	}
	if cCtx.String("probe-email") == "" {
		missing = append(missing, "--probe-email (VALINE_PROBE_EMAIL)")
	}
	secrets, err := readSecretInputs(cCtx)
	if err != nil {
		return probeSetup{}, err
	}
	if secrets.secret(envProbePassword).IsEmpty() {
		missing = append(missing, envProbePassword+" (environment or --env-stdin)")
	}
	if len(missing) > 0 {
		return probeSetup{}, usageError(cCtx, "missing required input: %s", strings.Join(missing, ", "))
	}
	if err := checkAPIURL(cCtx); err != nil {
		return probeSetup{}, err
	}
	profile, err := resolveProfile(cCtx)
	if err != nil {
		return probeSetup{}, err
	}
	return probeSetup{
		apiURL:   cCtx.String("api-url"),
		profile:  profile,
		function: cCtx.String("function"),
		secrets:  secrets,
		cfg:      probes.Config{ProbeEmail: cCtx.String("probe-email"), ProbePassword: secrets.secret(envProbePassword)},
		runner: probes.Runner{
			CheckTimeout: cCtx.Duration("check-timeout"),
			Convergence:  cCtx.Duration("convergence"),
			Concurrency:  cCtx.Int("check-concurrency"),
			Logger:       logger,
			Progress:     waitLines(cCtx),
		},
	}, nil
}

// target builds the probes' target from the setup.
func (p probeSetup) target(logs probes.LogsAPI) probes.Target {
	t := probes.Target{
		API:      &probes.Client{BaseURL: p.apiURL, Profile: p.profile, UserAgent: "valine-check", Redact: p.secrets.redactor()},
		Function: p.function,
	}
	if p.function != "" {
		t.Logs = logs
	}
	return t
}
