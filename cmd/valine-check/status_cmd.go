package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the fleet's secrets by fingerprint, drift, the rotation in progress and the grace period left",
		Description: `Reads only. Exit 1 when anything disagrees — the functions among themselves, with the
journalled rotation's phase, or with the source of truth (--source, else the journalled one)
the next deploy writes — or the journal or the store cannot be read, or a rotation stopped
mid-way; 0 otherwise. Where a CloudFormation stack deploys the fleet it says which, and how its
template supplies the secret variable.

--fail-on-drift is the CI gate after a deploy (serverless deploy, sam deploy): the same
verdict, without the 24-hour Logs Insights query, and every function that drifted named on
stderr with what it holds.`,
		Flags: withFlags([]cli.Flag{
			outputFlag("text", "json"),
			&cli.BoolFlag{Name: "fail-on-drift", EnvVars: []string{"VALINE_FAIL_ON_DRIFT"},
				Usage: "the post-deploy gate: exit 1 naming every function that does not hold what the source of truth and the journal say, skipping the secondary-use query"},
		}, sourceFlags(), fleetFlags(), profileFlags()),
		Action: func(cCtx *cli.Context) error {
			output, err := outputFormat(cCtx, "text", "json")
			if err != nil {
				return err
			}
			op, err := newOperation(cCtx, false)
			if err != nil {
				return err
			}
			st, err := op.engine.Status(cCtx.Context)
			if err != nil {
				return engineExit(err)
			}
			gate := cCtx.Bool("fail-on-drift")
			secondary := ""
			if !gate {
				secondary = secondaryUse(cCtx, op)
			}
			if output == "json" {
				st.SecondaryUse = secondary
				if err := writeJSON(cCtx.App.Writer, st); err != nil {
					return err
				}
			} else {
				writeStatus(cCtx, st, op)
				if !gate {
					fmt.Fprintf(cCtx.App.Writer, "secondary-secret use, last 24h: %s\n", secondary)
				}
			}
			if gate && st.Drifted() {
				writeDriftReport(cCtx, st, op)
			}
			switch {
			case len(st.SourceDrift) > 0:
				return cli.Exit(fmt.Sprintf("%d disagree(s) with the source of truth %s: a deploy or an edit by hand since the last rotation?", len(st.SourceDrift), st.Source), exitFailed)
			case st.SourceError != "":
				return cli.Exit("the source of truth "+st.Source.String()+" cannot be read: "+st.SourceError, exitFailed)
			case !st.Drift.Consistent:
				return cli.Exit("the fleet has drifted", exitFailed)
			case len(st.Mismatches) > 0:
				return cli.Exit(fmt.Sprintf("%d function variable(s) do not hold what rotation %s's phase %s requires", len(st.Mismatches), st.Journal.ID, st.Journal.Phase), exitFailed)
			case st.JournalError != "":
				return cli.Exit("the rotation journal cannot be read", exitFailed)
			case st.Unfinished():
				return cli.Exit(fmt.Sprintf("rotation %s stopped in phase %s: run the same command again to finish it, or rollback", st.Journal.ID, st.Journal.Phase), exitFailed)
			case st.Lock != nil && st.Lock.Dead:
				return cli.Exit("the fleet's lock was left by a run that is gone", exitFailed)
			}
			return nil
		},
	}
}

func writeStatus(cCtx *cli.Context, st rotate.Status, op operation) {
	w := cCtx.App.Writer
	p := op.engine.Profile
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "FUNCTION\t%s\t%s\tREVISION\tLAST MODIFIED\tUPDATE\n", p.SecretVar, orDash(p.SecondaryVar))
	for _, f := range st.Fleet.Functions {
		secondary := "-"
		if f.HasSecondaryVar {
			secondary = f.Secondary.Fingerprint()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Primary, secondary, orDash(f.RevisionID), orDash(f.LastModified), orDash(f.LastUpdateStatus))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, st.Drift)
	fmt.Fprintf(w, "backup %s: AWSCURRENT %s, AWSPREVIOUS %s\n", op.engine.Backup.Name, orDash(st.BackupCurrent), orDash(st.BackupPrevious))
	if st.Lock != nil {
		fmt.Fprintf(w, "lock: %s\n", st.Lock)
	}
	writeSource(w, st, p.SecretVar)
	for _, m := range st.Mismatches {
		fmt.Fprintf(w, "MISMATCH %s: %s is %s, the journal's phase %s requires %s: it %s\n",
			m.Function, m.Variable, orAbsent(m.Holds), st.Journal.Phase, orAbsent(m.Want), m.Says)
	}
	if st.JournalError != "" {
		fmt.Fprintf(w, "UNREADABLE rotation journal: %s\n", st.JournalError)
		return
	}
	if !st.HasJournal {
		fmt.Fprintln(w, "no rotation journalled")
		return
	}
	j := st.Journal
	fmt.Fprintf(w, "rotation %s (%s): phase %s, started %s, old %s, new %s\n", j.ID, j.Mode, j.Phase,
		j.StartedAt.Format(time.RFC3339), orDash(j.OldFingerprint), orDash(j.NewFingerprint))
	switch {
	case j.Phase == journal.PhaseGrace && st.GraceRemaining > 0:
		fmt.Fprintf(w, "grace period: %s left (until %s), then 'valine-check finalize'\n", st.GraceRemaining.Round(time.Minute), j.GraceDeadline.Format(time.RFC3339))
	case j.Phase == journal.PhaseGrace:
		fmt.Fprintf(w, "grace period over since %s: 'valine-check finalize'\n", j.GraceDeadline.Format(time.RFC3339))
	case st.Unfinished() && j.Verification == journal.VerificationPending:
		fmt.Fprintf(w, "VERIFICATION PENDING: the check after phase %s could not tell (network, 5xx, throttling); the fleet was left as it is; running the same command again verifies again and carries on\n", j.Phase)
	case st.Unfinished() && j.Verification == journal.VerificationFailed:
		fmt.Fprintf(w, "VERIFICATION FAILED: the change of phase %s is in place but did not verify (emergency or --no-rollback); fix what failed and run the same command again, or roll back\n", j.Phase)
	case st.Unfinished():
		fmt.Fprintf(w, "INTERRUPTED: the rotation stopped in phase %s; running rotate (or finalize / rollback) again finishes it\n", j.Phase)
	}
}

