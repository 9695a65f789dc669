package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/proberun"
	"github.com/valine/valine-check/rotate"
)

const alarmsCategory = "Alarms"

// alarmPrefixFlag chooses the managed alarms: everything under the prefix.
func alarmPrefixFlag() cli.Flag {
	return &cli.StringFlag{Name: "alarm-prefix", Value: alarms.DefaultPrefix, EnvVars: []string{"VALINE_ALARM_PREFIX"}, Category: alarmsCategory,
		Usage: "every alarm and metric filter name starts with this; what is under it and not desired is deleted (one prefix per deployment and account)"}
}

// outputFlag is --output text|json.
func alarmsOutputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"}
}

// alarmsFlags describe the deployment the alarms watch.
func alarmsFlags() []cli.Flag {
	d := alarms.DefaultThresholds()
	return []cli.Flag{
		alarmsOutputFlag(),
		alarmPrefixFlag(),
		&cli.StringFlag{Name: "api-name", EnvVars: []string{"VALINE_API_NAME"}, Category: alarmsCategory,
			Usage: "API Gateway REST API name (the ApiName dimension of 4XXError/5XXError)"},
		&cli.StringFlag{Name: "api-id", EnvVars: []string{"VALINE_API_ID"}, Category: alarmsCategory,
			Usage: "API Gateway HTTP API id (the ApiId dimension of 4xx/5xx), instead of --api-name"},
		&cli.StringFlag{Name: "stage", EnvVars: []string{"VALINE_API_STAGE"}, Category: alarmsCategory, Usage: "API Gateway stage (required)"},
		&cli.StringFlag{Name: "deployment", EnvVars: []string{"VALINE_DEPLOYMENT"}, Category: alarmsCategory,
			Usage: "the Deployment dimension the scheduled probe publishes SuccessPercent under (default <api>-<stage>)"},
		&cli.StringFlag{Name: "probe-namespace", Value: alarms.DefaultProbeNamespace, EnvVars: []string{"VALINE_PROBE_NAMESPACE"}, Category: alarmsCategory,
			Usage: "CloudWatch namespace of the probe's metrics"},
		&cli.StringFlag{Name: "logs-namespace", Value: alarms.DefaultLogsNamespace, EnvVars: []string{"VALINE_LOGS_NAMESPACE"}, Category: alarmsCategory,
			Usage: "CloudWatch namespace of the metric filters' JWT failure counts"},
		&cli.StringFlag{Name: "sns-topic", EnvVars: []string{"VALINE_SNS_TOPIC"}, Category: alarmsCategory,
			Usage: "SNS topic ARN notified when an alarm fires and clears (optional)"},
		&cli.Float64Flag{Name: "max-4xx-rate", Value: d.Client4xxRate, EnvVars: []string{"VALINE_MAX_4XX_RATE"}, Category: alarmsCategory,
			Usage: "alarm when more than this fraction of requests get a 4XX over 5 minutes"},
		&cli.Float64Flag{Name: "max-5xx-rate", Value: d.Server5xxRate, EnvVars: []string{"VALINE_MAX_5XX_RATE"}, Category: alarmsCategory,
			Usage: "alarm when more than this fraction of requests get a 5XX over 5 minutes"},
		&cli.Float64Flag{Name: "max-jwt-failures", Value: d.JWTFailures, EnvVars: []string{"VALINE_MAX_JWT_FAILURES"}, Category: alarmsCategory,
			Usage: "alarm when a function logs more failed JWT verifications than this in 5 minutes"},
	}
}

// alarmsFleetFlags are the fleet flags that choose the functions (each
// gets its alarms and metric filter) and the AWS retries; the rest of
// fleetFlags concern rotation.
func alarmsFleetFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range fleetFlags() {
		switch f.Names()[0] {
		case "functions", "prefix", "tag", "aws-max-attempts":
			out = append(out, f)
		}
	}
	return out
}

func alarmsCommand() *cli.Command {
	return &cli.Command{
		Name:  "alarms",
		Usage: "CloudWatch alarms, log metric filters and a dashboard as code: plan, apply, status",
		Description: `The desired alarms: API Gateway 4XX and 5XX as rates of requests, Lambda Errors and Throttles
per function of the fleet, the scheduled probe's SuccessPercent (a silent probe alarms), and per
function a metric filter counting failed JWT verifications (the profile's logFailurePattern) with
an alarm on it and, for a profile with a secondary variable, one counting verifications by the
secondary secret (graphed, not alarmed). Every name starts with --alarm-prefix; anything under it
that is not desired is deleted, anything outside it is never touched.

One dashboard per deployment, named <prefix>dashboard (. and / made -): the on-call commands, the
alarms' states, the probe's SuccessPercent and duration per check, the API's 4XX and 5XX rates,
and per function failed JWT verifications and secondary-secret verifications (the metric
filters). It is created or updated, never deleted (remove it with the console or
aws cloudwatch delete-dashboards).`,
		Subcommands: []*cli.Command{
			alarmsPlanCommand(),  // alarms_apply_cmd.go
			alarmsApplyCommand(), // alarms_apply_cmd.go
			{
				Name:        "status",
				Usage:       "list the alarms under the prefix with their states",
				Description: "Exit 1 when an alarm is in ALARM (so a script can gate on it), 0 otherwise, 3 when AWS fails.",
				Flags: []cli.Flag{
					alarmsOutputFlag(),
					alarmPrefixFlag(),
					&cli.IntFlag{Name: "aws-max-attempts", Value: defaultAWSMaxAttempts, EnvVars: []string{"VALINE_AWS_MAX_ATTEMPTS"},
						Usage: "attempts per AWS call (throttling and 5xx are retried with backoff)"},
				},
				Action: alarmsStatus,
			},
		},
	}
}

