package rotate_test

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/rotate"
)

// crashScenario is an operation that a crash may interrupt and a re-run
// of the same operation must finish.
type crashScenario struct {
	name  string
	setup func(t *testing.T, r *fleetRig) // brings the fleet to where the operation starts
	run   func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error)
	end   journal.Phase // where an uninterrupted run ends
	// rerunAtEnd is the error a re-run gives once the operation is over
	// (nil: a re-run would start something new, so the test does not re-run).
	rerunAtEnd error
}

func crashScenarios() []crashScenario {
	inGrace := func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeZeroDowntime, journal.PhaseGrace) }
	completedRotation := func(t *testing.T, r *fleetRig) { r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted) }
	finalize := func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) {
		return r.finalize(t, e, rotate.FinalizeOptions{Force: true})
	}
	rollback := func(t *testing.T, r *fleetRig, e *rotate.Engine) (rotate.Outcome, error) { return r.rollback(t, e) }
	return []crashScenario{
		{name: "zero-downtime", run: rotateIn(journal.ModeZeroDowntime), end: journal.PhaseGrace},
		{name: "finalize", setup: inGrace, run: finalize, end: journal.PhaseCompleted, rerunAtEnd: rotate.ErrNoRotation},
		{name: "maintenance", run: rotateIn(journal.ModeMaintenance), end: journal.PhaseCompleted},
		{name: "rollback of a maintenance rotation", setup: completedRotation, run: rollback, end: journal.PhaseRolledBack, rerunAtEnd: rotate.ErrNothingToRollBack},
		{name: "rollback in grace", setup: inGrace, run: rollback, end: journal.PhaseRolledBack, rerunAtEnd: rotate.ErrNothingToRollBack},
	}
}

// stepsOf runs the scenario uninterrupted and returns the steps the engine
// reports to StopAfter, checked against the audit records it wrote.
func stepsOf(t *testing.T, sc crashScenario, o rigOptions) []string {
	t.Helper()
	r := newFleetRig(t, o)
	if sc.setup != nil {
		sc.setup(t, r)
	}
	skip, _ := r.auditRecords(t)
	var mu sync.Mutex
	var steps []string
	e := r.engine(func(e *rotate.Engine) {
		e.StopAfter = func(step string) error {
			mu.Lock()
			defer mu.Unlock()
			steps = append(steps, step)
			return nil
		}
	})
	out, err := sc.run(t, r, e)
	if err != nil || out.Journal.Phase != sc.end {
		t.Fatalf("uninterrupted %s: phase %s, %v", sc.name, out.Journal.Phase, err)
	}
	recs, _ := r.auditRecords(t)
	var audited []string
	for _, rec := range recs[len(skip):] {
		if _, err := journal.ParsePhase(rec.Step); err == nil {
			audited = append(audited, rec.Step) // the phase steps (not "baseline" or "update")
		}
	}
	if !slices.Equal(steps, audited) {
		t.Errorf("StopAfter saw steps %q, the audit records %q", steps, audited)
	}
	if len(steps) == 0 || steps[len(steps)-1] != string(sc.end) {
		t.Fatalf("steps %q do not end in %s", steps, sc.end)
	}
	return steps
}

// TestEngineResumesAfterAStopAtEachStep stops each operation after each of
// its steps, as a crash would, then checks what a fresh run sees (status
// shows the interrupted rotation; no function holds an empty or short
// secret, or one the backup does not hold) and that running the same
// operation again finishes it, the fleet converged where an uninterrupted
// run ends.
func TestEngineResumesAfterAStopAtEachStep(t *testing.T) {
	t.Parallel()
	stopAtEachStep(t, crashScenarios(), rigOptions{})
}

// stopAtEachStep is TestEngineResumesAfterAStopAtEachStep's body for
// scenarios on rigs built with o (a source of truth, say).
func stopAtEachStep(t *testing.T, scenarios []crashScenario, o rigOptions) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range stepsOf(t, sc, o) {
				t.Run("stop after "+step, func(t *testing.T) {
					t.Parallel()
					r := newFleetRig(t, o)
					if sc.setup != nil {
						sc.setup(t, r)
					}
					_, err := sc.run(t, r, r.engine(func(e *rotate.Engine) { e.StopAfter = stopAt(step) }))
					if !errors.Is(err, errStop) {
						t.Fatalf("want the injected stop, got %v", err)
					}

					st := r.status(t)
					if !st.HasJournal || string(st.Journal.Phase) != step {
						t.Fatalf("status after the stop: journal %v, phase %s; want phase %s", st.HasJournal, st.Journal.Phase, step)
					}
					atEnd := st.Journal.Phase == sc.end
					switch {
					case st.Journal.Phase == journal.PhaseGrace:
						if st.Unfinished() || st.GraceRemaining <= 0 {
							t.Errorf("status in grace: unfinished %v, remaining %s", st.Unfinished(), st.GraceRemaining)
						}
					case st.Journal.Phase.Terminal():
						if st.Unfinished() {
							t.Error("status calls a terminal phase unfinished")
						}
					default:
						if !st.Unfinished() {
							t.Errorf("status does not show the rotation stopped in %s as unfinished", step)
						}
					}
					r.wantNoShortSecret(t)
					r.wantOnlyBackedUpSecrets(t)

					if !atEnd || sc.rerunAtEnd != nil {
						out, err := sc.run(t, r, r.engine())
						switch {
						case atEnd && !errors.Is(err, sc.rerunAtEnd):
							t.Errorf("re-run after the last step: %v, want %v", err, sc.rerunAtEnd)
						case !atEnd && err != nil:
							t.Fatalf("re-run: %v", err)
						case !atEnd && out.Journal.Phase != sc.end:
							t.Errorf("re-run ended in phase %s, want %s", out.Journal.Phase, sc.end)
						}
					}
					r.wantEnd(t, sc.end)
				})
			}
		})
	}
}

