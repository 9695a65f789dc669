package main

import (
	"github.com/urfave/cli/v2"
	"github.com/valine/valine-check/rotate"
)

func finalizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "finalize",
		Usage: "end a zero-downtime rotation's grace period: remove the secondary everywhere, verify old tokens are refused",
		Flags: withFlags([]cli.Flag{
			&cli.BoolFlag{Name: "force", Category: changeCategory, Usage: "finalize before the grace deadline"},
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
			out, err := op.engine.Finalize(cCtx.Context, rotate.FinalizeOptions{
				Force: cCtx.Bool("force"), NoRollback: cCtx.Bool("no-rollback"), DryRun: cCtx.Bool("dry-run"),
				FailOnFindings: cCtx.Bool("fail-on-findings")})
			return op.finish(cCtx, output, out, err)
		},
	}
}
