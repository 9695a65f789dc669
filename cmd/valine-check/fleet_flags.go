package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/rotate"
)

const fleetCategory = "Fleet"

// fleetFlags is the shared flag group of the commands that read or change
// where the secret lives.
func fleetFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "functions", EnvVars: []string{"VALINE_FUNCTIONS"}, Category: fleetCategory,
			Usage: "the fleet: explicit Lambda function names (repeatable or comma-separated)"},
		&cli.StringFlag{Name: "prefix", EnvVars: []string{"VALINE_FLEET_PREFIX"}, Category: fleetCategory,
			Usage: "the fleet: every function whose name starts with this (e.g. pv-api-prod-)"},
		&cli.StringFlag{Name: "tag", EnvVars: []string{"VALINE_FLEET_TAG"}, Category: fleetCategory,
			Usage: "the fleet: every function with this tag, key=value or key"},
		&cli.StringFlag{Name: "backup-secret", EnvVars: []string{"VALINE_BACKUP_SECRET"}, Category: fleetCategory,
			Usage: "Secrets Manager secret holding the backup and the rotation journal (default: valine-check/ and the fleet selector)"},
		&cli.IntFlag{Name: "concurrency", EnvVars: []string{"VALINE_CONCURRENCY"}, Category: fleetCategory,
			Usage: "functions being updated at once (0: as many as --lambda-rate allows)"},
		&cli.Float64Flag{Name: "lambda-rate", Value: rotate.DefaultLambdaPace.Control, EnvVars: []string{"VALINE_LAMBDA_RATE"}, Category: fleetCategory,
			Usage: fmt.Sprintf("Lambda control-plane requests per second this run allows itself (updates, listings, tags); the account's quota, %d, is shared with its other deploys", rotate.LambdaControlQuota)},
		&cli.Float64Flag{Name: "lambda-read-rate", Value: rotate.DefaultLambdaPace.GetFunction, EnvVars: []string{"VALINE_LAMBDA_READ_RATE"}, Category: fleetCategory,
			Usage: fmt.Sprintf("Lambda GetFunction requests per second this run allows itself (the account's quota: %d)", rotate.LambdaGetFunctionQuota)},
		&cli.StringSliceFlag{Name: "switch-first", EnvVars: []string{"VALINE_SWITCH_FIRST"}, Category: fleetCategory,
			Usage: "functions an update switches before the others, in this order: the token issuers (default: the functions whose name contains \"auth\"; \"none\" for plain name order)"},
		&cli.IntFlag{Name: "aws-max-attempts", Value: defaultAWSMaxAttempts, EnvVars: []string{"VALINE_AWS_MAX_ATTEMPTS"}, Category: fleetCategory,
			Usage: "attempts per AWS call (throttling and 5xx are retried with backoff)"},
		&cli.PathFlag{Name: "audit-file", Value: "valine-check-audit.jsonl", EnvVars: []string{"VALINE_AUDIT_FILE"}, Category: fleetCategory,
			Usage: "append one JSON audit record per step here (mode 0600)"},
	}
}

// selector reads the fleet flags; exactly one must be given.
func selector(cCtx *cli.Context) (rotate.Selector, error) {
	var names []string
	for _, n := range cCtx.StringSlice("functions") {
		for _, part := range strings.Split(n, ",") {
			if part = strings.TrimSpace(part); part != "" {
				names = append(names, part)
			}
		}
	}
	sel := rotate.Selector{Names: names, Prefix: cCtx.String("prefix"), Tag: cCtx.String("tag")}
	if err := sel.Validate(); err != nil {
		return sel, usageError(cCtx, "choose the fleet with exactly one of --functions, --prefix, --tag: %v", err)
	}
	return sel, nil
}

// lambdaPace reads --lambda-rate and --lambda-read-rate; a rate outside
// (0, Lambda's quota] is bad input.
func lambdaPace(cCtx *cli.Context) (rotate.LambdaPace, error) {
	pace := rotate.LambdaPace{Control: cCtx.Float64("lambda-rate"), GetFunction: cCtx.Float64("lambda-read-rate")}
	if err := pace.Validate(); err != nil {
		return pace, usageError(cCtx, "--lambda-rate/--lambda-read-rate: %v", err)
	}
	return pace, nil
}

// switchFirst reads --switch-first: nil (unset) lets the engine guess the
// issuers, "none" is no function first, and every name given must be in
// the fleet.
func switchFirst(cCtx *cli.Context, fleet []string) ([]string, error) {
	if !cCtx.IsSet("switch-first") {
		return nil, nil
	}
	first := []string{}
	for _, n := range cCtx.StringSlice("switch-first") {
		for _, part := range strings.Split(n, ",") {
			part = strings.TrimSpace(part)
			switch {
			case part == "" || part == "none":
			case !slices.Contains(fleet, part):
				return nil, usageError(cCtx, "--switch-first: %s is not in the fleet (%s)", part, strings.Join(fleet, ", "))
			default:
				first = append(first, part)
			}
		}
	}
	return first, nil
}

// resolveFleet resolves the selector into the fleet's function names. A
// function named in --functions that does not exist is bad input (exit 2,
// naming it), not an environment failure.
func resolveFleet(cCtx *cli.Context, api rotate.FleetAPI, sel rotate.Selector) ([]string, error) {
	fleet, _, err := resolveFleetRead(cCtx, api, sel)
	return fleet, err
}

// resolveFleetRead is resolveFleet, also returning what the resolution
// read of the functions (for the engine's first inspection).
func resolveFleetRead(cCtx *cli.Context, api rotate.FleetAPI, sel rotate.Selector) ([]string, rotate.FleetRead, error) {
	fleet, read, err := rotate.ResolveFleetRead(cCtx.Context, api, sel)
	var missing *lambdatypes.ResourceNotFoundException
	switch {
	case err == nil:
		return fleet, read, nil
	case len(sel.Names) > 0 && errors.As(err, &missing):
		return nil, nil, usageError(cCtx, "--functions: %v", err)
	}
	return nil, nil, engineExit(fmt.Errorf("choosing the fleet (%s): %w", sel, err))
}

// backupFor is the fleet's backup secret: --backup-secret, or the default
// for the selector (rotate.FindBackup), saying so when it is a legacy name.
func backupFor(cCtx *cli.Context, api rotate.SecretsAPI, sel rotate.Selector, fleet []string) (rotate.Backup, error) {
	if n := cCtx.String("backup-secret"); n != "" {
		return rotate.Backup{API: api, Name: n}, nil
	}
	b, legacy, err := rotate.FindBackup(cCtx.Context, api, sel, fleet)
	if legacy {
		fmt.Fprintf(cCtx.App.ErrWriter, "valine-check: using the backup %s, created under the legacy default name (today's default is %s; --backup-secret chooses)\n",
			b.Name, rotate.DefaultBackupName(sel, fleet))
	}
	return b, err
}
