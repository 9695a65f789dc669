package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/alarms"
)

func alarmsPlanCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "show what apply would create, update (naming the fields) and delete",
		Description: `Reads only. Exit 0 whether or not there are changes, unless --detailed-exitcode: then 0 when
there are none and 4 when changes are pending (CI can gate on it: terraform's 2 means bad usage
here); 2 for bad input, 3 when AWS fails. --out FILE saves the plan (JSON: the changes with their
desired values and a fingerprint of what CloudWatch held; nothing secret) for
'valine-check alarms apply FILE', which applies exactly it, or nothing if CloudWatch moved since.`,
		Flags: withFlags(alarmsFlags(), alarmsFleetFlags(), profileFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "detailed-exitcode", Category: alarmsCategory,
				Usage: "exit 4 when changes are pending, 0 when there are none (errors stay 2 and 3)"},
			&cli.StringFlag{Name: "out", Category: alarmsCategory, TakesFile: true,
				Usage: "save the plan to this file for 'alarms apply FILE'"},
		}),
		Action: alarmsPlan,
	}
}

func alarmsApplyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "make CloudWatch match the plan; a second apply changes nothing",
		ArgsUsage: "[FILE]",
		Description: `Shows the plan and asks "Apply these N changes? Type yes:" on standard input; anything but yes
(or no input) changes nothing and exits 2. --yes skips the question. With FILE (or --plan FILE),
a plan saved by 'alarms plan --out' is applied as it is, without asking and without the
deployment flags, once CloudWatch is found to hold exactly what the plan was made from; a stale
plan (an alarm, filter or the dashboard changed, appeared or disappeared since) changes nothing
and exits 2. Exit 0 when every change was made; 2 for bad input, 3 when AWS refused one (the
others are still made).`,
		Flags: withFlags(alarmsFlags(), alarmsFleetFlags(), profileFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "yes", Category: alarmsCategory, Usage: "apply without asking"},
			&cli.StringFlag{Name: "plan", Category: alarmsCategory, TakesFile: true,
				Usage: "apply the plan saved in this file by 'alarms plan --out' (or give it as the argument)"},
		}),
		Action: alarmsApply,
	}
}

// alarmsComputePlan resolves the deployment and plans its alarms, metric
// filters and dashboard.
func alarmsComputePlan(cCtx *cli.Context, api awsClients) (alarms.Changes, error) {
	cfg, err := alarmsConfig(cCtx, api)
	if err != nil {
		return alarms.Changes{}, err
	}
	want, filters, err := alarms.Desired(cfg)
	if err != nil {
		return alarms.Changes{}, usageError(cCtx, "%v", err)
	}
	dashboard, err := alarmsDashboard(cCtx, api, cfg)
	if err != nil {
		return alarms.Changes{}, err
	}
	plan, err := alarms.Plan(cCtx.Context, api.cw, api.logs, want, filters, cfg.Prefix, alarms.WithDashboard(dashboard))
	if err != nil {
		return plan, alarmsExit(err)
	}
	return plan, nil
}

// alarmsPlan prints the plan, saves it with --out and, with
// --detailed-exitcode, exits 4 when it holds changes.
func alarmsPlan(cCtx *cli.Context) error {
	output, err := alarmsOutput(cCtx)
	if err != nil {
		return err
	}
	out := cCtx.String("out")
	if cCtx.IsSet("out") && out == "" {
		return usageError(cCtx, "--out must name a file")
	}
	api, err := loadAWS(cCtx.Context, cCtx.Int("aws-max-attempts"))
	if err != nil {
		return cli.Exit(err.Error(), exitEnvError)
	}
	plan, err := alarmsComputePlan(cCtx, api)
	if err != nil {
		return err
	}
	if out != "" {
		if err := writePlanFile(out, alarms.NewSavedPlan(plan, api.cw.Options().Region, time.Now())); err != nil {
			return usageError(cCtx, "--out %s: %v", out, err)
		}
	}
	w := cCtx.App.Writer
	if output == "json" {
		doc := map[string]any{"schema": "valine-check/alarms-plan/v1", "prefix": plan.Prefix,
			"changes": plan.Changes, "summary": alarms.PlanSummary(plan), "state": plan.State}
		if out != "" {
			doc["savedTo"] = out
		}
		if err := writeJSON(w, doc); err != nil {
			return err
		}
	} else {
		next := "run 'valine-check alarms apply' to make it so"
		if out != "" {
			next = "saved to " + out + ": run 'valine-check alarms apply " + out + "' to make exactly it so"
		}
		alarms.WritePlanNext(w, plan, next)
	}
	if n := len(plan.Pending()); n > 0 && cCtx.Bool("detailed-exitcode") {
		return cli.Exit(fmt.Sprintf("%d changes pending", n), exitChangesPending)
	}
	return nil
}

