package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"

	"github.com/valine/valine-check/probes/report"
)

// newHandler returns the function's handler for a scheduled (EventBridge)
// event: one probe run, then its EMF lines and one compact JSON report
// line (docs/report-schema.md) on stdout, which Lambda sends to the log
// group, where CloudWatch extracts the metrics. It returns nil whatever
// the API did: a failing API is a metric, not a failed invocation (which
// Lambda would retry, running the probe twice).
func newHandler(d deps) func(context.Context, events.CloudWatchEvent) error {
	return func(ctx context.Context, ev events.CloudWatchEvent) error {
		if deadline, ok := ctx.Deadline(); ok && d.margin > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline.Add(-d.margin))
			defer cancel()
		}
		rep := d.setup.Run(ctx)
		s, err := report.WriteEMF(d.stdout, rep, d.emf)
		if err != nil {
			d.log.Error("writing the metrics", "err", err)
		}
		line, err := json.Marshal(rep)
		if err != nil {
			d.log.Error("encoding the report", "err", err)
			return nil
		}
		if _, err := d.stdout.Write(append(line, '\n')); err != nil {
			d.log.Error("writing the report", "err", err)
		}
		d.log.Info("probe run", "event", ev.ID, "status", rep.Status(), "successPercent", s.Percent,
			"counted", s.Counted, "durationMs", rep.Duration.Milliseconds())
		return nil
	}
}
