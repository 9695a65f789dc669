package main

import (
	"time"

	"github.com/urfave/cli/v2"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/probes/report"
	"github.com/valine/valine-check/rotate"
)

func preflightCommand() *cli.Command {
	return &cli.Command{
		Name:  "preflight",
		Usage: "check a fleet is ready to rotate: identity, access, backup, the baseline and its findings, possible modes, environment room",
		Description: `Runs the baseline a rotation runs first (login, refresh and the security battery against the
current secret: its findings are warnings, which a rotation reports as pre-existing) and says which
modes are possible. Proving zero-downtime support sets a throwaway secondary secret on every
function, checks a token signed with it is accepted, and removes it (the primary is never touched;
every write is audited); --read-only skips that. Nothing is written when the probe cannot log in.
Exit 0 when nothing failed, 1 when a check failed, 3 when one could not run.`,
		Flags: withFlags([]cli.Flag{
			&cli.BoolFlag{Name: "read-only", Usage: "do not prove dual-secret support (no write at all)"},
			outputFlag("text", "json", "junit"),
		}, sourceFlags(), fleetFlags(), probeFlags()),
		Action: func(cCtx *cli.Context) error {
			format, err := reportFormat(cCtx)
			if err != nil {
				return err
			}
			op, err := newOperation(cCtx, true)
			if err != nil {
				return err
			}
			start := time.Now()
			results := rotate.Preflight(cCtx.Context, op.engine, op.aws.sts, !cCtx.Bool("read-only"))
			rep := probes.NewReport(results, op.setup.apiURL, op.engine.Profile.Name, op.setup.function, start)
			if err := report.Write(cCtx.App.Writer, format, rep); err != nil {
				return cli.Exit(err.Error(), exitEnvError)
			}
			return exitFor(rep)
		},
	}
}