// alarmsApply plans, shows the plan, asks (unless --yes) and applies; or
// applies a saved plan.
func alarmsApply(cCtx *cli.Context) error {
	output, err := alarmsOutput(cCtx)
	if err != nil {
		return err
	}
	file := cCtx.String("plan")
	switch {
	case cCtx.NArg() > 1:
		return usageError(cCtx, "one plan file at most, got %d arguments", cCtx.NArg())
	case cCtx.NArg() == 1 && file != "" && file != cCtx.Args().First():
		return usageError(cCtx, "two plan files: --plan %s and %s", file, cCtx.Args().First())
	case cCtx.NArg() == 1:
		file = cCtx.Args().First()
	case cCtx.IsSet("plan") && file == "":
		return usageError(cCtx, "--plan must name a file")
	}
	if file != "" {
		return alarmsApplySaved(cCtx, output, file)
	}
	api, err := loadAWS(cCtx.Context, cCtx.Int("aws-max-attempts"))
	if err != nil {
		return cli.Exit(err.Error(), exitEnvError)
	}
	plan, err := alarmsComputePlan(cCtx, api)
	if err != nil {
		return err
	}
	if n := len(plan.Pending()); n > 0 {
		// The plan goes where it does not mix with the JSON answer.
		shown := cCtx.App.Writer
		if output == "json" {
			shown = cCtx.App.ErrWriter
		}
		alarms.WritePlanNext(shown, plan, "")
		if !cCtx.Bool("yes") {
			if err := confirmApply(cCtx, n); err != nil {
				return err
			}
		}
	}
	return applyPlan(cCtx, output, api, plan)
}

// confirmApply asks the operator; anything but "yes", or no input, stops
// with exit 2 before anything is written.
func confirmApply(cCtx *cli.Context, n int) error {
	fmt.Fprintf(cCtx.App.ErrWriter, "Apply these %d changes? Type yes: ", n)
	line, _ := bufio.NewReader(cCtx.App.Reader).ReadString('\n')
	fmt.Fprintln(cCtx.App.ErrWriter)
	if strings.TrimSpace(line) != "yes" {
		return cli.Exit("not confirmed: nothing changed (--yes skips the question; 'alarms plan --out FILE' then 'alarms apply FILE' applies a reviewed plan)", exitUsage)
	}
	return nil
}

// alarmsApplySaved applies a saved plan as it is, once CloudWatch is found
// to hold what it was made from.
func alarmsApplySaved(cCtx *cli.Context, output, file string) error {
	saved, err := readPlanFile(file)
	if err != nil {
		return usageError(cCtx, "%s: %v", file, err)
	}
	if cCtx.IsSet("alarm-prefix") && cCtx.String("alarm-prefix") != saved.Prefix {
		return usageError(cCtx, "%s is a plan for the prefix %s, not --alarm-prefix %s", file, saved.Prefix, cCtx.String("alarm-prefix"))
	}
	api, err := loadAWS(cCtx.Context, cCtx.Int("aws-max-attempts"))
	if err != nil {
		return cli.Exit(err.Error(), exitEnvError)
	}
	if region := api.cw.Options().Region; region != saved.Region {
		return usageError(cCtx, "%s was made in region %s; this is %s: nothing changed", file, saved.Region, region)
	}
	if err := alarms.CheckFresh(cCtx.Context, api.cw, api.logs, saved.Changes); err != nil {
		if errors.Is(err, alarms.ErrStalePlan) {
			return cli.Exit(fmt.Sprintf("%s: %v: nothing changed; run 'valine-check alarms plan --out %s' again", file, err, file), exitUsage)
		}
		return alarmsExit(err)
	}
	if output != "json" && len(saved.Pending()) > 0 {
		fmt.Fprintf(cCtx.App.Writer, "applying the plan saved in %s at %s:\n", file, saved.CreatedAt.Format(time.RFC3339))
		alarms.WritePlanNext(cCtx.App.Writer, saved.Changes, "")
	}
	return applyPlan(cCtx, output, api, saved.Changes)
}

// applyPlan applies plan and reports what was done.
func applyPlan(cCtx *cli.Context, output string, api awsClients, plan alarms.Changes) error {
	w := cCtx.App.Writer
	done, applyErr := alarms.Apply(cCtx.Context, api.cw, api.logs, plan)
	if output == "json" {
		out := map[string]any{"schema": "valine-check/alarms-apply/v1", "prefix": plan.Prefix,
			"applied": append([]alarms.Change{}, done...), "summary": alarms.PlanSummary(plan)}
		if applyErr != nil {
			out["error"] = applyErr.Error()
		}
		if err := writeJSON(w, out); err != nil {
			return err
		}
	} else {
		alarms.WriteApplied(w, plan, done)
	}
	if applyErr != nil {
		return cli.Exit(fmt.Sprintf("%d of %d changes made: %v", len(done), len(plan.Pending()), applyErr), exitEnvError)
	}
	return nil
}

// writePlanFile writes a saved plan to path by rename, so a reader never
// sees half a plan.
func writePlanFile(path string, s alarms.SavedPlan) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := alarms.WriteSavedPlan(tmp, s); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readPlanFile reads a saved plan.
func readPlanFile(path string) (alarms.SavedPlan, error) {
	f, err := os.Open(path)
	if err != nil {
		return alarms.SavedPlan{}, err
	}
	defer f.Close()
	return alarms.ReadSavedPlan(io.LimitReader(f, 64<<20))
}
