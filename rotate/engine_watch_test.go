package rotate_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// watchFor gives the engine a Watch over the rig's log groups, with the
// probe's own deliberate rejections left out of the queries.
func (r *fleetRig) watchFor() func(*rotate.Engine) {
	logs := cloudwatchlogs.NewFromConfig(r.w.AWS)
	var groups []string
	for _, fn := range r.w.Functions {
		groups = append(groups, "/aws/lambda/"+fn)
	}
	return func(e *rotate.Engine) {
		e.Watch = &rotate.Watch{
			Runner:        &alarms.Runner{Logs: logs, PollInitial: 5 * time.Millisecond, PollMax: 20 * time.Millisecond, Deadline: 10 * time.Second},
			Profile:       r.w.Profile,
			Groups:        groups,
			Logs:          logs,
			Before:        10 * time.Minute,
			IngestionWait: time.Second,
		}
	}
}

// oldTokensKeepArriving is a verifier that, after each verification, lets
// a client that never re-logged in send requests with a token signed with
// the rotated-out secret (as an old app version or a forgotten cron would).
type oldTokensKeepArriving struct {
	rotate.ProbeVerifier
	r *fleetRig
	n int
}

func (v oldTokensKeepArriving) Verify(ctx context.Context, ver rotate.Verification) probes.Report {
	rep := v.ProbeVerifier.Verify(ctx, ver)
	old := ver.Old
	c := v.r.client()
	s, err := c.Login(ctx, v.r.w.ProbeEmail, secret.NewSecret(v.r.w.ProbePassword))
	if err == nil {
		if tok, err := probes.Resign(s.Access, old); err == nil {
			for range v.n {
				_, _ = c.Me(ctx, tok)
			}
		}
	}
	return rep
}

func TestEngineComparesLogsBeforeAndAfter(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	watch := r.watchFor()
	out, err := r.rotate(t, r.engine(watch), journal.ModeZeroDowntime, rotate.RotateOptions{})
	if err != nil || out.Comparison == nil {
		t.Fatalf("zero-downtime with a watch: %v, comparison %v", err, out.Comparison)
	}
	if !out.Comparison.OK || len(out.Comparison.Figures) == 0 {
		t.Errorf("healthy rotation: %s", out.Comparison.Summary())
	}
	out, err = r.finalize(t, r.engine(watch), rotate.FinalizeOptions{Force: true})
	if err != nil || out.Comparison == nil || !out.Comparison.OK {
		t.Fatalf("healthy finalize: %v %+v", err, out.Comparison)
	}
	raw, err := os.ReadFile(r.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `"step":"compare"`); n != 2 {
		t.Errorf("%d compare records in the audit, want 2", n)
	}
}

func TestEngineFindsOldTokensArrivingAfterFinalize(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	watch := r.watchFor()
	r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace)
	e := r.engine(watch, func(e *rotate.Engine) {
		e.Verifier = oldTokensKeepArriving{ProbeVerifier: r.verifier(), r: r, n: 8}
	})
	out, err := r.finalize(t, e, rotate.FinalizeOptions{Force: true})
	if !errors.Is(err, rotate.ErrFindings) {
		t.Fatalf("finalize with old tokens still arriving: got %v, want ErrFindings", err)
	}
	if out.Journal.Phase != journal.PhaseCompleted {
		t.Errorf("a finding must not undo a verified finalize: phase %s", out.Journal.Phase)
	}
	if out.Comparison == nil || out.Comparison.OK || !strings.Contains(strings.Join(out.Comparison.Findings, "\n"), "failed JWT verifications rose") {
		t.Errorf("comparison: %+v", out.Comparison)
	}
	r.wantNoLeak(t, "the comparison", out.Comparison.Summary())
}