func orAbsent(fp string) string {
	if fp == "" {
		return "absent"
	}
	return fp
}

// secondaryUse measures secondary-secret use over the fleet's log groups in
// the last 24 hours. A query that cannot run is said, not fatal: status
// must still show the fleet.
func secondaryUse(cCtx *cli.Context, op operation) string {
	groups := alarms.LogGroups(op.engine.Fleet)
	end := time.Now()
	u, err := alarms.MeasureSecondaryUse(cCtx.Context, &alarms.Runner{Logs: op.aws.logs, Log: logger, Progress: waitLines(cCtx)}, op.engine.Profile, groups, end.Add(-24*time.Hour), end)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return u.String()
}

// writeSource prints the source of truth, what it holds and what disagrees
// with it, and the stacks that deploy the fleet.
func writeSource(w io.Writer, st rotate.Status, secretVar string) {
	for _, d := range st.Stacks {
		fmt.Fprintf(w, "deploy: %s\n", d.String(secretVar))
	}
	if !st.Source.IsStore() {
		fmt.Fprintln(w, "source of truth: the functions' environment (lambda-env)")
		return
	}
	if st.SourceError != "" {
		fmt.Fprintf(w, "source of truth %s: UNREADABLE: %s\n", st.Source, st.SourceError)
		return
	}
	fmt.Fprintf(w, "source of truth %s (%s delivery): primary %s, secondary %s\n", st.Source, st.Delivery, orDash(st.SourcePrimary), orDash(st.SourceSecondary))
	for _, m := range st.SourceDrift {
		if m.Function == "" {
			fmt.Fprintf(w, "SOURCE DRIFT %s holds %s, the journal's phase %s requires %s: it %s\n", m.Variable, orAbsent(m.Holds), st.Journal.Phase, orAbsent(m.Want), m.Says)
			continue
		}
		fmt.Fprintf(w, "SOURCE DRIFT %s: %s is %s, %s holds %s: it %s\n", m.Function, m.Variable, orAbsent(m.Holds), st.Source, orAbsent(m.Want), m.Says)
	}
}

// writeDriftReport names, on stderr, every function or store that does not
// hold what it should, one line each: what a pipeline log shows.
func writeDriftReport(cCtx *cli.Context, st rotate.Status, op operation) {
	w := cCtx.App.ErrWriter
	fmt.Fprintln(w, "valine-check: DRIFT after deploy:")
	if !st.Drift.Consistent {
		fmt.Fprintf(w, "  the functions disagree: %s\n", st.Drift)
	}
	for _, m := range st.Mismatches {
		fmt.Fprintf(w, "  %s: %s holds %s, rotation %s (%s) requires %s\n", m.Function, m.Variable, orAbsent(m.Holds), st.Journal.ID, st.Journal.Phase, orAbsent(m.Want))
	}
	for _, m := range st.SourceDrift {
		who := m.Function
		if who == "" {
			who = "source of truth"
		}
		fmt.Fprintf(w, "  %s: %s holds %s, expected %s: it %s\n", who, m.Variable, orAbsent(m.Holds), orAbsent(m.Want), m.Says)
	}
	if st.SourceError != "" {
		fmt.Fprintf(w, "  source of truth %s unreadable: %s\n", st.Source, st.SourceError)
	}
	if st.JournalError != "" {
		fmt.Fprintf(w, "  rotation journal in %s unreadable: %s\n", op.engine.Backup.Name, st.JournalError)
	}
}
