package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/probes/report"
	"github.com/valine/valine-check/rotate"
)

const changeCategory = "Change"

func changeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "dry-run", Category: changeCategory, Usage: "print the plan (functions, variables, fingerprints) and change nothing"},
		&cli.BoolFlag{Name: "no-rollback", Category: changeCategory, Usage: "leave a change that fails verification in place instead of rolling it back"},
		&cli.BoolFlag{Name: "fail-on-findings", EnvVars: []string{"VALINE_FAIL_ON_FINDINGS"}, Category: changeCategory,
			Usage: "exit 1 when the verification reports findings the change did not cause (pre-existing ones, log failures); nothing is rolled back for them"},
		&cli.StringFlag{Name: "reason", EnvVars: []string{"VALINE_REASON"}, Category: changeCategory, Usage: "why, for the audit record"},
		&cli.BoolFlag{Name: "break-lock", Category: changeCategory,
			Usage: "free the fleet's lock left by a run that died on another machine (a dead run on this machine is taken over by itself)"},
		&cli.BoolFlag{Name: "compare", Value: true, EnvVars: []string{"VALINE_COMPARE"}, Category: compareCategory,
			Usage: "run the Logs Insights queries (and read the alarms) before and after the change, and compare (--compare=false skips)"},
		&cli.DurationFlag{Name: "compare-window", Value: time.Hour, EnvVars: []string{"VALINE_COMPARE_WINDOW"}, Category: compareCategory,
			Usage: "the window before the change that the after-figures are compared with"},
		&cli.DurationFlag{Name: "ingestion-wait", Value: alarms.IngestionDelay, EnvVars: []string{"VALINE_INGESTION_WAIT"}, Category: compareCategory,
			Usage: "how long to wait for the logs of the verification to become queryable"},
		&cli.Float64Flag{Name: "max-failure-increase", Value: alarms.DefaultCompareThresholds().MaxFailureIncreasePer5m, EnvVars: []string{"VALINE_MAX_FAILURE_INCREASE"}, Category: compareCategory,
			Usage: "failed JWT verifications per 5 minutes may rise by at most this much after the change"},
		&cli.StringFlag{Name: "alarm-prefix", Value: alarms.DefaultPrefix, EnvVars: []string{"VALINE_ALARM_PREFIX"}, Category: compareCategory,
			Usage: "the alarms whose states are compared (those 'valine-check alarms apply' manages)"},
	}
}

const compareCategory = "Compare"

func withFlags(groups ...[]cli.Flag) []cli.Flag {
	var all []cli.Flag
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

// finish prints what an operation did, as text or as one JSON document
// (rotationJSON), and maps its error to an exit code.
func (op operation) finish(cCtx *cli.Context, output string, out rotate.Outcome, err error) error {
	w := cCtx.App.Writer
	if output == "json" {
		exit := engineExit(err)
		if werr := writeJSON(w, newRotationJSON(cCtx.Command.Name, op, out, exit)); werr != nil {
			return werr
		}
		return exit
	}
	if out.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed. The plan:")
		for _, line := range out.Plan {
			fmt.Fprintln(w, "  "+line)
		}
		return engineExit(err)
	}
	if out.Baseline != nil {
		fmt.Fprintln(w, "baseline, against the secret in force before any change:")
		if werr := report.WriteText(w, *out.Baseline); werr != nil {
			return cli.Exit(werr.Error(), exitEnvError)
		}
	}
	for _, rep := range out.Reports {
		if werr := report.WriteText(w, rep); werr != nil {
			return cli.Exit(werr.Error(), exitEnvError)
		}
	}
	writeComparison(w, out.Comparison)
	j := out.Journal
	if j.ID != "" {
		fmt.Fprintf(w, "rotation %s (%s): phase %s; old %s, new %s", j.ID, j.Mode, j.Phase, orDash(j.OldFingerprint), orDash(j.NewFingerprint))
		if j.Phase == journal.PhaseGrace {
			fmt.Fprintf(w, "; grace until %s (%s left)", j.GraceDeadline.Format(time.RFC3339), time.Until(j.GraceDeadline).Round(time.Minute))
		}
		if j.Verification != "" {
			fmt.Fprintf(w, "; verification %s", j.Verification)
		}
		fmt.Fprintln(w)
	}
	if len(out.Splits) > 0 {
		parts := make([]string, len(out.Splits))
		for i, s := range out.Splits {
			parts[i] = fmt.Sprintf("%.2f s (phase %s, %d functions)", s.Duration().Seconds(), orDash(string(s.Phase)), s.Functions)
		}
		fmt.Fprintf(w, "fleet split (first function on the new secrets to the last): %s\n", strings.Join(parts, "; "))
	}
	if j.ID != "" {
		fmt.Fprintf(w, "audit: %s\n", op.auditPath)
	}
	return engineExit(err)
}

// writeComparison prints a before/after verdict: the figures, what could
// not be checked, and the findings.
func writeComparison(w io.Writer, c *alarms.Verdict) {
	if c == nil {
		return
	}
	fmt.Fprintln(w, "before/after the change (Logs Insights, alarms):")
	for _, f := range c.Figures {
		fmt.Fprintf(w, "  %-28s %8.1f → %.1f\n", f.Name, f.Before, f.After)
	}
	for _, u := range c.Unchecked {
		fmt.Fprintf(w, "  not checked: %s\n", u)
	}
	for _, f := range c.Findings {
		fmt.Fprintf(w, "  FINDING: %s\n", f)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
