package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
)

const (
	runCategory    = "Run"
	outputCategory = "Output"
)

func afterRotationCommand() *cli.Command {
	return &cli.Command{
		Name:  "after-rotation",
		Usage: "verify a deployment after a secret rotation (the runbook's checks and the security battery)",
		Description: `Logs in as the probe user and checks: the new token is accepted; fresh tokens are signed
with the new secret; a token signed with the old secret is refused (--expect strict, after a
maintenance or emergency rotation or a finalize) or still accepted (--expect grace, during a
zero-downtime rotation); refresh works, and a refresh token from before the rotation is refused
(strict) or still refreshes into a token signed with the new secret (grace); no JWT verification
failures in the function's logs; and that forged tokens (alg=none, HS384 and HS512, expired, no
exp, tampered, empty key, refresh-as-access) are refused. It is a strict gate: every finding
fails it. HTTP 5xx and 429 answers are retried within the check's deadline, then reported as
errors (exit 3), never as failures.

The old token is forged from a fresh token's claims and the old secret (VALINE_OLD_SECRET), or
given as VALINE_OLD_TOKEN (the old refresh token likewise, or VALINE_OLD_REFRESH_TOKEN). Secrets come from the environment or --env-stdin, never arguments:

  printf 'VALINE_PROBE_PASSWORD=%s\nVALINE_OLD_SECRET=%s\n' "$PW" "$OLD" |
    valine-check after-rotation --api-url https://api.example --probe-email probe@example --env-stdin

AWS (for --function) is configured the standard way: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...

Exit codes: 0 all passed, 1 a check failed, 2 bad usage, 3 the environment failed.`,
		Flags:  afterRotationFlags(),
		Action: afterRotationAction,
	}
}

func afterRotationFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "expect", Value: "strict", EnvVars: []string{"VALINE_EXPECT"}, Category: runCategory,
			Usage: "strict: old tokens must be refused; grace: old tokens must still be accepted"},
		&cli.StringFlag{Name: "since", Value: "1h", EnvVars: []string{"VALINE_SINCE"}, Category: runCategory,
			Usage: "start of the log window: the rotation time, as RFC 3339 or a duration ago (30m)"},
		&cli.StringSliceFlag{Name: "check", EnvVars: []string{"VALINE_CHECKS"}, Category: runCategory,
			Usage: "run only these checks or labels (smoke, strict, grace, security, logs); repeatable"},
		outputFlag("text", "json", "junit"),
		&cli.PathFlag{Name: "report-file", EnvVars: []string{"VALINE_REPORT_FILE"}, Category: outputCategory,
			Usage: "also write the report here (format from --report-format, else .xml → junit, .json → json, else text)"},
		&cli.StringFlag{Name: "report-format", EnvVars: []string{"VALINE_REPORT_FORMAT"}, Category: outputCategory,
			Usage: "format of --report-file: text, json or junit"},
	}
	return append(flags, probeFlags()...)
}

// runInput is everything one after-rotation run needs, resolved and validated.
type runInput struct {
	setup  probeSetup
	checks []probes.Check
	cfg    probes.Config
}

func afterRotationAction(cCtx *cli.Context) error {
	in, err := afterRotationInput(cCtx)
	if err != nil {
		return err
	}
	stdoutFormat, err := reportFormat(cCtx)
	if err != nil {
		return err
	}
	fileFormat, err := reportFileFormat(cCtx)
	if err != nil {
		return err
	}
	if err := checkReportFile(cCtx); err != nil {
		return err
	}
	var logs probes.LogsAPI
	if in.setup.function != "" {
		clients, err := loadAWS(cCtx.Context, defaultAWSMaxAttempts)
		if err != nil {
			return cli.Exit(err.Error(), exitEnvError)
		}
		logs = clients.logs
	}
	rep := in.setup.runner.Run(cCtx.Context, in.checks, in.setup.target(logs), in.cfg)
	return emitReport(cCtx, rep, stdoutFormat, fileFormat)
}

