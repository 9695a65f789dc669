package rotate_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// benchAWSLatency is added to every AWS request the engine and its verifier
// send: about what one Lambda or Secrets Manager call takes from a laptop.
const benchAWSLatency = 100 * time.Millisecond

// benchOps are the operations whose calls per rotation the benchmark
// reports, by metric: the fleet's reads and writes, the backup and journal
// (every Secrets Manager call of rotate.SecretsAPI) and the verifier's log
// check.
var benchOps = []struct {
	metric string
	ops    []string
}{
	{"update", []string{"lambda:UpdateFunctionConfiguration"}},
	{"getconfig", []string{"lambda:GetFunctionConfiguration"}},
	{"getfunction", []string{"lambda:GetFunction"}},
	{"secrets", []string{"secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue",
		"secretsmanager:DescribeSecret", "secretsmanager:TagResource", "secretsmanager:UntagResource"}},
	{"logs", []string{"logs:FilterLogEvents"}},
}

// BenchmarkRotate measures a maintenance rotation through the engine, at
// its default concurrency, of fleets of 1, 10 and 50 functions, with
// benchAWSLatency added to every AWS request the engine and its verifier
// send (the testbed API's own secret reads and log writes are spared: they
// are not part of a rotation). Each iteration is a whole rotation: plan
// (inspect), backup, journal, the fleet's updates and read-back, and the
// strict verification with the probes. It reports the median wall time of
// a rotation (wall-ms) and the AWS calls per rotation, in total and by
// operation. Compare the fleets' medians across one run:
//
//	go test -run '^$' -bench Rotate -benchtime 3x -count 3 ./rotate
func BenchmarkRotate(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("fleet=%d", n), func(b *testing.B) { benchmarkRotate(b, n) })
	}
}

func benchmarkRotate(b *testing.B, fleet int) {
	ctx := context.Background()
	_, fns := fleetNames("bench", benchRoles(fleet)...)
	w, err := testbed.Start(ctx, testbed.Options{Functions: fns, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	var calls atomic.Int64
	w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
		if testbed.FromTestbedAPI(r) {
			return nil
		}
		calls.Add(1)
		return &testbed.Fault{Delay: benchAWSLatency}
	})
	defer w.AWSFront.SetFault(nil) // before Close, which deletes the fleet one call at a time

	e := &rotate.Engine{
		Lambda:      lambda.NewFromConfig(w.AWS),
		Backup:      rotate.Backup{API: secretsmanager.NewFromConfig(w.AWS), Name: "valine-check/" + w.Function},
		Profile:     w.Profile,
		Fleet:       w.Functions,
		Concurrency: 0, // the default, 10, is what the target is about
		Verifier: rotate.ProbeVerifier{
			Target: probes.Target{API: &probes.Client{BaseURL: w.APIURL, Profile: w.Profile},
				Function: w.Function, Logs: cloudwatchlogs.NewFromConfig(w.AWS)},
			Config: probes.Config{ProbeEmail: w.ProbeEmail, ProbePassword: secret.NewSecret(w.ProbePassword)},
			Runner: probes.Runner{Convergence: 5 * time.Second, RetryInterval: 20 * time.Millisecond},
		},
	}
	rotateOnce := func() {
		out, err := e.Rotate(ctx, journal.ModeMaintenance, rotate.RotateOptions{})
		if err != nil || out.Journal.Phase != journal.PhaseCompleted {
			b.Fatalf("rotation of %d functions ended in phase %s: %v", fleet, out.Journal.Phase, err)
		}
	}
	// The fleet's first rotation also creates the backup secret; every
	// later one finds it, so the warm-up keeps that one-off out.
	rotateOnce()

	var walls []time.Duration
	opsBefore := benchOpCounts(w.AWSFront)
	callsBefore := calls.Load()
	for b.Loop() {
		start := time.Now()
		rotateOnce()
		walls = append(walls, time.Since(start))
	}
	rotations := float64(len(walls))
	opsAfter := benchOpCounts(w.AWSFront)
	b.ReportMetric(float64(benchMedian(walls).Milliseconds()), "wall-ms")
	b.ReportMetric(float64(calls.Load()-callsBefore)/rotations, "calls/rotation")
	for _, op := range benchOps {
		b.ReportMetric(float64(opsAfter[op.metric]-opsBefore[op.metric])/rotations, op.metric+"/rotation")
	}
}

// benchOpCounts returns the calls the code under test sent so far, by
// benchOps metric.
func benchOpCounts(f *testbed.Front) map[string]int {
	counts := map[string]int{}
	for _, m := range benchOps {
		for _, op := range m.ops {
			counts[m.metric] += f.ClientCalls(op)
		}
	}
	return counts
}

// benchRoles names n functions fn00, fn01, ….
func benchRoles(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("fn%02d", i)
	}
	return out
}

func benchMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
