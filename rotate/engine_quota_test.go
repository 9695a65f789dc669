package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// Lambda's control-plane quota (15 requests a second for the account) is
// the limit of a fleet rotation, so these tests run on a testbed that
// enforces Lambda's real quotas and keeps every update in progress for a
// while, as AWS does.

// quotaRoles names a fleet of n functions, one of them the auth handler.
func quotaRoles(n int) []string {
	roles := []string{"auth"}
	for i := 1; i < n; i++ {
		roles = append(roles, fmt.Sprintf("fn%02d", i))
	}
	return roles
}

// lambdaOps counts the code under test's Lambda requests by operation.
func lambdaOps(f *testbed.Front) map[string]int {
	out := map[string]int{}
	for _, op := range []string{"ListFunctions", "GetFunction", "GetFunctionConfiguration", "UpdateFunctionConfiguration", "ListTags", "TagResource", "UntagResource"} {
		out[op] = f.ClientCalls("lambda:" + op)
	}
	return out
}

func diffOps(after, before map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}

// TestEngineMakesOneControlPlaneRequestPerFunction: once a fleet is
// claimed, a maintenance rotation costs the control plane one request per
// function, its update, plus the pages of the listing that selects the
// fleet by prefix or tag: the reads go through GetFunction, whose quota is
// separate, and nothing is read again before its write. On a testbed with
// Lambda's real quotas the engine's own pace causes no 429.
func TestEngineMakesOneControlPlaneRequestPerFunction(t *testing.T) {
	t.Parallel()
	const n = 12
	for _, by := range []string{"prefix", "tag"} {
		t.Run(by, func(t *testing.T) {
			t.Parallel()
			tag := "valine-fleet-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
			r := newFleetRig(t, rigOptions{roles: quotaRoles(n), updateDuration: 100 * time.Millisecond,
				quotas: &testbed.LambdaQuotas{}, tags: map[string]string{"fleet": tag}})
			sel := rotate.Selector{Prefix: strings.TrimSuffix(r.w.Functions[0], "auth")}
			if by == "tag" {
				sel = rotate.Selector{Tag: "fleet=" + tag}
			}
			run := func() (map[string]int, testbed.LambdaQuotaStats, rotate.LambdaCalls) {
				t.Helper()
				ops, stats := lambdaOps(r.w.AWSFront), r.w.AWSFront.LambdaQuotaStats()
				// One run of the command: its own pace, shared by the
				// listing and the engine.
				paced := rotate.NewPacedLambda(r.lambda, rotate.LambdaPace{})
				fleet, err := rotate.ResolveFleet(t.Context(), paced, sel)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(fleet, slices.Sorted(slices.Values(r.w.Functions))) {
					t.Fatalf("the %s selects %v, want the fleet %v", by, fleet, r.w.Functions)
				}
				e := r.engine(func(e *rotate.Engine) { e.Lambda, e.Fleet = paced, fleet })
				if _, err := r.rotate(t, e, journal.ModeMaintenance, rotate.RotateOptions{}); err != nil {
					t.Fatalf("Rotate: %v", err)
				}
				after := r.w.AWSFront.LambdaQuotaStats()
				return diffOps(lambdaOps(r.w.AWSFront), ops), testbed.LambdaQuotaStats{
					Control: after.Control - stats.Control, GetFunction: after.GetFunction - stats.GetFunction,
					Throttled: after.Throttled - stats.Throttled,
				}, paced.Calls()
			}

			first, firstStats, _ := run()
			if first["TagResource"] != n {
				t.Errorf("the first rotation tagged %d functions, want all %d (claiming the fleet)", first["TagResource"], n)
			}
			if firstStats.Throttled != 0 {
				t.Errorf("the first rotation got %d 429s from Lambda's quotas; the engine must pace itself under them", firstStats.Throttled)
			}

			ops, stats, calls := run()
			pages := ops["ListFunctions"]
			if pages < 1 {
				t.Fatalf("no ListFunctions page: the %s selector did not list", by)
			}
			if want := n + pages; stats.Control != want {
				t.Errorf("%d control-plane requests, want %d: one update per function and %d listing pages (by operation: %v)", stats.Control, want, pages, ops)
			}
			if ops["UpdateFunctionConfiguration"] != n {
				t.Errorf("%d updates for %d functions", ops["UpdateFunctionConfiguration"], n)
			}
			for _, op := range []string{"GetFunctionConfiguration", "ListTags", "TagResource", "UntagResource"} {
				if ops[op] != 0 {
					t.Errorf("%d %s requests, want none (reads go through GetFunction)", ops[op], op)
				}
			}
			if stats.Throttled != 0 {
				t.Errorf("%d 429s from Lambda's quotas; the engine must pace itself under them", stats.Throttled)
			}
			if calls.Control != stats.Control || calls.GetFunction != stats.GetFunction {
				t.Errorf("the pace counted %+v, the testbed %+v", calls, stats)
			}
			r.wantEnd(t, journal.PhaseCompleted)
		})
	}
}