// alarmsOutput reads --output.
func alarmsOutput(cCtx *cli.Context) (string, error) { return outputFormat(cCtx, "text", "json") }

// alarmsConfig resolves the flags, the profile (its log patterns) and the
// fleet into a Config. Bad input is exit 2, AWS failing exit 3.
func alarmsConfig(cCtx *cli.Context, api awsClients) (alarms.Config, error) {
	p, err := resolveProfile(cCtx)
	if err != nil {
		return alarms.Config{}, err
	}
	th := alarms.DefaultThresholds()
	th.Client4xxRate, th.Server5xxRate, th.JWTFailures = cCtx.Float64("max-4xx-rate"), cCtx.Float64("max-5xx-rate"), cCtx.Float64("max-jwt-failures")
	cfg := alarms.Config{
		APIName: cCtx.String("api-name"), APIID: cCtx.String("api-id"), Stage: cCtx.String("stage"),
		Deployment: cCtx.String("deployment"), ProbeNamespace: cCtx.String("probe-namespace"),
		LogsNamespace: cCtx.String("logs-namespace"), SNSTopicARN: cCtx.String("sns-topic"),
		Prefix: cCtx.String("alarm-prefix"), FailurePattern: p.LogFailurePattern,
		SecondaryPattern: alarms.SecondaryUsePattern(p), Thresholds: &th,
	}
	if err := cfg.ValidateSettings(); err != nil { // before the fleet is read: bad input costs nothing
		return cfg, usageError(cCtx, "%v", err)
	}
	sel, err := selector(cCtx)
	if err != nil {
		return cfg, err
	}
	fleet, err := resolveFleet(cCtx, rotate.NewPacedLambda(api.lambda, rotate.LambdaPace{}), sel)
	if err != nil {
		return cfg, err
	}
	cfg.Functions = fleet
	if err := cfg.Validate(); err != nil {
		return cfg, usageError(cCtx, "%v", err)
	}
	return cfg, nil
}

// alarmsDashboard is the deployment's dashboard: in the region the AWS
// configuration names, its alarms' ARNs in the caller's account
// (sts:GetCallerIdentity), the scheduled probe's checks graphed one by one.
func alarmsDashboard(cCtx *cli.Context, api awsClients, cfg alarms.Config) (alarms.Dashboard, error) {
	id, err := api.sts.GetCallerIdentity(cCtx.Context, &sts.GetCallerIdentityInput{})
	if err != nil {
		return alarms.Dashboard{}, cli.Exit(fmt.Sprintf("reading the account for the dashboard's alarm ARNs: %v", err), exitEnvError)
	}
	partition := "aws"
	if a, err := arn.Parse(aws.ToString(id.Arn)); err == nil {
		partition = a.Partition
	}
	checks, err := proberun.PublishedChecks()
	if err != nil {
		return alarms.Dashboard{}, cli.Exit(err.Error(), exitEnvError)
	}
	d, err := alarms.DesiredDashboard(cfg, alarms.DashboardOptions{
		Region: api.cw.Options().Region, Account: aws.ToString(id.Account), Partition: partition,
		Checks: checks,
	})
	if err != nil {
		return d, usageError(cCtx, "%v (the region comes from AWS_REGION or the AWS profile)", err)
	}
	return d, nil
}

// alarmsExit maps an alarms error to its exit code.
func alarmsExit(err error) error {
	if errors.Is(err, alarms.ErrInvalidConfig) {
		return cli.Exit(err.Error(), exitUsage)
	}
	return cli.Exit(err.Error(), exitEnvError)
}

// alarmsStatus lists the managed alarms' states.
func alarmsStatus(cCtx *cli.Context) error {
	output, err := alarmsOutput(cCtx)
	if err != nil {
		return err
	}
	prefix := cCtx.String("alarm-prefix")
	if prefix == "" {
		return usageError(cCtx, "--alarm-prefix must not be empty")
	}
	api, err := loadAWS(cCtx.Context, cCtx.Int("aws-max-attempts"))
	if err != nil {
		return cli.Exit(err.Error(), exitEnvError)
	}
	states, err := alarms.Status(cCtx.Context, api.cw, prefix)
	if err != nil {
		return alarmsExit(err)
	}
	firing := alarms.InAlarm(states)
	w := cCtx.App.Writer
	if output == "json" {
		if err := writeJSON(w, map[string]any{"schema": "valine-check/alarms-status/v1", "prefix": prefix,
			"alarms": states, "inAlarm": append([]string{}, firing...)}); err != nil {
			return err
		}
	} else {
		alarms.WriteStatusTable(w, prefix, states)
	}
	if len(firing) > 0 {
		return cli.Exit(fmt.Sprintf("%d alarm(s) in ALARM: %s", len(firing), strings.Join(firing, ", ")), exitFailed)
	}
	return nil
}
