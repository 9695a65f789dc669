package rotate_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// TestEngineRetriesTransientAWSFaults injects throttling and 5xx answers
// that clear after a few calls: every operation retries and completes.
func TestEngineRetriesTransientAWSFaults(t *testing.T) {
	t.Parallel()
	engineOp := func(op string) func(*http.Request) bool {
		return func(r *http.Request) bool {
			switch op {
			case "UpdateFunctionConfiguration":
				return fromEngine(r) && isConfigPut(r, "")
			case "GetFunction":
				return fromEngine(r) && r.Method == http.MethodGet && strings.Count(strings.TrimPrefix(r.URL.Path, "/2015-03-31/functions/"), "/") == 0
			default:
				return fromEngine(r) && isSecretsOp(r, op)
			}
		}
	}
	throttled := testbed.Fault{Status: http.StatusTooManyRequests, ErrorType: "TooManyRequestsException", Message: "Rate exceeded"}
	cases := []struct {
		name  string
		mode  journal.Mode
		n     int64
		match func(*http.Request) bool
		fault testbed.Fault
	}{
		{"429 on the first updates, maintenance", journal.ModeMaintenance, 5, engineOp("UpdateFunctionConfiguration"), throttled},
		{"429 on the first updates, zero-downtime", journal.ModeZeroDowntime, 7, engineOp("UpdateFunctionConfiguration"), throttled},
		{"429 on the first reads", journal.ModeZeroDowntime, 6, engineOp("GetFunction"), throttled},
		{"409 update in progress", journal.ModeMaintenance, 2, engineOp("UpdateFunctionConfiguration"),
			testbed.Fault{Status: http.StatusConflict, ErrorType: "ResourceConflictException", Message: "An update is in progress"}},
		{"500 on the first updates", journal.ModeEmergency, 4, engineOp("UpdateFunctionConfiguration"),
			testbed.Fault{Status: http.StatusInternalServerError, ErrorType: "ServiceException", Message: "internal"}},
		{"5xx on PutSecretValue", journal.ModeMaintenance, 3, engineOp("PutSecretValue"),
			testbed.Fault{Status: http.StatusInternalServerError, ErrorType: "InternalServiceError", Message: "internal"}},
		{"5xx on TagResource (the journal)", journal.ModeZeroDowntime, 3, engineOp("TagResource"),
			testbed.Fault{Status: http.StatusServiceUnavailable, ErrorType: "InternalServiceError", Message: "unavailable"}},
		{"5xx on GetSecretValue", journal.ModeMaintenance, 3, engineOp("GetSecretValue"),
			testbed.Fault{Status: http.StatusInternalServerError, ErrorType: "InternalServiceError", Message: "internal"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			fault, hits := countingFault(tc.n, tc.match, tc.fault)
			r.setFault(fault)
			end := journal.PhaseCompleted
			if tc.mode == journal.ModeZeroDowntime {
				end = journal.PhaseGrace
			}
			out, err := r.rotate(t, r.engine(), tc.mode, rotate.RotateOptions{})
			if err != nil {
				t.Fatalf("Rotate under transient faults: %v", err)
			}
			if out.Journal.Phase != end {
				t.Errorf("ended in phase %s, want %s", out.Journal.Phase, end)
			}
			if got := hits.Load(); got < tc.n {
				t.Fatalf("only %d of the %d faults were served: the test proves nothing", got, tc.n)
			}
			r.setFault(nil)
			r.wantEnd(t, end)
		})
	}
}

