package main

import (
	"errors"
	"fmt"
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
		&cli.IntFlag{Name: "concurrency", Value: 10, EnvVars: []string{"VALINE_CONCURRENCY"}, Category: fleetCategory,
			Usage: "functions updated at once"},
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

// resolveFleet resolves the selector into the fleet's function names. A
// function named in --functions that does not exist is bad input (exit 2,
// naming it), not an environment failure.
func resolveFleet(cCtx *cli.Context, api rotate.FleetAPI, sel rotate.Selector) ([]string, error) {
	fleet, err := rotate.ResolveFleet(cCtx.Context, api, sel)
	var missing *lambdatypes.ResourceNotFoundException
	switch {
	case err == nil:
		return fleet, nil
	case len(sel.Names) > 0 && errors.As(err, &missing):
		return nil, usageError(cCtx, "--functions: %v", err)
	}
	return nil, engineExit(fmt.Errorf("choosing the fleet (%s): %w", sel, err))
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
