package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/rotate"
)

// operation is a fleet command's resolved inputs and engine.
type operation struct {
	engine    *rotate.Engine
	setup     probeSetup
	aws       awsClients
	auditPath string
}

// newOperation resolves the fleet and, when withProbes, the probe inputs,
// and builds the engine. Bad input is exit 2; AWS failing is exit 3.
func newOperation(cCtx *cli.Context, withProbes bool) (operation, error) {
	var op operation
	var err error
	if withProbes {
		if op.setup, err = resolveProbeSetup(cCtx); err != nil {
			return op, err
		}
	} else if op.setup.profile, err = resolveProfile(cCtx); err != nil {
		return op, err
	}
	sel, err := selector(cCtx)
	if err != nil {
		return op, err
	}
	pace, err := lambdaPace(cCtx)
	if err != nil {
		return op, err
	}
	if op.aws, err = loadAWS(cCtx.Context, cCtx.Int("aws-max-attempts")); err != nil {
		return op, cli.Exit(err.Error(), exitEnvError)
	}
	// One pace for every Lambda call of the run, the fleet's listing included.
	paced := rotate.NewPacedLambda(op.aws.lambda, pace)
	fleet, read, err := resolveFleetRead(cCtx, paced, sel)
	if err != nil {
		return op, err
	}
	first, err := switchFirst(cCtx, fleet)
	if err != nil {
		return op, err
	}
	backup, err := backupFor(cCtx, op.aws.secrets, sel, fleet)
	if err != nil {
		return op, cli.Exit(err.Error(), exitEnvError)
	}
	op.auditPath = cCtx.Path("audit-file")
	op.engine = &rotate.Engine{
		Lambda:      paced,
		Backup:      backup,
		Profile:     op.setup.profile,
		Fleet:       fleet,
		Read:        read, // the plan (or status) reads no function twice
		Concurrency: cCtx.Int("concurrency"),
		SwitchFirst: first,
		Audit:       &rotate.AuditLog{Path: op.auditPath},
		Reason:      cCtx.String("reason"),
		Progress:    stepWriter(cCtx),
		Wait:        waitLines(cCtx),
	}
	applySource(cCtx, op.engine, op.aws)
	if withProbes {
		op.engine.Verifier = rotate.ProbeVerifier{Target: op.setup.target(op.aws.logs), Config: op.setup.cfg, Runner: op.setup.runner}
		arn, err := rotate.Identity(cCtx.Context, op.aws.sts)
		if err != nil {
			return op, cli.Exit(err.Error(), exitEnvError)
		}
		op.engine.Operator = arn
		if cCtx.Bool("break-lock") && !cCtx.Bool("dry-run") {
			held, found, err := op.engine.BreakLock(cCtx.Context)
			switch {
			case errors.Is(err, rotate.ErrLockHolderAlive):
				return op, cli.Exit(err.Error(), exitUsage)
			case err != nil:
				return op, cli.Exit(err.Error(), exitEnvError)
			case found:
				fmt.Fprintf(stepWriter(cCtx), "broke the lock: %s\n", held)
			default:
				fmt.Fprintln(stepWriter(cCtx), "no lock to break")
			}
		}
		if cCtx.Bool("compare") {
			op.engine.Watch = watchFor(cCtx, op)
		}
	}
	return op, nil
}

// watchFor builds the before/after comparison of a change: the named
// queries over the fleet's log groups (the probe's own deliberate
// rejections left out) and the states of the managed alarms.
func watchFor(cCtx *cli.Context, op operation) *rotate.Watch {
	th := alarms.DefaultCompareThresholds()
	th.MaxFailureIncreasePer5m = cCtx.Float64("max-failure-increase")
	return &rotate.Watch{
		Runner:        &alarms.Runner{Logs: op.aws.logs, Log: logger, Progress: waitLines(cCtx)},
		Profile:       op.engine.Profile,
		Alarms:        alarms.AlarmsByPrefix(op.aws.cw, cCtx.String("alarm-prefix")),
		Logs:          op.aws.logs,
		Before:        cCtx.Duration("compare-window"),
		IngestionWait: cCtx.Duration("ingestion-wait"),
		Thresholds:    &th,
	}
}
