package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "put the previous secret (from the backup) back on every function, and verify",
		Description: `Rolling back an emergency rotation restores the secret that leaked: it asks for the rotation's
id to be typed (--yes skips the question). Exit 1 when the verification after the rollback fails.`,
		Flags: withFlags([]cli.Flag{
			&cli.BoolFlag{Name: "yes", Category: changeCategory, Usage: "skip the confirmation before restoring the compromised secret of an emergency rotation"},
			outputFlag("text", "json"),
		}, changeFlags(), sourceFlags(), fleetFlags(), probeFlags()),
		Action: func(cCtx *cli.Context) error {
			output, err := outputFormat(cCtx, "text", "json")
			if err != nil {
				return err
			}
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
			return op.finish(cCtx, output, out, err)
		},
	}
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
