package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

func insightsCommand() *cli.Command {
	return &cli.Command{
		Name:  "insights",
		Usage: "list and run the named CloudWatch Logs Insights queries over the fleet's log groups",
		Description: `The queries are built from the deployment profile's log patterns. Lines whose User-Agent
claims to be a probe run's deliberate request (valine-check-deliberate/…, where the API logs the
User-Agent) are left out of the failure counts; anyone can claim it, so read the counts as a floor.`,
		Subcommands: []*cli.Command{insightsListCommand(), insightsRunCommand()},
	}
}

func insightsListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "show the named queries: name, what they count, query string",
		Flags: withFlags([]cli.Flag{
			outputFlag("text", "json"),
			envStdinFlag,
		}, profileFlags()),
		Action: func(cCtx *cli.Context) error {
			if cCtx.NArg() > 0 {
				return usageError(cCtx, "insights list takes no arguments")
			}
			output, err := outputFormat(cCtx, "text", "json")
			if err != nil {
				return err
			}
			queries, excluded, err := insightsQueries(cCtx)
			if err != nil {
				return err
			}
			w := cCtx.App.Writer
			if output == "json" {
				return writeJSON(w, insightsListJSON{Schema: schemaInsightsList, ProbeRejectionsExcluded: excluded, Queries: queries})
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCOUNTS")
			for _, q := range queries {
				fmt.Fprintf(tw, "%s\t%s\n", q.Name, q.Description)
			}
			_ = tw.Flush()
			for _, q := range queries {
				fmt.Fprintf(w, "\n%s:\n  %s\n", q.Name, q.String)
			}
			return nil
		},
	}
}

// insightsRunCommand() is "insights run NAME [flags]". urfave/cli stops
// reading flags at the first argument, so each query name is a subcommand
// carrying the flags, which lets them follow the name; "run" itself answers
// an unknown name (exit 2, with the known ones).
func insightsRunCommand() *cli.Command {
	run := &cli.Command{
		Name:      "run",
		Usage:     "run one named query over the fleet's log groups (/aws/lambda/<function>) and print its result",
		ArgsUsage: "NAME [flags]",
		Description: `Exit codes: 0 the query ran, 2 bad input (an unknown query name lists the known ones),
3 AWS failed or the query did not finish within --deadline.`,
		Action: runInsights,
	}
	for _, q := range alarms.Queries(profile.Presets["runbook"]) {
		run.Subcommands = append(run.Subcommands, &cli.Command{
			Name:        q.Name,
			Usage:       q.Description,
			Description: run.Description,
			Flags:       insightsRunFlags(),
			Action:      runInsights,
		})
	}
	return run
}

// insightsRunFlags are the flags of one query's run.
func insightsRunFlags() []cli.Flag {
	return withFlags([]cli.Flag{
		&cli.StringFlag{Name: "since", Value: "1h", Usage: "start of the window: a duration ago (1h, 30m) or an RFC 3339 time"},
		&cli.StringFlag{Name: "until", Usage: "end of the window, like --since (default: now)"},
		&cli.DurationFlag{Name: "deadline", Value: alarms.DefaultDeadline, EnvVars: []string{"VALINE_INSIGHTS_DEADLINE"},
			Usage: "stop the query if it has not finished within this"},
		outputFlag("text", "json"),
		envStdinFlag,
	}, fleetFlags(), profileFlags())
}

// runInsights runs the query its command names.
func runInsights(cCtx *cli.Context) error {
	if cCtx.Command.Name == "run" {
		if cCtx.NArg() == 0 {
			return usageError(cCtx, "give one query name (see 'valine-check insights list')")
		}
		names := alarms.QueryNames(alarms.Queries(profile.Presets["runbook"]))
		return usageError(cCtx, "unknown query %q (known: %s)", cCtx.Args().First(), strings.Join(names, ", "))
	}
	if cCtx.NArg() > 0 {
		return usageError(cCtx, "unexpected arguments %q: give one query name, then flags", cCtx.Args().Slice())
	}
	queries, excluded, err := insightsQueries(cCtx)
	if err != nil {
		return err
	}
	q, ok := alarms.FindQuery(queries, cCtx.Command.Name)
	if !ok {
		return usageError(cCtx, "unknown query %q (known: %s)", cCtx.Command.Name, strings.Join(alarms.QueryNames(queries), ", "))
	}
	now := time.Now()
	start, err := parseTime(cCtx.String("since"), now)
	if err != nil {
		return usageError(cCtx, "--since: %v", err)
	}
	end := now
	if u := cCtx.String("until"); u != "" {
		if end, err = parseTime(u, now); err != nil {
			return usageError(cCtx, "--until: %v", err)
		}
	}
	if !end.After(start) {
		return usageError(cCtx, "--until (%s) must be after --since (%s)", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	output, err := outputFormat(cCtx, "text", "json")
	if err != nil {
		return err
	}
	sel, err := selector(cCtx)
	if err != nil {
		return err
	}
	api, err := loadAWS(cCtx.Context, cCtx.Int("aws-max-attempts"))
	if err != nil {
		return cli.Exit(err.Error(), exitEnvError)
	}
	fleet, err := resolveFleet(cCtx, rotate.NewPacedLambda(api.lambda, rotate.LambdaPace{}), sel)
	if err != nil {
		return err
	}
	groups := alarms.LogGroups(fleet)
	runner := &alarms.Runner{Logs: api.logs, Deadline: cCtx.Duration("deadline"), Log: logger, Progress: waitLines(cCtx)}
	res, err := runner.Run(cCtx.Context, q, groups, start, end)
	if err != nil {
		var notFound *cwltypes.ResourceNotFoundException
		if errors.As(err, &notFound) {
			err = fmt.Errorf("%w (a function that has never run has no log group yet)", err)
		}
		return cli.Exit(fmt.Sprintf("running %s over %d log group(s): %v", q.Name, len(groups), err), exitEnvError)
	}
	if output == "json" {
		return writeJSON(cCtx.App.Writer, insightsRunJSON{Schema: schemaInsightsRun, Query: q, ProbeRejectionsExcluded: excluded, Total: res.Total(q.Field), Result: res})
	}
	alarms.WriteResult(cCtx.App.Writer, q, res, excluded)
	return nil
}

// insightsQueries builds the profile's queries, leaving out the lines whose
// User-Agent claims to be a probe run's deliberate request
// (probes.DeliberatePrefix; anyone can claim it, so the counts say so).
func insightsQueries(cCtx *cli.Context) ([]alarms.Query, bool, error) {
	p, err := resolveProfile(cCtx)
	if err != nil {
		return nil, false, err
	}
	return alarms.Queries(p, alarms.ExcludeDeliberate(probes.DeliberatePrefix)), true, nil
}
