package rotate_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/rotate"
)

// racingFleetLambda lets another writer change a function between the
// engine's read and its write: just before the engine's on-th
// UpdateFunctionConfiguration reaches Lambda, race edits that function.
type racingFleetLambda struct {
	*lambda.Client
	on    int64
	race  func(fn string)
	calls atomic.Int64

	mu    sync.Mutex
	raced string // the function raced on
}

func (l *racingFleetLambda) UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	if l.calls.Add(1) == l.on {
		fn := aws.ToString(in.FunctionName)
		l.race(fn)
		l.mu.Lock()
		l.raced = fn
		l.mu.Unlock()
	}
	return l.Client.UpdateFunctionConfiguration(ctx, in, optFns...)
}

func (l *racingFleetLambda) racedOn() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raced
}

// TestEngineKeepsEveryOtherVariableWhileAnotherWriterRaces runs each
// operation with another writer adding a variable to a function between
// the engine's read of it and its write (on the call chosen by on): the
// stale write is refused (RevisionId), the engine reads again, and both
// the rotation and the other writer's variable end up on the function,
// every other variable untouched byte for byte.
func TestEngineKeepsEveryOtherVariableWhileAnotherWriterRaces(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, r *fleetRig)
		// on is the engine's UpdateFunctionConfiguration call raced on.
		on  int64
		run func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error)
		// want returns the fleet's expected primary and secondary.
		want func(t *testing.T, r *fleetRig, j journal.Journal) (primary, secondary secret.Secret)
		end  journal.Phase
	}{
		{
			name: "zero-downtime, racing the probing write", on: 2,
			run:  rotateIn(journal.ModeZeroDowntime),
			want: grace, end: journal.PhaseGrace,
		},
		{
			name: "zero-downtime, racing the staging write", on: 5,
			run:  rotateIn(journal.ModeZeroDowntime),
			want: grace, end: journal.PhaseGrace,
		},
		{
			name: "finalize", on: 1,
			setup: func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace) },
			run: func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) {
				return r.finalize(t, e, rotate.FinalizeOptions{Force: true})
			},
			want: completed, end: journal.PhaseCompleted,
		},
		{
			name: "maintenance", on: 3,
			run:  rotateIn(journal.ModeMaintenance),
			want: completed, end: journal.PhaseCompleted,
		},
		{
			name: "emergency", on: 1,
			run:  rotateIn(journal.ModeEmergency),
			want: completed, end: journal.PhaseCompleted,
		},
		{
			name: "rollback in grace", on: 2,
			setup: func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace) },
			run: func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) {
				return r.rollback(t, e)
			},
			want: rolledBack, end: journal.PhaseRolledBack,
		},
		{
			name: "rollback of a maintenance rotation", on: 3,
			setup: func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted) },
			run: func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) {
				return r.rollback(t, e)
			},
			want: rolledBack, end: journal.PhaseRolledBack,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{})
			if tc.setup != nil {
				tc.setup(t, r)
			}
			const otherVar, otherValue = "OTHER_WRITER", "deploy #42; keep=me\n"
			racer := &racingFleetLambda{Client: r.lambda, on: tc.on, race: func(fn string) {
				if err := r.w.EditEnv(t.Context(), fn, func(env map[string]string) { env[otherVar] = otherValue }); err != nil {
					t.Errorf("the other writer: %v", err)
				}
			}}
			out, err := tc.run(t, r, r.engine(func(e *rotate.Engine) { e.Lambda = racer }))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if out.Journal.Phase != tc.end {
				t.Errorf("ended in phase %s, want %s", out.Journal.Phase, tc.end)
			}
			fn := racer.racedOn()
			if fn == "" {
				t.Fatalf("the engine made %d UpdateFunctionConfiguration calls; the race on call %d never happened", racer.calls.Load(), tc.on)
			}
			r.wantOthersKept(t, map[string]map[string]string{fn: {otherVar: otherValue}})
			primary, secondary := tc.want(t, r, out.Journal)
			r.wantFleet(t, primary, secondary)
		})
	}
}

func rotateIn(mode journal.Mode) func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) {
	return func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) {
		return r.rotate(t, e, mode, rotate.RotateOptions{})
	}
}

// The fleet's state at the end of each kind of operation, from the backup
// (which the journal vouches for).
func grace(t *testing.T, r *fleetRig, j journal.Journal) (secret.Secret, secret.Secret) {
	old, next := r.journalSecrets(t, j)
	return next, old
}

func completed(t *testing.T, r *fleetRig, j journal.Journal) (secret.Secret, secret.Secret) {
	_, next := r.journalSecrets(t, j)
	return next, secret.Secret{}
}

func rolledBack(t *testing.T, r *fleetRig, j journal.Journal) (secret.Secret, secret.Secret) {
	old, _ := r.journalSecrets(t, j)
	return old, secret.Secret{}
}
