package main

import (
	"bufio"
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

var rotateCommand = &cli.Command{
	Name:  "rotate",
	Usage: "rotate the JWT secret of a fleet of Lambda functions, and verify",
	Description: `Modes (--mode):
  zero-downtime  prove the API honours the secondary variable (refuse otherwise), then set the new
                 secret as primary and the old one as secondary on every function; verify in grace
                 mode; 'valine-check finalize' removes the secondary after the grace period.
  maintenance    set the new secret as primary, no secondary; verify in strict mode (old tokens refused).
  emergency      maintenance at once, after an interactive confirmation (--yes skips it).

Before any function changes, the old and new secrets are stored in Secrets Manager (--backup-secret;
AWSCURRENT = new, AWSPREVIOUS = old) and each step is journalled on that secret, so a run that stops
anywhere is resumed by running the command again. A verification failure rolls back (unless
--no-rollback). The new secret is generated (32 random bytes, base64) unless VALINE_NEW_SECRET is set.
Every step is appended to --audit-file. Secrets are shown only as fingerprints.`,
	Flags: withFlags([]cli.Flag{
		&cli.StringFlag{Name: "mode", EnvVars: []string{"VALINE_MODE"}, Category: changeCategory, Usage: "zero-downtime, maintenance or emergency (required)"},
		&cli.DurationFlag{Name: "grace", Value: rotate.DefaultGrace, EnvVars: []string{"VALINE_GRACE"}, Category: changeCategory,
			Usage: "zero-downtime grace period (raised to the refresh tokens' lifetime when that is longer)"},
		&cli.BoolFlag{Name: "yes", Category: changeCategory, Usage: "skip the emergency confirmation"},
	}, changeFlags(), fleetFlags(), probeFlags()),
	Action: func(cCtx *cli.Context) error {
		mode, err := journal.ParseMode(cCtx.String("mode"))
		if err != nil {
			return usageError(cCtx, "--mode: %v", err)
		}
		op, err := newOperation(cCtx, true)
		if err != nil {
			return err
		}
		if mode == journal.ModeEmergency && !cCtx.Bool("dry-run") && !cCtx.Bool("yes") {
			if err := confirmEmergency(cCtx, len(op.engine.Fleet)); err != nil {
				return err
			}
		}
		out, err := op.engine.Rotate(cCtx.Context, mode, rotate.RotateOptions{
			Grace: cCtx.Duration("grace"), NoRollback: cCtx.Bool("no-rollback"), DryRun: cCtx.Bool("dry-run"),
			FailOnFindings: cCtx.Bool("fail-on-findings"), New: op.setup.secrets.secret(envNewSecret),
		})
		return op.finish(cCtx, out, err)
	},
}

var finalizeCommand = &cli.Command{
	Name:  "finalize",
	Usage: "end a zero-downtime rotation's grace period: remove the secondary everywhere, verify old tokens are refused",
	Flags: withFlags([]cli.Flag{
		&cli.BoolFlag{Name: "force", Category: changeCategory, Usage: "finalize before the grace deadline"},
	}, changeFlags(), fleetFlags(), probeFlags()),
	Action: func(cCtx *cli.Context) error {
		op, err := newOperation(cCtx, true)
		if err != nil {
			return err
		}
		out, err := op.engine.Finalize(cCtx.Context, rotate.FinalizeOptions{
			Force: cCtx.Bool("force"), NoRollback: cCtx.Bool("no-rollback"), DryRun: cCtx.Bool("dry-run"),
			FailOnFindings: cCtx.Bool("fail-on-findings")})
		return op.finish(cCtx, out, err)
	},
}

var rollbackCommand = &cli.Command{
	Name:  "rollback",
	Usage: "put the previous secret (from the backup) back on every function, and verify",
	Description: `Rolling back an emergency rotation restores the secret that leaked: it asks for the rotation's
id to be typed (--yes skips the question). Exit 1 when the verification after the rollback fails.`,
	Flags: withFlags([]cli.Flag{
		&cli.BoolFlag{Name: "yes", Category: changeCategory, Usage: "skip the confirmation before restoring the compromised secret of an emergency rotation"},
	}, changeFlags(), fleetFlags(), probeFlags()),
	Action: func(cCtx *cli.Context) error {
		op, err := newOperation(cCtx, true)
		if err != nil {
			return err
		}
		if !cCtx.Bool("dry-run") && !cCtx.Bool("yes") {
			if err := confirmCompromisedRestore(cCtx, op.engine); err != nil {
				return err
			}
		}
		out, err := op.engine.Rollback(cCtx.Context, rotate.RollbackOptions{DryRun: cCtx.Bool("dry-run"), FailOnFindings: cCtx.Bool("fail-on-findings")})
		return op.finish(cCtx, out, err)
	},
}

// confirmCompromisedRestore asks, before rolling back an emergency
// rotation, for its id to be typed: the secret a rollback restores is the
// one that leaked. Anything else, or no terminal to ask, stops with exit 2.
func confirmCompromisedRestore(cCtx *cli.Context, e *rotate.Engine) error {
	j, found, err := e.Backup.ReadJournal(cCtx.Context)
	if err != nil || !found || j.Mode != journal.ModeEmergency || j.Phase == journal.PhaseRolledBack || j.Phase == journal.PhaseAbandoned {
		return nil // the rollback itself reports what it finds
	}
	fmt.Fprintf(cCtx.App.ErrWriter, "WARNING: rotation %s was an EMERGENCY: rolling it back puts the COMPROMISED secret %s back on %d functions.\nType the rotation id (%s) to continue: ",
		j.ID, j.OldFingerprint, len(e.Fleet), j.ID)
	line, _ := bufio.NewReader(cCtx.App.Reader).ReadString('\n')
	if strings.TrimSpace(line) != j.ID {
		return cli.Exit("not confirmed: nothing changed (--yes skips the question)", exitUsage)
	}
	return nil
}

// confirmEmergency asks the operator to type the word; anything else, or no
// terminal to ask, stops with exit 2.
func confirmEmergency(cCtx *cli.Context, n int) error {
	fmt.Fprintf(cCtx.App.ErrWriter, "EMERGENCY rotation: the secret of %d functions is replaced now; every user is logged out.\nType 'emergency' to continue: ", n)
	line, _ := bufio.NewReader(cCtx.App.Reader).ReadString('\n')
	if strings.TrimSpace(line) != "emergency" {
		return cli.Exit("not confirmed: nothing changed (--yes skips the question)", exitUsage)
	}
	return nil
}

// finish prints what an operation did and maps its error to an exit code.
func (op operation) finish(cCtx *cli.Context, out rotate.Outcome, err error) error {
	w := cCtx.App.Writer
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
		fmt.Fprintf(w, "\naudit: %s\n", op.auditPath)
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