// TestEngineNeverSucceedsWithADriftedFleet makes one function's
// configuration updates fail for good (500 after every retry): the
// operation must return an error that says what it did (rolled back, or
// left the journal in its phase for a re-run), must never return nil, and
// must leave the fleet either consistent or shown as unfinished by status.
// Once the fault clears, running the same operation again converges.
func TestEngineNeverSucceedsWithADriftedFleet(t *testing.T) {
	t.Parallel()
	inGrace := func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace) }
	completedRotation := func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted) }
	cases := []struct {
		name  string
		setup func(t *testing.T, r *fleetRig)
		run   func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error)
		// phase is where the failed operation leaves the journal; says is
		// what its error must say.
		phase journal.Phase
		says  string
		// end is where the re-run ends.
		end journal.Phase
	}{
		{name: "zero-downtime", run: rotateIn(journal.ModeZeroDowntime), phase: journal.PhaseRolledBack, says: "rolled back", end: journal.PhaseGrace},
		{name: "maintenance", run: rotateIn(journal.ModeMaintenance), phase: journal.PhaseRolledBack, says: "rolled back", end: journal.PhaseCompleted},
		// An emergency never restores the compromised secret by itself:
		// it keeps its phase, and the re-run finishes it.
		{name: "emergency", run: rotateIn(journal.ModeEmergency), phase: journal.PhaseApplied, says: "never restores the compromised secret", end: journal.PhaseCompleted},
		{
			name: "finalize", setup: inGrace,
			run: func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) {
				return r.finalize(t, e, rotate.FinalizeOptions{Force: true})
			},
			phase: journal.PhaseFinalizing, says: "re-run", end: journal.PhaseCompleted,
		},
		{
			name: "rollback", setup: completedRotation,
			run:   func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) { return r.rollback(t, e) },
			phase: journal.PhaseRollingBack, says: "re-run", end: journal.PhaseRolledBack,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			if tc.setup != nil {
				tc.setup(t, r)
			}
			broken := r.w.Functions[1]
			fault, hits := countingFault(-1, func(req *http.Request) bool { return fromEngine(req) && isConfigPut(req, broken) },
				testbed.Fault{Status: http.StatusInternalServerError, ErrorType: "ServiceException", Message: "internal"})
			r.setFault(fault)
			out, err := tc.run(t, r, r.engine())
			if err == nil {
				t.Fatalf("%s succeeded although %s could not be updated (phase %s)", tc.name, broken, out.Journal.Phase)
			}
			if hits.Load() == 0 {
				t.Fatal("the fault never fired")
			}
			var svc *lambdatypes.ServiceException
			if !errors.As(err, &svc) {
				t.Errorf("the error does not carry Lambda's ServiceException: %v", err)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), broken) {
				t.Errorf("error %q does not say %q and name %s", err, tc.says, broken)
			}
			st := r.status(t)
			if st.Journal.Phase != tc.phase || out.Journal.Phase != tc.phase {
				t.Errorf("journal in phase %s (outcome says %s), want %s", st.Journal.Phase, out.Journal.Phase, tc.phase)
			}
			if !st.Drift.Consistent && !st.Unfinished() {
				t.Errorf("the fleet drifts (%s) and status shows nothing unfinished", st.Drift)
			}
			r.wantNoShortSecret(t)
			r.wantOnlyBackedUpSecrets(t)
			r.wantOthersKept(t, nil)

			r.setFault(nil)
			out, err = tc.run(t, r, r.engine())
			if err != nil {
				t.Fatalf("re-run once the fault cleared: %v", err)
			}
			if out.Journal.Phase != tc.end {
				t.Errorf("re-run ended in phase %s, want %s", out.Journal.Phase, tc.end)
			}
			r.wantEnd(t, tc.end)
		})
	}
}

// TestEngineStopsBeforeAnyFunctionWhenTheBackupFails: when the backup or
// the journal cannot be written, no function is touched.
func TestEngineStopsBeforeAnyFunctionWhenTheBackupFails(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"CreateSecret", "PutSecretValue", "TagResource", "GetSecretValue", "DescribeSecret"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			if op == "PutSecretValue" {
				// Create the backup first, so Store has to put.
				r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
			}
			before, envs := r.updates(), r.envs(t)
			fault, hits := countingFault(-1, func(req *http.Request) bool { return fromEngine(req) && isSecretsOp(req, op) },
				testbed.Fault{Status: http.StatusInternalServerError, ErrorType: "InternalServiceError", Message: "internal"})
			r.setFault(fault)
			_, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
			if err == nil {
				t.Fatalf("Rotate succeeded with %s failing", op)
			}
			if hits.Load() == 0 {
				t.Fatalf("%s was never called", op)
			}
			if n := r.updates() - before; n != 0 {
				t.Errorf("%d UpdateFunctionConfiguration calls with the backup failing", n)
			}
			r.wantEnvsEqual(t, envs)
		})
	}
}