// TestEngineWaitsOutThrottling: a 429 TooManyRequestsException from Lambda
// pauses the run and the request is sent again, so the rotation
// completes: whether the run's own pace is set above the account's quota
// or another client of the account uses the quota up.
func TestEngineWaitsOutThrottling(t *testing.T) {
	t.Parallel()
	t.Run("a pace above the quota", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{roles: quotaRoles(4), quotas: &testbed.LambdaQuotas{ControlPerSecond: 4, GetFunctionPerSecond: 20}})
		paced := rotate.NewPacedLambda(r.lambda, rotate.LambdaPace{Control: 50, GetFunction: 200, ThrottlePause: 100 * time.Millisecond})
		e := r.engine(func(e *rotate.Engine) { e.Lambda = paced })
		before := r.w.AWSFront.LambdaQuotaStats()
		out, err := r.rotate(t, e, journal.ModeMaintenance, rotate.RotateOptions{})
		if err != nil || out.Journal.Phase != journal.PhaseCompleted {
			t.Fatalf("Rotate ended in phase %s: %v", out.Journal.Phase, err)
		}
		got := r.w.AWSFront.LambdaQuotaStats().Throttled - before.Throttled
		if got == 0 {
			t.Fatal("the testbed answered no 429: the test shows nothing")
		}
		if calls := paced.Calls(); calls.Throttled != got {
			t.Errorf("the pace saw %d 429s, the testbed sent %d: every one must reach the pace (none retried unpaced by the SDK)", calls.Throttled, got)
		}
		r.wantEnd(t, journal.PhaseCompleted)
	})
	t.Run("another client using the quota", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{roles: quotaRoles(8), updateDuration: 50 * time.Millisecond, quotas: &testbed.LambdaQuotas{}})
		paced := rotate.NewPacedLambda(r.lambda, rotate.LambdaPace{ThrottlePause: 100 * time.Millisecond})
		e := r.engine(func(e *rotate.Engine) { e.Lambda = paced })
		// The account's other deploy: 10 control-plane requests a second,
		// retrying nothing, until the rotation is over. With the engine's 14
		// that is more than the account's 15.
		other := lambda.NewFromConfig(r.w.AWS, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var refused atomic.Int64
		list := func() bool {
			_, err := other.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(1)})
			return isTooMany(err)
		}
		for !list() { // it has just used up the account's burst
		}
		wg.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if list() {
					refused.Add(1)
				}
			}
		})
		out, err := r.rotate(t, e, journal.ModeMaintenance, rotate.RotateOptions{})
		stop()
		wg.Wait()
		if err != nil || out.Journal.Phase != journal.PhaseCompleted {
			t.Fatalf("Rotate ended in phase %s: %v", out.Journal.Phase, err)
		}
		if paced.Calls().Throttled == 0 {
			t.Fatalf("the engine got no 429 while the other client used the quota (it got %d): the test shows nothing", refused.Load())
		}
		r.wantEnd(t, journal.PhaseCompleted)
	})
}

func isTooMany(err error) bool {
	var tm *lambdatypes.TooManyRequestsException
	return errors.As(err, &tm)
}

// TestEngineWaitsOutAnotherUpdateInProgress: when another writer's update
// of a function is still in progress, Lambda refuses the engine's with
// ResourceConflictException; the engine waits, reads the function again
// and writes over the other writer's change, keeping it.
func TestEngineWaitsOutAnotherUpdateInProgress(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{updateDuration: 300 * time.Millisecond})
	target := r.w.Functions[1]
	other := lambda.NewFromConfig(r.w.AWS)
	var engineWrites atomic.Int64
	var once sync.Once
	r.setFault(func(req *http.Request) *testbed.Fault {
		if !fromEngine(req) || !isConfigPut(req, target) {
			return nil
		}
		engineWrites.Add(1)
		once.Do(func() {
			// A deploy updates the function just before the engine's write
			// arrives; its update is still in progress when it does.
			cfg, err := other.GetFunction(req.Context(), &lambda.GetFunctionInput{FunctionName: aws.String(target)})
			if err != nil {
				t.Errorf("the other writer's read: %v", err)
				return
			}
			env := cfg.Configuration.Environment.Variables
			env["DEPLOYED_BY_OTHER"] = "yes"
			if _, err := other.UpdateFunctionConfiguration(req.Context(), &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String(target), Environment: &lambdatypes.Environment{Variables: env}}); err != nil {
				t.Errorf("the other writer's update: %v", err)
			}
		})
		return nil
	})
	out, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
	if err != nil || out.Journal.Phase != journal.PhaseCompleted {
		t.Fatalf("Rotate ended in phase %s: %v", out.Journal.Phase, err)
	}
	if n := engineWrites.Load(); n < 2 {
		t.Errorf("the engine wrote %s %d time(s): its first write should have been refused while the other update was in progress", target, n)
	}
	env, _ := envOf(t, r.w, target)
	if env["DEPLOYED_BY_OTHER"] != "yes" {
		t.Error("the other writer's change was lost")
	}
	r.setFault(nil)
	r.rebase(t) // the other writer's variable is now part of what must be kept
	r.wantEnd(t, journal.PhaseCompleted)
}

