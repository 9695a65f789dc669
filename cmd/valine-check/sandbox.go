package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
	"github.com/valine/valine-check/rotate"
)

var sandboxCommand = &cli.Command{
	Name:  "sandbox",
	Usage: "run the whole job on a built-in local world: rotate the secret, then verify in grace and strict mode",
	Description: `Starts an in-process AWS emulator and a reference Valine API that reads its secret from an
emulated Lambda function. Then, as on a real deployment: ordinary users log in; the secret is
rotated through the Lambda API (new primary, old secondary; every other variable kept);
after-rotation runs in grace mode; the secondary is removed; after-rotation runs in strict mode.
Exits 0 only if every check passed. Needs no AWS account and no network.

With --serve the world stays up afterwards, and the command prints how to point after-rotation
at it (secrets go to a 0600 file, never the terminal).`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "profile", Value: "runbook", Usage: "deployment profile the sandbox API serves: runbook or cookie"},
		&cli.DurationFlag{Name: "propagation", Value: 2 * time.Second, Usage: "how long the API may keep serving the old secret after a change"},
		&cli.DurationFlag{Name: "latency", Usage: "latency injected into every API request"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "report format: text, json or junit"},
		&cli.BoolFlag{Name: "serve", Usage: "keep the world running afterwards (until interrupted)"},
	},
	Action: sandboxAction,
}

func sandboxAction(cCtx *cli.Context) error {
	ctx := cCtx.Context
	out := cCtx.App.Writer
	format, err := report.ParseFormat(cCtx.String("output"))
	if err != nil {
		return usageError(cCtx, "%v", err)
	}
	profile, err := probes.ResolveProfile(cCtx.String("profile"))
	if err != nil {
		return usageError(cCtx, "%v", err)
	}
	// Progress goes to stderr when stdout carries a machine-readable report.
	progress := out
	if format != report.Text {
		progress = cCtx.App.ErrWriter
	}

	world, err := testbed.Start(ctx, testbed.Options{
		Profile:          profile,
		PropagationDelay: cCtx.Duration("propagation"),
		Latency:          cCtx.Duration("latency"),
		Logger:           logger,
	})
	if err != nil {
		return cli.Exit(fmt.Sprintf("starting the sandbox: %v", err), exitEnvError)
	}
	defer world.Close()
	fmt.Fprintf(progress, "sandbox: Valine API (%s profile) at %s, AWS emulator at %s, function %s\n",
		profile.Name, world.APIURL, world.AWSURL, world.Function)

	s := sandbox{world: world, progress: progress, profile: profile,
		lambda: lambda.NewFromConfig(world.AWS), logs: cloudwatchlogs.NewFromConfig(world.AWS)}
	reports, err := s.rotateAndVerify(ctx)
	if err != nil {
		return cli.Exit(err.Error(), exitEnvError)
	}
	for _, rep := range reports {
		if err := report.Write(out, format, rep); err != nil {
			return cli.Exit(fmt.Sprintf("writing report: %v", err), exitEnvError)
		}
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

type sandbox struct {
	world    *testbed.World
	profile  probes.Profile
	progress io.Writer
	lambda   *lambda.Client
	logs     *cloudwatchlogs.Client
	old, new probes.Secret
}

// rotateAndVerify stages the new secret (new primary, old secondary), verifies
// in grace mode, removes the secondary, and verifies in strict mode. A profile
// without a secondary variable gets a maintenance rotation: strict only.
func (s *sandbox) rotateAndVerify(ctx context.Context) ([]probes.Report, error) {
	s.old = probes.NewSecret(s.world.InitialSecret())
	var err error
	if s.new, err = rotate.GenerateSecret(); err != nil {
		return nil, err
	}
	if err := s.world.SimulateUsers(ctx, 3); err != nil {
		return nil, fmt.Errorf("simulating users before the rotation: %w", err)
	}
	var reports []probes.Report
	if s.profile.SecondaryVar != "" {
		since := testbed.NextLogMillisecond()
		if err := s.setSecrets(ctx, s.new, s.old, "stage: new primary, old secondary"); err != nil {
			return nil, err
		}
		rep, err := s.verify(ctx, probes.Grace, since)
		if err != nil {
			return nil, err
		}
		reports = append(reports, rep)
	} else {
		fmt.Fprintf(s.progress, "sandbox: profile %s names no secondary variable: maintenance rotation, strict checks only\n", s.profile.Name)
	}
	since := testbed.NextLogMillisecond()
	if err := s.setSecrets(ctx, s.new, probes.Secret{}, "finalize: new primary, no secondary"); err != nil {
		return nil, err
	}
	rep, err := s.verify(ctx, probes.Strict, since)
	if err != nil {
		return nil, err
	}
	return append(reports, rep), nil
}

func (s *sandbox) setSecrets(ctx context.Context, primary, secondary probes.Secret, step string) error {
	for _, fn := range s.world.Functions {
		env, err := rotate.UpdateEnv(ctx, s.lambda, fn, rotate.SetSecrets(s.profile, primary, secondary), rotate.EnvUpdate{})
		if err != nil {
			return fmt.Errorf("%s on %s: %w", step, fn, err)
		}
		secondaryNote := ""
		switch {
		case s.profile.SecondaryVar == "":
		case secondary.IsEmpty():
			secondaryNote = ", " + s.profile.SecondaryVar + " removed"
		default:
			secondaryNote = fmt.Sprintf(", %s=%s", s.profile.SecondaryVar, secondary)
		}
		fmt.Fprintf(s.progress, "sandbox: %s on %s: %s=%s%s (%d other variables kept)\n", step, fn,
			s.profile.SecretVar, primary, secondaryNote, len(env)-countSet(env, s.profile.SecretVar, s.profile.SecondaryVar))
	}
	return nil
}

// verify lets ordinary users make a few requests (so the log check has
// verifications to see), then runs after-rotation with the expectation.
func (s *sandbox) verify(ctx context.Context, expect probes.Expect, since time.Time) (probes.Report, error) {
	if err := s.world.SimulateUsers(ctx, 3); err != nil {
		return probes.Report{}, fmt.Errorf("simulating users after the change: %w", err)
	}
	testbed.NextLogMillisecond()
	fmt.Fprintf(s.progress, "sandbox: running after-rotation --expect %s\n", expect)
	return runChecks(ctx, runInput{
		apiURL:   s.world.APIURL,
		profile:  s.profile,
		function: s.world.Function,
		logs:     s.logs,
		checks:   probes.ForExpect(probes.Catalog(), expect),
		runner:   probes.Runner{Convergence: 30 * time.Second, RetryInterval: 100 * time.Millisecond, MaxRetryInterval: 250 * time.Millisecond, Logger: logger},
		cfg: probes.Config{
			Expect:        expect,
			ProbeEmail:    s.world.ProbeEmail,
			ProbePassword: probes.NewSecret(s.world.ProbePassword),
			OldSecret:     s.old,
			CurrentSecret: s.new,
			LogsSince:     since,
		},
	}), nil
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

func countSet(env map[string]string, names ...string) int {
	n := 0
	for _, k := range names {
		if _, ok := env[k]; ok && k != "" {
			n++
		}
	}
	return n
}
