package main

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/proberun"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
)

func probeCommand() *cli.Command {
	return &cli.Command{
		Name:  "probe",
		Usage: "run the scheduled probe once, as the valine-probe Lambda does, and print its report (and metrics)",
		Description: `Runs exactly what the scheduled valine-probe Lambda runs on each invocation (deploy/): login,
the fresh token, refresh and the security battery; with --backup-secret it reads the rotation
journal, so during a zero-downtime grace period it also checks that tokens signed with the old
secret are still accepted, after a finished rotation that they are refused, and that fresh
tokens are signed with the secret the journal says.

The probe user's credentials come from a Secrets Manager secret holding
{"email": "...", "password": "..."} (--probe-secret-id, as the Lambda reads them), or from
--probe-email and VALINE_PROBE_PASSWORD (environment or --env-stdin).

--emf prints the CloudWatch Embedded Metric Format lines the Lambda prints (SuccessPercent and
Duration per check and with Check=all), then the report; with --output json the report is one
compact line, so stdout is what the Lambda writes to its log group.

AWS (for --probe-secret-id and --backup-secret) is configured the standard way: AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL, ...

Exit codes: 0 all passed, 1 a check failed, 2 bad usage, 3 the environment failed.`,
		Flags:  probeCommandFlags(),
		Action: probeAction,
	}
}

func probeCommandFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "probe-secret-id", EnvVars: []string{"VALINE_PROBE_SECRET_ID"}, Category: runCategory,
			Usage: `Secrets Manager secret holding {"email","password"} of the probe user (instead of --probe-email and VALINE_PROBE_PASSWORD)`},
		&cli.StringFlag{Name: "backup-secret", EnvVars: []string{"VALINE_BACKUP_SECRET"}, Category: runCategory,
			Usage: "the rotation's backup secret, whose tags hold the journal (without it the old-token and signer checks are skipped)"},
		&cli.StringFlag{Name: "source", EnvVars: []string{"VALINE_SOURCE"}, Category: runCategory,
			Usage: "the source of truth the deploy reads (ssm:/name or secretsmanager:name): the journal check fails when it does not hold the secret the last rotation put in force (needs --backup-secret)"},
		&cli.StringFlag{Name: "deployment", EnvVars: []string{"VALINE_DEPLOYMENT"}, Category: outputCategory,
			Usage: "the metrics' Deployment dimension, as the alarms name the deployment (required with --emf)"},
		&cli.StringFlag{Name: "namespace", Value: alarms.DefaultProbeNamespace, EnvVars: []string{"VALINE_PROBE_NAMESPACE", "VALINE_METRIC_NAMESPACE"}, Category: outputCategory,
			Usage: "the metrics' CloudWatch namespace"},
		&cli.BoolFlag{Name: "emf", Category: outputCategory,
			Usage: "print the Embedded Metric Format lines the Lambda prints, before the report"},
		outputFlag("text", "json", "junit"),
	}
	for _, f := range probeFlags() {
		switch f := f.(type) {
		case *cli.StringFlag:
			if f.Name == "function" {
				continue // the scheduled probe does not read logs
			}
		case *cli.DurationFlag:
			// The Lambda's defaults, so a run here behaves as a scheduled one.
			switch f.Name {
			case "check-timeout":
				f.Value = proberun.DefaultCheckTimeout
			case "convergence":
				f.Value = proberun.DefaultConvergence
			}
		}
		flags = append(flags, f)
	}
	return flags
}