// TestEngineSwitchesTheIssuersFirst: an update goes out in SwitchOrder:
// the token issuers first (by default the functions named "auth"), then
// the others by name; the split window is in the outcome and the audit.
func TestEngineSwitchesTheIssuersFirst(t *testing.T) {
	t.Parallel()
	roles := []string{"admin", "auth", "media", "profiles"}
	for _, tc := range []struct {
		name  string
		first func(fleet []string) []string
		want  []string // roles, in the order of the updates
	}{
		{"default: the auth function first", nil, []string{"auth", "admin", "media", "profiles"}},
		{"as asked", func(fleet []string) []string { return []string{fleet[3], fleet[2]} }, []string{"profiles", "media", "admin", "auth"}},
		{"none first: by name", func([]string) []string { return []string{} }, []string{"admin", "auth", "media", "profiles"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{roles: roles, updateDuration: 50 * time.Millisecond})
			fleet := slices.Sorted(slices.Values(r.w.Functions))
			var mu sync.Mutex
			var order []string
			r.setFault(func(req *http.Request) *testbed.Fault {
				if fromEngine(req) && isConfigPut(req, "") {
					mu.Lock()
					order = append(order, strings.TrimPrefix(strings.Split(req.URL.Path, "/")[3], strings.TrimSuffix(fleet[0], "admin")))
					mu.Unlock()
				}
				return nil
			})
			e := r.engine(func(e *rotate.Engine) {
				e.Fleet = fleet
				e.Pace.Control = 25 // 40 ms between updates, so the order shows at the front
				if tc.first != nil {
					e.SwitchFirst = tc.first(fleet)
				}
			})
			out, err := r.rotate(t, e, journal.ModeMaintenance, rotate.RotateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(order, tc.want) {
				t.Errorf("updates in the order %v, want %v", order, tc.want)
			}
			if len(out.Splits) != 1 || out.Splits[0].Functions != len(roles) || out.Splits[0].Phase != journal.PhaseApplied {
				t.Fatalf("splits %+v, want one of the %d functions in phase applied", out.Splits, len(roles))
			}
			if d := out.Splits[0].Duration(); d <= 0 {
				t.Errorf("split of %s: the updates were 40 ms apart", d)
			}
			var audited *rotate.Split
			recs, _ := r.auditRecords(t)
			for _, rec := range recs {
				if rec.Step == "update" && rec.Split != nil {
					audited = rec.Split
				}
			}
			if audited == nil || audited.Functions != len(roles) || !audited.Last.Equal(out.Splits[0].Last) {
				t.Errorf("audited split %+v, want the outcome's %+v", audited, out.Splits[0])
			}
		})
	}
}

// TestResolvingAndInspectingReadEachFunctionOnce: a fleet chosen by name
// or tag is read (GetFunction) while it is resolved; the engine's first
// inspection (status here, the plan of a rotation) uses those answers
// instead of reading every function a second time (issue 10: ResolveFleet
// and Inspect each read every function).
func TestResolvingAndInspectingReadEachFunctionOnce(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{tags: map[string]string{"fleet": "read-once"}})
	n := len(r.w.Functions)
	for name, sel := range map[string]rotate.Selector{"names": {Names: r.w.Functions}, "tag": {Tag: "fleet=read-once"}} {
		reads := func() int { return r.w.AWSFront.ClientCalls("lambda:GetFunction") }
		before := reads()
		fleet, read, err := rotate.ResolveFleetRead(t.Context(), r.lambda, sel)
		if err != nil {
			t.Fatal(err)
		}
		resolved := reads()
		if len(read) != n {
			t.Errorf("%s: the resolution kept %d reads, want %d", name, len(read), n)
		}
		if name == "names" && resolved-before != n {
			t.Errorf("%s: resolving %d functions made %d reads", name, n, resolved-before)
		}
		e := r.engine(func(e *rotate.Engine) { e.Fleet, e.Read = fleet, read })
		st, err := e.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Fleet.Functions) != n || !st.Drift.Consistent || st.Fleet.Functions[0].Primary.IsEmpty() {
			t.Fatalf("%s: status from the resolution's reads: %+v", name, st.Fleet)
		}
		if again := reads() - resolved; again != 0 {
			t.Errorf("%s: the first inspection read %d functions again, want none", name, again)
		}
		inspected := reads()
		if _, err := e.Status(t.Context()); err != nil {
			t.Fatal(err)
		}
		if again := reads() - inspected; again != n {
			t.Errorf("%s: the second inspection made %d reads, want %d (only the first uses the resolution's)", name, again, n)
		}
	}
}
