package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/proberun"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
)

// The environment the function reads (deploy/template.yaml sets it).
const (
	envAPIURL        = "VALINE_API_URL"         // required: the Valine API's base URL
	envProfile       = "VALINE_PROFILE"         // preset: runbook (default) or cookie
	envProfileJSON   = "VALINE_PROFILE_JSON"    // optional: field overrides as JSON, e.g. {"profilePath":"/api/auth/me"}
	envDeployment    = "VALINE_DEPLOYMENT"      // required: the metrics' Deployment dimension (the alarms' deployment name)
	envProbeSecretID = "VALINE_PROBE_SECRET_ID" // required: the secret holding {"email","password"}
	envBackupSecret  = "VALINE_BACKUP_SECRET"   // optional: the rotation's backup secret (journal)
	envNamespace     = "VALINE_PROBE_NAMESPACE" // optional: the metrics' namespace (default Valine/Probe), as `valine-check alarms` names it
	envNamespaceAlt  = "VALINE_METRIC_NAMESPACE"
	envCredsTTL      = "VALINE_CREDENTIALS_TTL"   // optional: how long the credentials are cached (default 5m)
	envCheckTimeout  = "VALINE_CHECK_TIMEOUT"     // optional: one attempt of one check (default 10s)
	envConvergence   = "VALINE_CONVERGENCE"       // optional: how long propagation-dependent checks retry (default 20s)
	envConcurrency   = "VALINE_CHECK_CONCURRENCY" // optional: checks at once (default 8)
	envLogLevel      = "VALINE_LOG_LEVEL"         // optional: diagnostics on stderr (default info)
	envSource        = "VALINE_SOURCE"            // optional: the source of truth the journal check compares (ssm:/name or secretsmanager:name)
)

// config is the function's configuration, read from its environment.
type config struct {
	apiURL        string
	profile       profile.Profile
	deployment    string
	namespace     string
	probeSecretID string
	backupSecret  string
	source        journal.Source
	credsTTL      time.Duration
	checkTimeout  time.Duration
	convergence   time.Duration
	concurrency   int
	logLevel      slog.Level
}

// configFromEnv reads and validates the configuration; the error lists
// every problem at once, naming variables, never values of secrets (the
// environment holds none).
func configFromEnv(getenv func(string) string) (config, error) {
	c := config{
		apiURL:        strings.TrimSpace(getenv(envAPIURL)),
		deployment:    strings.TrimSpace(getenv(envDeployment)),
		namespace:     strings.TrimSpace(getenv(envNamespace)),
		probeSecretID: strings.TrimSpace(getenv(envProbeSecretID)),
		backupSecret:  strings.TrimSpace(getenv(envBackupSecret)),
	}
	if c.namespace == "" {
		c.namespace = strings.TrimSpace(getenv(envNamespaceAlt))
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.apiURL == "" {
		bad("%s is required", envAPIURL)
	} else if u, err := url.Parse(c.apiURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("%s %q is not an http(s) URL", envAPIURL, c.apiURL)
	}
	if v := strings.TrimSpace(getenv(envSource)); v != "" {
		src, err := journal.ParseSource(v)
		switch {
		case err != nil:
			bad("%s: %v", envSource, err)
		case !src.IsStore():
			bad("%s %q: want ssm:/name or secretsmanager:name (lambda-env needs no comparison)", envSource, v)
		case c.backupSecret == "":
			bad("%s needs %s: the journal says which secret the source must hold", envSource, envBackupSecret)
		}
		c.source = src
	}
	if c.probeSecretID == "" {
		bad("%s is required (the secret holding the probe user's email and password)", envProbeSecretID)
	}
	if err := (report.EMFOptions{Namespace: c.namespace, Deployment: c.deployment}).Validate(); err != nil {
		bad("%s / %s: %v", envDeployment, envNamespace, err)
	}
	var overrides profile.Profile
	if raw := getenv(envProfileJSON); strings.TrimSpace(raw) != "" {
		dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&overrides); err != nil {
			bad("%s: %v", envProfileJSON, err)
		}
	}
	p, err := profile.Resolve(getenv(envProfile), overrides)
	if err != nil {
		bad("%s: %v", envProfile, err)
	}
	c.profile = p
	duration := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("%s %q is not a positive duration (like 30s)", name, v)
		}
		return d
	}
	c.credsTTL = duration(envCredsTTL, proberun.DefaultCredentialsTTL)
	c.checkTimeout = duration(envCheckTimeout, proberun.DefaultCheckTimeout)
	c.convergence = duration(envConvergence, proberun.DefaultConvergence)
	c.concurrency = 8
	if v := getenv(envConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("%s %q is not a positive integer", envConcurrency, v)
		}
		c.concurrency = n
	}
	c.logLevel = slog.LevelInfo
	if v := getenv(envLogLevel); v != "" {
		if err := c.logLevel.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			bad("%s %q: want debug, info, warn or error", envLogLevel, v)
		}
	}
	if len(problems) > 0 {
		return config{}, fmt.Errorf("bad configuration: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// deps is what the handler uses; built once per process (at init), so the
// clients and the credentials cache outlive invocations.
type deps struct {
	setup  proberun.Setup
	emf    report.EMFOptions
	stdout io.Writer
	log    *slog.Logger
	// margin is kept from the invocation's deadline, so that metrics are
	// written even when the checks run out of time.
	margin time.Duration
}

// newDeps builds the clients from awsCfg. Only reads are made: Secrets
// Manager GetSecretValue on the credentials and the backup, DescribeSecret
// on the backup (the journal), and, with a source of truth, SSM
// GetParameter or Secrets Manager GetSecretValue on it.
func newDeps(c config, awsCfg aws.Config, stdout, stderr io.Writer) deps {
	sm := secretsmanager.NewFromConfig(awsCfg)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: c.logLevel}))
	setup := proberun.Setup{
		API:         &probes.Client{BaseURL: c.apiURL, Profile: c.profile, UserAgent: "valine-probe"},
		Credentials: &proberun.SecretCredentials{API: sm, SecretID: c.probeSecretID, TTL: c.credsTTL},
		Runner: probes.Runner{CheckTimeout: c.checkTimeout, Convergence: c.convergence,
			Concurrency: c.concurrency, Logger: log},
		Logger: log,
	}
	if c.backupSecret != "" {
		setup.Backup = journal.Reader{API: sm, Name: c.backupSecret}
	}
	if c.source.IsStore() {
		setup.Source = c.source
		setup.Sources = journal.SourceReader{SSM: ssm.NewFromConfig(awsCfg), Secrets: sm}
	}
	return deps{
		setup:  setup,
		emf:    report.EMFOptions{Namespace: c.namespace, Deployment: c.deployment},
		stdout: stdout,
		log:    log,
		margin: 2 * time.Second,
	}
}