// emitReport writes the report to stdout and, if asked, a file, then maps
// its status to the exit code.
func emitReport(cCtx *cli.Context, rep probes.Report, stdoutFormat, fileFormat report.Format) error {
	if err := report.Write(cCtx.App.Writer, stdoutFormat, rep); err != nil {
		return cli.Exit(fmt.Sprintf("writing report: %v", err), exitEnvError)
	}
	if path := cCtx.Path("report-file"); path != "" {
		if err := writeReportFile(path, fileFormat, rep); err != nil {
			return cli.Exit(err.Error(), exitEnvError)
		}
	}
	return exitFor(rep)
}

func writeReportFile(path string, f report.Format, rep probes.Report) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating report directory: %w", err)
		}
	}
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating report file: %w", err)
	}
	werr := report.Write(file, f, rep)
	cerr := file.Close()
	if werr != nil || cerr != nil {
		return fmt.Errorf("writing report file %s: %v %v", path, werr, cerr)
	}
	return nil
}

// checkReportFile refuses, before the run, a --report-file that cannot be
// written as a file: a directory (or a path ending in a separator). A run
// whose report cannot be kept would be a run for nothing.
func checkReportFile(cCtx *cli.Context) error {
	path := cCtx.Path("report-file")
	if path == "" {
		return nil
	}
	if strings.HasSuffix(path, string(filepath.Separator)) {
		return usageError(cCtx, "--report-file %s: names a directory, not a file", path)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return usageError(cCtx, "--report-file %s: is a directory, not a file", path)
	}
	return nil
}

func reportFileFormat(cCtx *cli.Context) (report.Format, error) {
	if s := cCtx.String("report-format"); s != "" {
		f, err := report.ParseFormat(s)
		if err != nil {
			return "", usageError(cCtx, "--report-format: %v", err)
		}
		return f, nil
	}
	switch strings.ToLower(filepath.Ext(cCtx.Path("report-file"))) {
	case ".xml":
		return report.JUnit, nil
	case ".json":
		return report.JSON, nil
	}
	return report.Text, nil
}

// afterRotationInput resolves and validates every input; each problem is a
// usage error (exit 2).
func afterRotationInput(cCtx *cli.Context) (runInput, error) {
	setup, err := resolveProbeSetup(cCtx)
	if err != nil {
		return runInput{}, err
	}
	expect, err := probes.ParseExpect(cCtx.String("expect"))
	if err != nil {
		return runInput{}, usageError(cCtx, "--expect: %v", err)
	}
	since, err := parseSince(cCtx.String("since"), time.Now())
	if err != nil {
		return runInput{}, usageError(cCtx, "--since: %v", err)
	}
	checks, err := probes.Select(probes.ForExpect(probes.Catalog(), expect), cCtx.StringSlice("check"))
	if err != nil {
		return runInput{}, usageError(cCtx, "--check: %v (checks and labels: see 'valine-check after-rotation --help')", err)
	}
	cfg := setup.cfg
	cfg.Expect = expect
	cfg.OldToken = setup.secrets.token(envOldToken)
	cfg.OldRefresh = setup.secrets.token(envOldRefresh)
	cfg.OldSecret = setup.secrets.secret(envOldSecret)
	cfg.CurrentSecret = setup.secrets.secret(envSecret)
	cfg.LogsSince = since
	return runInput{setup: setup, checks: checks, cfg: cfg}, nil
}

// parseSince accepts an RFC 3339 time or a duration before now. A time
// after now is refused: the log window would be empty, and the log check
// would pass for having read nothing.
func parseSince(s string, now time.Time) (time.Time, error) {
	t, err := parseTime(s, now)
	if err == nil && t.After(now) {
		return time.Time{}, fmt.Errorf("%s is in the future (now is %s)", s, now.UTC().Format(time.RFC3339))
	}
	return t, err
}