// TestEngineResumesAfterACrashAfterAnyWrite kills the engine (every later
// AWS call of it fails, as if the process died) right after its k-th
// successful write to AWS, for every k: a function's configuration, the
// backup's value or a journal tag. Functions are updated one at a time, so
// a kill in the middle of a phase leaves the fleet half-changed. A fresh
// run must see the interrupted rotation whenever a function changed, no
// function may hold a secret the backup does not, and running the same
// operation again must converge.
func TestEngineResumesAfterACrashAfterAnyWrite(t *testing.T) {
	t.Parallel()
	killAfterEachWrite(t, crashScenarios(), rigOptions{})
}

// killAfterEachWrite is TestEngineResumesAfterACrashAfterAnyWrite's body
// for scenarios on rigs built with o (a source of truth, whose writes
// count too).
func killAfterEachWrite(t *testing.T, scenarios []crashScenario, o rigOptions) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			// Count the writes of an uninterrupted run.
			ref := newFleetRig(t, o)
			if sc.setup != nil {
				sc.setup(t, ref)
			}
			count := &killSwitch{next: http.DefaultTransport}
			if _, err := sc.run(t, ref, ref.killableEngine(count)); err != nil {
				t.Fatalf("uninterrupted: %v", err)
			}
			writes := int(count.writes.Load())
			if writes == 0 {
				t.Fatal("the operation made no write")
			}
			for k := 1; k <= writes; k++ {
				t.Run(fmt.Sprintf("killed after write %d of %d", k, writes), func(t *testing.T) {
					t.Parallel()
					r := newFleetRig(t, o)
					if sc.setup != nil {
						sc.setup(t, r)
					}
					before := r.envs(t)
					kill := &killSwitch{after: int64(k), next: http.DefaultTransport}
					out, err := sc.run(t, r, r.killableEngine(kill))
					if !kill.dead.Load() {
						t.Fatalf("the run ended before write %d", k)
					}
					if err == nil {
						// Only a kill after the very last write can look like success.
						if k != writes || out.Journal.Phase != sc.end {
							t.Fatalf("the killed run reported success in phase %s", out.Journal.Phase)
						}
					}

					st := r.status(t)
					changed := false
					for fn, env := range r.envs(t) {
						changed = changed || !maps.Equal(env, before[fn])
					}
					atEnd := st.HasJournal && st.Journal.Phase == sc.end
					if changed && !atEnd && !st.Unfinished() {
						t.Errorf("after the crash functions changed but status shows nothing unfinished (journal %v, phase %s; %s)", st.HasJournal, st.Journal.Phase, st.Drift)
					}
					r.wantNoShortSecret(t)
					if changed {
						r.wantOnlyBackedUpSecrets(t)
					}

					if !atEnd || sc.rerunAtEnd != nil {
						out, err := sc.run(t, r, r.engine())
						switch {
						case atEnd && !errors.Is(err, sc.rerunAtEnd):
							t.Errorf("re-run after the last step: %v, want %v", err, sc.rerunAtEnd)
						case !atEnd && err != nil:
							t.Fatalf("re-run: %v", err)
						case !atEnd && out.Journal.Phase != sc.end:
							t.Errorf("re-run ended in phase %s, want %s", out.Journal.Phase, sc.end)
						}
					}
					r.wantEnd(t, sc.end)
				})
			}
		})
	}
}

// killableEngine is an engine whose AWS calls go through kill, updating
// one function at a time. No fault is injected, so its clients make one
// attempt per call: retrying a dead process's calls only wastes time.
func (r *fleetRig) killableEngine(kill *killSwitch) *rotate.Engine {
	cfg := r.w.AWS.Copy()
	cfg.HTTPClient = &http.Client{Transport: kill}
	cfg.RetryMaxAttempts = 1
	return r.engine(func(e *rotate.Engine) {
		e.Concurrency = 1
		e.Lambda = lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.AppID = engineAppID })
		e.Backup.API = secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.AppID = engineAppID })
		e.Stores = rotate.StoreClients{
			SSM:     ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.AppID = engineAppID }),
			Secrets: secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.AppID = engineAppID }),
		}
	})
}

// killSwitch is a transport that counts successful writes to AWS (Lambda
// configuration updates, Secrets Manager values and tags) and, when after
// is set, dies after the after-th: every request from then on fails before
// reaching AWS.
type killSwitch struct {
	after  int64
	next   http.RoundTripper
	writes atomic.Int64
	dead   atomic.Bool
}

