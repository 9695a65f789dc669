package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/rotate"
)

func rotateCommand() *cli.Command {
	return &cli.Command{
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
			outputFlag("text", "json"),
		}, changeFlags(), sourceFlags(), deployFlags(), fleetFlags(), probeFlags()),
		Action: func(cCtx *cli.Context) error {
			output, err := outputFormat(cCtx, "text", "json")
			if err != nil {
				return err
			}
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
			return op.finish(cCtx, output, out, err)
		},
	}
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
