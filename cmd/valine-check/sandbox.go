package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/progress"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
	"github.com/valine/valine-check/rotate"
)

func sandboxCommand() *cli.Command {
	return &cli.Command{
		Name:  "sandbox",
		Usage: "run the whole job on a built-in local world: rotate the secret, then verify in grace and strict mode",
		Description: `Starts an in-process AWS emulator and a reference Valine API that reads its secret from an
emulated Lambda function, in an emulated account that behaves as AWS does (each Lambda update
stays in progress for --update-duration; Lambda's request-rate quotas apply). Then, as on a
real deployment: ordinary users log in; the secret is
rotated through the Lambda API (new primary, old secondary; every other variable kept);
after-rotation runs in grace mode; the secondary is removed; after-rotation runs in strict mode.
Exits 0 only if every check passed. Needs no AWS account and no network.

With --source ssm the fleet is stack-managed, as the real Valine stack is: a CloudFormation stack
whose template takes the secret from an SSM SecureString parameter, and a redeploy that writes
what the template resolves onto every function. The sandbox then shows a store-backed rotation
surviving a redeploy, and a rotation of the functions alone (--source lambda-env
--allow-deploy-drift) reverted by it and caught by status --fail-on-drift.

With --serve the world stays up afterwards, and the command prints how to point after-rotation
at it (secrets go to a 0600 file, never the terminal).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Value: "runbook", Usage: "deployment profile the sandbox API serves: " + strings.Join(profile.PresetNames(), ", ")},
			&cli.StringFlag{Name: "backend", Value: "reference", Usage: "the sandbox API: reference (the project's reference implementation) or valine (behaves as the real Valine backend; profile valine)"},
			&cli.DurationFlag{Name: "propagation", Value: 2 * time.Second, Usage: "how long the API may keep serving the old secret after a change"},
			&cli.DurationFlag{Name: "latency", Usage: "latency injected into every API request"},
			&cli.DurationFlag{Name: "update-duration", Value: 1500 * time.Millisecond,
				Usage: "how long each Lambda update stays in progress, as on AWS (the emulated account also has Lambda's request-rate quotas)"},
			outputFlag("text", "json", "junit"),
			&cli.BoolFlag{Name: "serve", Usage: "keep the world running afterwards (until interrupted)"},
			&cli.StringFlag{Name: "source", Value: "lambda-env", Usage: "the fleet's source of truth: lambda-env (its environment) or ssm (a stack whose template reads an SSM parameter, redeployed)"},
		},
		Action: sandboxAction,
	}
}

func sandboxAction(cCtx *cli.Context) error {
	ctx := cCtx.Context
	out := cCtx.App.Writer
	format, err := reportFormat(cCtx)
	if err != nil {
		return err
	}
	var backend testbed.Backend
	switch b := cCtx.String("backend"); b {
	case "reference":
	case "valine":
		backend = testbed.BackendValine
		if !cCtx.IsSet("profile") {
			cCtx.Set("profile", "valine") //nolint:errcheck // a defined flag
		}
	default:
		return usageError(cCtx, "--backend %q: must be reference or valine", b)
	}
	profile, err := profile.Resolve(cCtx.String("profile"))
	if err != nil {
		return usageError(cCtx, "%v", err)
	}
	fleet := sandboxFleet()
	var deploy *testbed.DeployOptions
	switch src := cCtx.String("source"); src {
	case "lambda-env":
	case "ssm":
		deploy = &testbed.DeployOptions{Source: "ssm:" + sandboxParameter(fleet)}
	default:
		return usageError(cCtx, "--source %q: must be lambda-env or ssm", src)
	}
	// Progress goes to stderr when stdout carries a machine-readable report.
	progress := out
	if format != report.Text {
		progress = cCtx.App.ErrWriter
	}

	world, err := testbed.Start(ctx, testbed.Options{
		Backend:          backend,
		Profile:          profile,
		Functions:        fleet,
		Deploy:           deploy,
		PropagationDelay: cCtx.Duration("propagation"),
		Latency:          cCtx.Duration("latency"),
		UpdateDuration:   cCtx.Duration("update-duration"),
		LambdaQuotas:     &testbed.LambdaQuotas{}, // AWS's: 15 control-plane and 100 GetFunction requests a second
		Logger:           logger,
	})
	if err != nil {
		return cli.Exit(fmt.Sprintf("starting the sandbox: %v", err), exitEnvError)
	}
	defer world.Close()
	fmt.Fprintf(progress, "sandbox: Valine API (%s backend, %s profile) at %s, AWS emulator at %s, fleet %s (the API reads %s)\n",
		cCtx.String("backend"), profile.Name, world.APIURL, world.AWSURL, strings.Join(world.Functions, ", "), world.Function)

	s := sandbox{world: world, progress: progress, waits: waitLines(cCtx), profile: profile, backend: backend, deploySource: deploySourceOf(deploy),
		lambda: lambda.NewFromConfig(world.AWS), logs: cloudwatchlogs.NewFromConfig(world.AWS),
		auditPath: filepath.Join(os.TempDir(), "valine-sandbox-audit-"+world.Function+".jsonl")}
	defer os.Remove(s.auditPath)
	reports, err := s.rotateAndVerify(ctx)
	if err == nil && deploy != nil {
		var more []probes.Report
		more, err = s.deployFlow(ctx)
		reports = append(reports, more...)
	}
	if err != nil {
		return engineExit(err)
	}
	if err := writeSandboxReports(out, format, reports); err != nil {
		return err
	}
	if cCtx.Bool("serve") {
		if err := s.serve(ctx); err != nil {
			return cli.Exit(err.Error(), exitEnvError)
		}
	}
	for _, rep := range reports {
		if err := exitFor(rep); err != nil {
			return err
		}
	}
	fmt.Fprintln(progress, "sandbox: every check passed")
	return nil
}

// writeSandboxReports writes the verifications' reports: as JSON, one
// document holding them all (sandboxJSON), as every command prints one.
func writeSandboxReports(w io.Writer, format report.Format, reports []probes.Report) error {
	if format == report.JSON {
		return writeJSON(w, sandboxJSON{Schema: schemaSandbox, Reports: append([]probes.Report{}, reports...)})
	}
	for _, rep := range reports {
		if err := report.Write(w, format, rep); err != nil {
			return cli.Exit(fmt.Sprintf("writing report: %v", err), exitEnvError)
		}
	}
	return nil
}

type sandbox struct {
	world     *testbed.World
	backend   testbed.Backend
	profile   profile.Profile
	progress  io.Writer
	waits     progress.Func
	lambda    *lambda.Client
	logs      *cloudwatchlogs.Client
	auditPath string
	old, new  secret.Secret
	// deploySource is the stack's source ("ssm:/…"), "" for a fleet no
	// stack deploys.
	deploySource string
}

// sandboxFleet names the sandbox's functions: an auth router (which the
// API reads its secret from), a profiles router and an admin router.
func sandboxFleet() []string {
	id := strings.TrimPrefix(journal.NewRotationID(time.Now()), "rot-")
	id = strings.ToLower(id[len(id)-6:])
	return []string{"pv-sandbox-" + id + "-auth", "pv-sandbox-" + id + "-profiles", "pv-sandbox-" + id + "-admin"}
}

// rotateAndVerify runs the rotation engine on the sandbox fleet, as on-call
// would: a zero-downtime rotation (grace mode verified), then finalize
// (strict mode verified) — forced, since nobody waits a week in a sandbox.
// A profile without a secondary variable gets a maintenance rotation.
func (s *sandbox) rotateAndVerify(ctx context.Context) ([]probes.Report, error) {
	s.old = secret.NewSecret(s.world.InitialSecret())
	if err := s.world.SimulateUsers(ctx, 3); err != nil {
		return nil, fmt.Errorf("simulating users before the rotation: %w", err)
	}
	e := s.engine()
	var reports []probes.Report
	if s.backend == testbed.BackendValine {
		return s.realBackendFlow(ctx, e)
	}
	if s.profile.SecondaryVar == "" {
		fmt.Fprintf(s.progress, "sandbox: profile %s names no secondary variable: maintenance rotation\n", s.profile.Name)
		out, err := e.Rotate(ctx, journal.ModeMaintenance, rotate.RotateOptions{})
		s.noteNew(out)
		writeComparison(s.progress, out.Comparison)
		return append(reports, out.Reports...), err
	}
	out, err := e.Rotate(ctx, journal.ModeZeroDowntime, rotate.RotateOptions{})
	reports = append(reports, out.Reports...)
	s.noteNew(out)
	writeComparison(s.progress, out.Comparison)
	if err != nil {
		return reports, err
	}
	fmt.Fprintf(s.progress, "sandbox: grace period until %s; finalizing now (--force) for the demonstration\n", out.Journal.GraceDeadline.Format(time.RFC3339))
	out, err = e.Finalize(ctx, rotate.FinalizeOptions{Force: true})
	reports = append(reports, out.Reports...)
	writeComparison(s.progress, out.Comparison)
	if err == nil {
		fmt.Fprintf(s.progress, "sandbox: audit trail (%d records) in %s\n", countLines(s.auditPath), s.auditPath)
	}
	return reports, err
}

// engine is a fresh engine on the sandbox fleet, as a new run of the
// command builds one: the same backup, audit trail and verifier, and, on a
// stack-managed fleet, the SSM parameter its template reads as the source
// of truth.
func (s *sandbox) engine() *rotate.Engine {
	e := &rotate.Engine{
		Lambda:   s.lambda,
		Backup:   rotate.Backup{API: secretsmanager.NewFromConfig(s.world.AWS), Name: "valine-check/" + s.world.Function},
		Profile:  s.profile,
		Fleet:    s.world.Functions,
		Audit:    &rotate.AuditLog{Path: s.auditPath},
		Operator: "arn:aws:iam::000000000000:user/sandbox",
		Reason:   "sandbox demonstration",
		Progress: prefixWriter{s.progress, "sandbox: "},
		Wait:     s.waits,
		Verifier: usersFirst{world: s.world, ProbeVerifier: rotate.ProbeVerifier{
			Target: probes.Target{API: &probes.Client{BaseURL: s.world.APIURL, Profile: s.profile, UserAgent: "valine-check"},
				Function: s.world.Function, Logs: s.logs},
			Config: probes.Config{ProbeEmail: s.world.ProbeEmail, ProbePassword: secret.NewSecret(s.world.ProbePassword)},
			Runner: probes.Runner{Convergence: 30 * time.Second, RetryInterval: 100 * time.Millisecond, MaxRetryInterval: 250 * time.Millisecond, Logger: logger, Progress: s.waits},
		}},
	}
	e.Watch = &rotate.Watch{
		Runner:        &alarms.Runner{Logs: s.logs, PollInitial: 20 * time.Millisecond, Log: logger, Progress: s.waits},
		Profile:       s.profile,
		Logs:          s.logs,
		Before:        10 * time.Minute,
		IngestionWait: 5 * time.Second,
	}
	if s.world.StackName != "" {
		e.Source, _ = journal.ParseSource(s.deploySource)
		e.Stores = rotate.StoreClients{SSM: ssm.NewFromConfig(s.world.AWS), Secrets: secretsmanager.NewFromConfig(s.world.AWS)}
		e.Deploy = cloudformation.NewFromConfig(s.world.AWS)
	}
	return e
}

// realBackendFlow is the job against a backend that behaves as the real
// one: preflight (the findings a rotation will report), a maintenance
// rotation that completes with those findings reported as pre-existing,
// and a zero-downtime attempt, which the profile refuses at once.
func (s *sandbox) realBackendFlow(ctx context.Context, e *rotate.Engine) ([]probes.Report, error) {
	fmt.Fprintln(s.progress, "sandbox: preflight")
	start := time.Now()
	results := rotate.Preflight(ctx, e, sts.NewFromConfig(s.world.AWS), true)
	pre := probes.NewReport(results, s.world.APIURL, s.profile.Name, s.world.Function, start)
	if err := report.WriteText(s.progress, pre); err != nil {
		return nil, err
	}
	if pre.Status() != probes.Pass {
		return nil, fmt.Errorf("%w: preflight did not pass", rotate.ErrVerificationFailed)
	}
	fmt.Fprintln(s.progress, "sandbox: maintenance rotation")
	out, err := e.Rotate(ctx, journal.ModeMaintenance, rotate.RotateOptions{})
	s.noteNew(out)
	writeComparison(s.progress, out.Comparison)
	if err != nil {
		return out.Reports, err
	}
	if n := len(out.Reports); n > 0 && out.Reports[n-1].Gate != nil {
		fmt.Fprintf(s.progress, "sandbox: rotation %s completed; %s\n", out.Journal.ID, out.Reports[n-1].Gate.Summary())
	}
	fmt.Fprintln(s.progress, "sandbox: a zero-downtime attempt on the same deployment")
	zd := time.Now()
	_, zerr := e.Rotate(ctx, journal.ModeZeroDowntime, rotate.RotateOptions{})
	if !errors.Is(zerr, rotate.ErrNoSecondaryVar) {
		return out.Reports, fmt.Errorf("the zero-downtime attempt was not refused by the profile: %v", zerr)
	}
	fmt.Fprintf(s.progress, "sandbox: refused in %s, before any read or write: %v\n", time.Since(zd).Round(time.Millisecond), zerr)
	fmt.Fprintf(s.progress, "sandbox: audit trail (%d records) in %s\n", countLines(s.auditPath), s.auditPath)
	return out.Reports, nil
}

// noteNew keeps the new secret (from the backup) for --serve's secrets file.
func (s *sandbox) noteNew(out rotate.Outcome) {
	if cur, err := (rotate.Backup{API: secretsmanager.NewFromConfig(s.world.AWS), Name: "valine-check/" + s.world.Function}).Current(context.Background()); err == nil && cur.Fingerprint() == out.Journal.NewFingerprint {
		s.new = cur
	}
}

// usersFirst lets a few ordinary users log in before each verification, as
// real traffic would, so the log check sees verifications to judge.
type usersFirst struct {
	rotate.ProbeVerifier
	world *testbed.World
}

func (u usersFirst) Verify(ctx context.Context, v rotate.Verification) probes.Report {
	_ = u.world.SimulateUsers(ctx, 3) // a failure shows as a warning of the log check
	return u.ProbeVerifier.Verify(ctx, v)
}

// prefixWriter prefixes every write (one progress line each).
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// serve writes the secrets to a 0600 env file, prints how to use the world,
// and waits until interrupted.
func (s *sandbox) serve(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "valine-sandbox-")
	if err != nil {
		return fmt.Errorf("creating the sandbox directory: %w", err)
	}
	envFile := filepath.Join(dir, "secrets.env")
	content := fmt.Sprintf("%s=%s\n%s=%s\n%s=%s\n", envProbePassword, s.world.ProbePassword,
		envOldSecret, string(s.old.Reveal()), envSecret, string(s.new.Reveal()))
	if err := os.WriteFile(envFile, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", envFile, err)
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(s.progress, `
sandbox: serving until interrupted (Ctrl-C). In another shell:

  export VALINE_API_URL=%s VALINE_PROFILE=%s VALINE_PROBE_EMAIL=%s VALINE_FUNCTION=%s
  export AWS_ENDPOINT_URL=%s AWS_REGION=%s AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  valine-check after-rotation --expect strict --env-stdin < %s

(the secrets file holds the probe password, the old and the current secret; it is removed on exit)
`, s.world.APIURL, s.profile.Name, s.world.ProbeEmail, s.world.Function, s.world.AWSURL, s.world.Region, envFile)
	<-ctx.Done()
	return nil
}

// sandboxParameter is the SSM parameter a stack-managed sandbox fleet's
// template reads.
func sandboxParameter(fleet []string) string {
	return "/valine/" + strings.TrimSuffix(fleet[0], "-auth") + "/jwt-secret"
}

func deploySourceOf(d *testbed.DeployOptions) string {
	if d == nil {
		return ""
	}
	return d.Source
}

// deployFlow shows, on a stack-managed fleet, what the next deploy does to
// a rotation: after the store-backed rotation just done, a redeploy writes
// the new secret (no drift); a rotation of the functions alone is refused,
// then, with AllowDeployDrift, done and reverted by the next redeploy,
// which status catches.
func (s *sandbox) deployFlow(ctx context.Context) ([]probes.Report, error) {
	st, err := s.engine().Status(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range st.Stacks {
		fmt.Fprintf(s.progress, "sandbox: deploy: %s\n", d.String(s.profile.SecretVar))
	}
	fmt.Fprintf(s.progress, "sandbox: redeploying stack %s (as serverless deploy would): every function gets what its template resolves\n", s.world.StackName)
	res, err := s.world.Redeploy(ctx)
	if err != nil {
		return nil, fmt.Errorf("redeploying: %w", err)
	}
	if st, err = s.engine().Status(ctx); err != nil {
		return nil, err
	}
	if st.Drifted() {
		return nil, fmt.Errorf("%w: the redeploy undid the store-backed rotation: %+v %+v", rotate.ErrVerificationFailed, st.Mismatches, st.SourceDrift)
	}
	fmt.Fprintf(s.progress, "sandbox: the redeploy rewrote %d of %d functions; status --fail-on-drift: no drift, every function holds %s, as %s does\n",
		len(res.Written), len(s.world.Functions), st.SourcePrimary, st.Source)

	fmt.Fprintln(s.progress, "sandbox: now a rotation of the functions alone (--source lambda-env)")
	envOnly := func(e *rotate.Engine) *rotate.Engine { e.Source = journal.LambdaEnv; return e }
	_, err = envOnly(s.engine()).Rotate(ctx, journal.ModeMaintenance, rotate.RotateOptions{})
	if !errors.Is(err, rotate.ErrDeployDrift) {
		return nil, fmt.Errorf("the rotation of a stack-managed fleet's functions alone was not refused: %v", err)
	}
	fmt.Fprintf(s.progress, "sandbox: refused, nothing changed: %v\n", err)
	fmt.Fprintln(s.progress, "sandbox: again with --allow-deploy-drift")
	e := envOnly(s.engine())
	e.AllowDeployDrift = true
	out, err := e.Rotate(ctx, journal.ModeMaintenance, rotate.RotateOptions{})
	s.noteNew(out)
	if err != nil {
		return out.Reports, err
	}
	fmt.Fprintf(s.progress, "sandbox: rotation %s completed on the functions; %s still holds the previous secret\n", out.Journal.ID, s.deploySource)
	fmt.Fprintf(s.progress, "sandbox: redeploying stack %s\n", s.world.StackName)
	if res, err = s.world.Redeploy(ctx); err != nil {
		return out.Reports, fmt.Errorf("redeploying: %w", err)
	}
	fmt.Fprintf(s.progress, "sandbox: the redeploy rewrote %d of %d functions\n", len(res.Written), len(s.world.Functions))
	if st, err = s.engine().Status(ctx); err != nil {
		return out.Reports, err
	}
	if !st.Drifted() {
		return out.Reports, fmt.Errorf("%w: status saw no drift after the redeploy reverted the rotation", rotate.ErrVerificationFailed)
	}
	fmt.Fprintln(s.progress, "sandbox: status --fail-on-drift exits 1:")
	for _, m := range st.Mismatches {
		fmt.Fprintf(s.progress, "sandbox:   %s: %s holds %s, rotation %s requires %s: it %s\n", m.Function, m.Variable, orAbsent(m.Holds), st.Journal.ID, orAbsent(m.Want), m.Says)
	}
	return out.Reports, nil
}