func probeAction(cCtx *cli.Context) error {
	if cCtx.NArg() > 0 {
		return usageError(cCtx, "unexpected arguments %q (secrets go in the environment or --env-stdin)", cCtx.Args().Slice())
	}
	if cCtx.String("api-url") == "" {
		return usageError(cCtx, "missing required input: --api-url (VALINE_API_URL)")
	}
	if err := checkAPIURL(cCtx); err != nil {
		return err
	}
	format, err := reportFormat(cCtx)
	if err != nil {
		return err
	}
	emf := report.EMFOptions{Namespace: cCtx.String("namespace"), Deployment: cCtx.String("deployment")}
	if cCtx.Bool("emf") {
		if err := emf.Validate(); err != nil {
			return usageError(cCtx, "--emf needs --deployment (VALINE_DEPLOYMENT) and a valid --namespace: %v", err)
		}
	}
	profile, err := resolveProfile(cCtx)
	if err != nil {
		return err
	}
	secretID, backupName := cCtx.String("probe-secret-id"), cCtx.String("backup-secret")
	var sm *secretsmanager.Client
	if secretID != "" || backupName != "" {
		clients, err := loadAWS(cCtx.Context, defaultAWSMaxAttempts)
		if err != nil {
			return cli.Exit(err.Error(), exitEnvError)
		}
		sm = clients.secrets
	}
	setup := proberun.Setup{
		API: &probes.Client{BaseURL: cCtx.String("api-url"), Profile: profile, UserAgent: "valine-check"},
		Runner: probes.Runner{
			CheckTimeout: cCtx.Duration("check-timeout"),
			Convergence:  cCtx.Duration("convergence"),
			Concurrency:  cCtx.Int("check-concurrency"),
			Logger:       logger,
			Progress:     waitLines(cCtx),
		},
		Logger: logger,
	}
	if backupName != "" {
		setup.Backup = journal.Reader{API: sm, Name: backupName}
	}
	if src, _ := journal.ParseSource(cCtx.String("source")); src.IsStore() { // checked by sourceRule
		if backupName == "" {
			return usageError(cCtx, "--source needs --backup-secret: the journal says which secret the source must hold")
		}
		clients, err := loadAWS(cCtx.Context, defaultAWSMaxAttempts)
		if err != nil {
			return cli.Exit(err.Error(), exitEnvError)
		}
		setup.Source, setup.Sources = src, journal.SourceReader{SSM: clients.ssm, Secrets: clients.secrets}
	}
	if setup.Credentials, err = probeCredentials(cCtx, sm); err != nil {
		return err
	}

	rep := setup.Run(cCtx.Context)
	w := cCtx.App.Writer
	if cCtx.Bool("emf") {
		if _, err := report.WriteEMF(w, rep, emf); err != nil {
			return cli.Exit(fmt.Sprintf("writing metrics: %v", err), exitEnvError)
		}
		if format == report.JSON {
			// One compact line, as the Lambda prints it.
			line, err := json.Marshal(rep)
			if err == nil {
				_, err = w.Write(append(line, '\n'))
			}
			if err != nil {
				return cli.Exit(fmt.Sprintf("writing report: %v", err), exitEnvError)
			}
			return exitFor(rep)
		}
	}
	if err := report.Write(w, format, rep); err != nil {
		return cli.Exit(fmt.Sprintf("writing report: %v", err), exitEnvError)
	}
	return exitFor(rep)
}

// probeCredentials chooses where the probe user's credentials come from:
// the secret (read when the run starts, as the Lambda does) or the email
// flag and VALINE_PROBE_PASSWORD.
func probeCredentials(cCtx *cli.Context, sm *secretsmanager.Client) (proberun.CredentialSource, error) {
	if id := cCtx.String("probe-secret-id"); id != "" {
		if cCtx.IsSet("probe-email") {
			logger.Warn("ignoring --probe-email and VALINE_PROBE_PASSWORD: the credentials come from --probe-secret-id", "secret", id)
		}
		return &proberun.SecretCredentials{API: sm, SecretID: id}, nil
	}
	secrets, err := readSecretInputs(cCtx)
	if err != nil {
		return nil, err
	}
	email, password := cCtx.String("probe-email"), secrets.secret(envProbePassword)
	if email == "" || password.IsEmpty() {
		return nil, usageError(cCtx, "missing required input: --probe-secret-id (VALINE_PROBE_SECRET_ID), or --probe-email (VALINE_PROBE_EMAIL) with %s (environment or --env-stdin)", envProbePassword)
	}
	return proberun.Static{Email: email, Password: password}, nil
}