var errKilled = errors.New("killed")

func (k *killSwitch) RoundTrip(req *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	resp, err := k.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	write := isConfigPut(req, "")
	for _, op := range []string{"CreateSecret", "PutSecretValue", "TagResource", "UntagResource", "UpdateSecretVersionStage"} {
		write = write || isSecretsOp(req, op)
	}
	for _, op := range []string{"PutParameter", "DeleteParameter", "LabelParameterVersion"} {
		write = write || req.Header.Get("X-Amz-Target") == "AmazonSSM."+op
	}
	if write && k.writes.Add(1) == k.after {
		k.dead.Store(true)
	}
	return resp, err
}

// wantOnlyBackedUpSecrets checks that every secret on every function is
// one the backup holds: no function is on a secret that exists nowhere else.
func (r *fleetRig) wantOnlyBackedUpSecrets(t *testing.T) {
	t.Helper()
	current, previous := r.backupSecrets(t)
	p := r.w.Profile
	for fn, env := range r.envs(t) {
		for _, v := range []string{p.SecretVar, p.SecondaryVar} {
			s, ok := env[v]
			if !ok || v == "" {
				continue
			}
			if s != reveal(current) && s != reveal(previous) {
				t.Errorf("%s: %s is %s, which the backup (current %s, previous %s) does not hold", fn, v, secret.Fingerprint(s), current, previous)
			}
		}
	}
	if r.source.IsStore() {
		primary, secondary := r.storeHolds(t)
		for _, s := range []secret.Secret{primary, secondary} {
			if !s.IsEmpty() && !s.Equal(current) && !s.Equal(previous) {
				t.Errorf("%s holds %s, which the backup (current %s, previous %s) does not hold", r.source, s, current, previous)
			}
		}
	}
}

// wantEnd checks the state an operation ending in phase end leaves: a
// consistent fleet on the secrets that phase means, taken from the backup
// the journal vouches for; the API honouring exactly those; every other
// variable as it was; and status showing nothing unfinished.
func (r *fleetRig) wantEnd(t *testing.T, end journal.Phase) {
	t.Helper()
	st := r.status(t)
	if !st.HasJournal || st.Journal.Phase != end {
		t.Fatalf("journal in phase %s, want %s", st.Journal.Phase, end)
	}
	if !st.Drift.Consistent || st.Unfinished() {
		t.Errorf("status: %s, unfinished %v", st.Drift, st.Unfinished())
	}
	old, next := r.journalSecrets(t, st.Journal)
	switch end {
	case journal.PhaseGrace:
		r.wantStore(t, next, old)
		r.wantEnvFleet(t, next, old)
		r.wantTokens(t, map[string]secret.Secret{"old": old, "new": next}, nil)
	case journal.PhaseCompleted:
		r.wantStore(t, next, secret.Secret{})
		r.wantEnvFleet(t, next, secret.Secret{})
		r.wantTokens(t, map[string]secret.Secret{"new": next}, map[string]secret.Secret{"old": old})
	case journal.PhaseRolledBack, journal.PhaseAbandoned:
		r.wantStore(t, old, secret.Secret{})
		r.wantEnvFleet(t, old, secret.Secret{})
		r.wantTokens(t, map[string]secret.Secret{"old": old}, map[string]secret.Secret{"new": next})
	default:
		t.Fatalf("wantEnd: %s is not where an operation ends", end)
	}
	r.wantOthersKept(t, nil)
}

// TestEngineUndoesAStoppedRotation: instead of finishing a rotation that
// stopped after any of its steps, the operator may roll it back; that
// converges too, on the old secret.
func TestEngineUndoesAStoppedRotation(t *testing.T) {
	t.Parallel()
	for _, sc := range crashScenarios() {
		if sc.rerunAtEnd == rotate.ErrNothingToRollBack {
			continue // a rollback is not undone by a rollback
		}
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range stepsOf(t, sc, rigOptions{}) {
				t.Run("stop after "+step, func(t *testing.T) {
					t.Parallel()
					r := newFleetRig(t, rigOptions{})
					if sc.setup != nil {
						sc.setup(t, r)
					}
					if _, err := sc.run(t, r, r.engine(func(e *rotate.Engine) { e.StopAfter = stopAt(step) })); !errors.Is(err, errStop) {
						t.Fatalf("want the injected stop, got %v", err)
					}
					out, err := r.rollback(t, r.engine())
					if err != nil {
						t.Fatalf("Rollback: %v", err)
					}
					if out.Journal.Phase != journal.PhaseRolledBack {
						t.Errorf("Rollback ended in phase %s", out.Journal.Phase)
					}
					r.wantEnd(t, journal.PhaseRolledBack)
				})
			}
		})
	}
}

// wantEnvFleet is wantFleet where the functions carry the secret in their
// environment; functions that read the store at run time are checked
// through the store and the API instead.
func (r *fleetRig) wantEnvFleet(t *testing.T, primary, secondary secret.Secret) {
	t.Helper()
	if r.opts.runtime == nil {
		r.wantFleet(t, primary, secondary)
	}
}
