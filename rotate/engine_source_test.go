package rotate_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// storeKinds are the sources of truth other than the functions'
// environment.
var storeKinds = []journal.SourceKind{journal.SourceSSM, journal.SourceSecretsManager}

// storeScenarios are the crash scenarios plus an emergency: every mode, and
// finalize and rollback, each of which writes the store.
func storeScenarios() []crashScenario {
	return append(crashScenarios(), crashScenario{name: "emergency", run: rotateIn(journal.ModeEmergency), end: journal.PhaseCompleted})
}

// TestEngineRotatesTheSourceOfTruthWithTheFleet: with an SSM parameter or a
// Secrets Manager secret as the source of truth, every operation (each
// mode, finalize, rollback) stopped after each of its steps and run again
// converges with the store holding what the fleet holds, and a fresh run
// after each stop sees only secrets the backup holds, in the store too
// (wantEnd, wantOnlyBackedUpSecrets).
func TestEngineRotatesTheSourceOfTruthWithTheFleet(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			stopAtEachStep(t, storeScenarios(), rigOptions{store: kind})
		})
	}
}

// TestEngineConvergesAfterACrashAfterAnyWriteWithAStore: the crash test
// with a source of truth, killed after each write, the store's included
// (a store written and the fleet not yet, say). It runs the scenarios
// that write the store with no secondary in every way (a rotation's
// switch, finalize's removal, rollback's restore); the stop-at-each-step
// test above covers every mode (about 140 worlds for all of them here,
// 70 s, against about 50).
func TestEngineConvergesAfterACrashAfterAnyWriteWithAStore(t *testing.T) {
	t.Parallel()
	var scenarios []crashScenario
	for _, sc := range storeScenarios() {
		switch sc.name {
		case "maintenance", "finalize", "rollback of a maintenance rotation":
			scenarios = append(scenarios, sc)
		}
	}
	for _, kind := range storeKinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			killAfterEachWrite(t, scenarios, rigOptions{store: kind})
		})
	}
}

// TestEngineWritesTheStoreBeforeAnyFunction: the store holds each phase's
// secrets, read back, before the first function of that phase is
// written, and the journal records the source.
func TestEngineWritesTheStoreBeforeAnyFunction(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{store: kind})
			var mu sync.Mutex
			var order []string // "store" and "function" writes, as the front saw them
			r.setFault(func(req *http.Request) *testbed.Fault {
				target := req.Header.Get("X-Amz-Target")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case !fromEngine(req):
				case isConfigPut(req, ""):
					order = append(order, "function")
				case strings.HasSuffix(target, ".PutParameter"), strings.HasSuffix(target, ".DeleteParameter"),
					strings.HasSuffix(target, ".UpdateSecretVersionStage"),
					strings.HasSuffix(target, ".PutSecretValue") && !strings.Contains(readBody(req), r.backupName):
					order = append(order, "store")
				}
				return nil
			})
			out, err := r.rotate(t, r.engine(), journal.ModeMaintenance, rotate.RotateOptions{})
			if err != nil || out.Journal.Phase != journal.PhaseCompleted {
				t.Fatalf("rotate: phase %s, %v", out.Journal.Phase, err)
			}
			mu.Lock()
			first := slices.Index(order, "function")
			lastStore := slices.Index(order, "store")
			for i, w := range order {
				if w == "store" {
					lastStore = i
				}
			}
			mu.Unlock()
			if first < 0 || lastStore < 0 || lastStore > first {
				t.Errorf("writes in order %v: want every store write before the first function write", order)
			}
			if out.Journal.Source != r.source {
				t.Errorf("journal source %s, want %s", out.Journal.Source, r.source)
			}
			st := r.status(t)
			if st.Journal.Source != r.source || st.Source != r.source {
				t.Errorf("status: journal source %s, compared source %s; want %s", st.Journal.Source, st.Source, r.source)
			}
			if st.Drifted() {
				t.Errorf("status after a store-backed rotation says drifted: %+v %+v", st.SourceDrift, st.Mismatches)
			}
		})
	}
}

func readBody(req *http.Request) string {
	b, _ := io.ReadAll(req.Body)
	return string(b)
}

// TestEngineRefusesARotationTheNextDeployWouldUndo: on a fleet a
// CloudFormation stack deploys from an SSM parameter, a rotation of the
// functions alone (lambda-env) is refused before any write, naming the
// stack and the source to use; --allow-deploy-drift lets it go ahead, the
// next deploy puts the old secret back, and status catches it.
func TestEngineRefusesARotationTheNextDeployWouldUndo(t *testing.T) {
	t.Parallel()
	param := uniqueParameter()
	r := newFleetRig(t, rigOptions{deploy: &testbed.DeployOptions{Source: "ssm:" + param}})
	r.source = journal.Source{} // the operator forgot --source
	lambdaEnv := func(e *rotate.Engine) { e.Source = journal.LambdaEnv; e.Deploy = cloudformation.NewFromConfig(r.w.AWS) }

	before := r.updates()
	_, err := r.rotate(t, r.engine(lambdaEnv), journal.ModeMaintenance, rotate.RotateOptions{})
	if !errors.Is(err, rotate.ErrDeployDrift) {
		t.Fatalf("want ErrDeployDrift, got %v", err)
	}
	for _, want := range []string{r.w.StackName, "dynamic reference to ssm:" + param, "--source ssm:" + param, "--allow-deploy-drift"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if n := r.updates() - before; n != 0 {
		t.Errorf("%d function updates before the refusal", n)
	}
	if st := r.status(t); st.HasJournal {
		t.Errorf("the refusal journalled rotation %s", st.Journal.ID)
	}

	out, err := r.rotate(t, r.engine(lambdaEnv, func(e *rotate.Engine) { e.AllowDeployDrift = true }), journal.ModeMaintenance, rotate.RotateOptions{})
	if err != nil || out.Journal.Phase != journal.PhaseCompleted {
		t.Fatalf("rotate with AllowDeployDrift: phase %s, %v", out.Journal.Phase, err)
	}
	_, next := r.journalSecrets(t, out.Journal)
	r.wantFleet(t, next, secret.Secret{})
	if _, err := r.w.Redeploy(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.wantFleet(t, r.old, secret.Secret{}) // the deploy undid it
	st := r.status(t)
	if !st.Drifted() || len(st.Mismatches) != len(r.w.Functions) {
		t.Fatalf("status after the deploy reverted the rotation: drifted %v, %d mismatches %+v", st.Drifted(), len(st.Mismatches), st.Mismatches)
	}
	for _, m := range st.Mismatches {
		if m.Holds != r.old.Fingerprint() || m.Want != next.Fingerprint() || !strings.Contains(m.Says, "reverted by a deploy") {
			t.Errorf("mismatch %+v: want holds %s (the old secret), want %s", m, r.old, next)
		}
	}
}

// TestARedeployAfterAStoreBackedRotationKeepsTheNewSecret: the rotation
// wrote the parameter the template reads, so the next deploy writes the
// new secret and status sees no drift; a hand edit of one function after
// it is drift from the source.
func TestARedeployAfterAStoreBackedRotationKeepsTheNewSecret(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"ssm:" + uniqueParameter(), "secretsmanager:" + strings.TrimPrefix(uniqueParameter(), "/")} {
		t.Run(strings.Split(src, ":")[0], func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{deploy: &testbed.DeployOptions{Source: src}})
			withStacks := func(e *rotate.Engine) { e.Deploy = cloudformation.NewFromConfig(r.w.AWS) }
			out, err := r.rotate(t, r.engine(withStacks), journal.ModeMaintenance, rotate.RotateOptions{})
			if err != nil || out.Journal.Phase != journal.PhaseCompleted {
				t.Fatalf("rotate: phase %s, %v", out.Journal.Phase, err)
			}
			_, next := r.journalSecrets(t, out.Journal)
			res, err := r.w.Redeploy(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Written) != 0 {
				t.Errorf("the deploy rewrote %v: the rotation left them as the template says", res.Written)
			}
			r.wantFleet(t, next, secret.Secret{})
			r.wantStore(t, next, secret.Secret{})
			st, err := r.engine(withStacks).Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.Drifted() || len(st.Stacks) != 1 || st.Stacks[0].Stack != r.w.StackName {
				t.Fatalf("status after the deploy: drifted %v (%+v), stacks %+v", st.Drifted(), st.SourceDrift, st.Stacks)
			}
			if s, same := st.Stacks[0].Supply(); !same || s.Kind != rotate.SupplyReference || s.Source != r.source {
				t.Errorf("the template's supply: %+v (same %v), want a reference to %s", s, same, r.source)
			}

			if err := r.w.EditEnv(t.Context(), r.w.Functions[1], func(env map[string]string) { env[r.w.Profile.SecretVar] = reveal(r.old) }); err != nil {
				t.Fatal(err)
			}
			st = r.status(t)
			if len(st.SourceDrift) != 1 || st.SourceDrift[0].Function != r.w.Functions[1] || st.SourceDrift[0].Holds != r.old.Fingerprint() {
				t.Errorf("after a hand edit of %s: source drift %+v", r.w.Functions[1], st.SourceDrift)
			}
		})
	}
}

// TestRuntimeDeliveryRotatesTheStoreAlone: functions that read the secret
// from the store at run time (cached for a TTL) are not written; the
// verification waits out the TTL and passes; with Secrets Manager and a
// backend that verifies with AWSPREVIOUS too, a zero-downtime rotation
// keeps old tokens valid in the grace period and refuses them after
// finalize.
func TestRuntimeDeliveryRotatesTheStoreAlone(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	runtime := func(e *rotate.Engine) { e.Delivery = journal.DeliveryRuntime; e.CacheTTL = ttl }
	t.Run("ssm maintenance", func(t *testing.T) {
		t.Parallel()
		r := newFleetRig(t, rigOptions{runtime: &testbed.RuntimeSecrets{Source: "ssm:" + uniqueParameter(), CacheTTL: ttl}})
		out, err := r.rotate(t, r.engine(runtime), journal.ModeMaintenance, rotate.RotateOptions{})
		if err != nil || out.Journal.Phase != journal.PhaseCompleted {
			t.Fatalf("rotate: phase %s, %v", out.Journal.Phase, err)
		}
		if n := r.updates(); n != 0 {
			t.Errorf("%d function updates: runtime delivery writes the store alone", n)
		}
		if out.Journal.Delivery != journal.DeliveryRuntime || out.Journal.CacheTTL != ttl {
			t.Errorf("journal delivery %q, TTL %s", out.Journal.Delivery, out.Journal.CacheTTL)
		}
		_, next := r.journalSecrets(t, out.Journal)
		r.wantStore(t, next, secret.Secret{})
		r.wantTokens(t, map[string]secret.Secret{"new": next}, map[string]secret.Secret{"old": r.old})
		if st := r.status(t); st.Drifted() {
			t.Errorf("status: drifted: %+v", st.SourceDrift)
		}
	})
	t.Run("secretsmanager zero-downtime", func(t *testing.T) {
		t.Parallel()
		name := strings.TrimPrefix(uniqueParameter(), "/")
		r := newFleetRig(t, rigOptions{runtime: &testbed.RuntimeSecrets{Source: "secretsmanager:" + name, SecondarySource: "secretsmanager:" + name + ":AWSPREVIOUS", CacheTTL: ttl}})
		out, err := r.rotate(t, r.engine(runtime), journal.ModeZeroDowntime, rotate.RotateOptions{})
		if err != nil || out.Journal.Phase != journal.PhaseGrace {
			t.Fatalf("rotate: phase %s, %v", out.Journal.Phase, err)
		}
		_, next := r.journalSecrets(t, out.Journal)
		r.wantStore(t, next, r.old)
		r.wantTokens(t, map[string]secret.Secret{"old": r.old, "new": next}, nil)
		out, err = r.finalize(t, r.engine(), rotate.FinalizeOptions{Force: true}) // delivery and TTL from the journal
		if err != nil || out.Journal.Phase != journal.PhaseCompleted {
			t.Fatalf("finalize: phase %s, %v", out.Journal.Phase, err)
		}
		r.wantStore(t, next, secret.Secret{})
		r.wantTokens(t, map[string]secret.Secret{"new": next}, map[string]secret.Secret{"old": r.old})
		if n := r.updates(); n != 0 {
			t.Errorf("%d function updates: runtime delivery writes the store alone", n)
		}
		stages := r.stages(t, name)
		for id, labels := range stages {
			if slices.Contains(labels, "AWSPENDING") {
				t.Errorf("version %s still AWSPENDING after finalize: %v", id, stages)
			}
		}
	})
	t.Run("a different source than the journalled one is refused", func(t *testing.T) {
		t.Parallel()
		param := uniqueParameter()
		r := newFleetRig(t, rigOptions{runtime: &testbed.RuntimeSecrets{Source: "ssm:" + param, SecondarySource: "ssm:" + param + "-secondary", CacheTTL: ttl}})
		if out, err := r.rotate(t, r.engine(runtime), journal.ModeZeroDowntime, rotate.RotateOptions{}); err != nil || out.Journal.Phase != journal.PhaseGrace {
			t.Fatalf("rotate: phase %s, %v", out.Journal.Phase, err)
		}
		other := func(e *rotate.Engine) { e.Source = journal.Source{Kind: journal.SourceSSM, Name: "/elsewhere"} }
		if _, err := r.finalize(t, r.engine(other), rotate.FinalizeOptions{Force: true}); !errors.Is(err, rotate.ErrSourceMismatch) {
			t.Errorf("finalize with another source: %v, want ErrSourceMismatch", err)
		}
	})
}

// stages reads the source secret's staging labels by version.
func (r *fleetRig) stages(t *testing.T, name string) map[string][]string {
	t.Helper()
	d, err := r.sm.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return d.VersionIdsToStages
}

// TestSSMStoreLabelsTheVersionsItWrites: the parameter's versions are
// named after the rotation, so an operator (or a rollback) can read
// "/name:<rotation>-old" and "-new".
func TestSSMStoreLabelsTheVersionsItWrites(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{store: journal.SourceSSM})
	out := r.mustRotate(t, journal.ModeMaintenance, journal.PhaseCompleted)
	_, next := r.journalSecrets(t, out.Journal)
	for label, want := range map[string]secret.Secret{out.Journal.ID + "-old": r.old, out.Journal.ID + "-new": next} {
		got, err := r.ssm.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(r.source.Name + ":" + label), WithDecryption: aws.Bool(true)})
		if err != nil {
			t.Errorf("GetParameter %s:%s: %v", r.source.Name, label, err)
			continue
		}
		if aws.ToString(got.Parameter.Value) != reveal(want) {
			t.Errorf("%s:%s holds %s, want %s", r.source.Name, label, secret.Fingerprint(aws.ToString(got.Parameter.Value)), want)
		}
	}
}

// TestPreflightNeverPutsAThrowawayInTheSourceOfTruth: the proof of a
// secondary sets its throwaway on the functions only when they carry the
// secret in their environment: the store, which a deploy at that moment
// would read, is not written at all. (Functions reading the store at run
// time get it as the store's secondary instead, and the primary stays.)
func TestPreflightNeverPutsAThrowawayInTheSourceOfTruth(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			r := newFleetRig(t, rigOptions{store: kind})
			var storeWrites atomic.Int64
			r.setFault(func(req *http.Request) *testbed.Fault {
				target := req.Header.Get("X-Amz-Target")
				if fromEngine(req) && (strings.HasPrefix(target, "AmazonSSM.Put") || strings.HasSuffix(target, ".UpdateSecretVersionStage") ||
					strings.HasSuffix(target, ".PutSecretValue") && strings.Contains(readBody(req), r.source.Name)) {
					storeWrites.Add(1)
				}
				return nil
			})
			results := rotate.Preflight(t.Context(), r.engine(), r.stsClient(), true)
			var zd string
			for _, res := range results {
				if res.Name == "zero-downtime" {
					zd = string(res.Outcome) + ": " + res.Reason
				}
			}
			if !strings.HasPrefix(zd, "pass") {
				t.Fatalf("zero-downtime row: %q", zd)
			}
			if n := storeWrites.Load(); n != 0 {
				t.Errorf("preflight wrote the source of truth %d times", n)
			}
			r.wantStore(t, r.old, secret.Secret{})
			r.wantFleet(t, r.old, secret.Secret{})
		})
	}
}

// TestEngineRefusesASourceItCannotUse: a store that does not exist (the
// parameter or secret not created yet) and a cache TTL for a fleet that
// reads its environment are refused before any write, saying what to do.
func TestEngineRefusesASourceItCannotUse(t *testing.T) {
	t.Parallel()
	r := newFleetRig(t, rigOptions{})
	for name, tc := range map[string]struct {
		mod  func(*rotate.Engine)
		want error
		says string
	}{
		"a parameter not created": {func(e *rotate.Engine) { e.Source = journal.Source{Kind: journal.SourceSSM, Name: uniqueParameter()} }, rotate.ErrNoStore, "create it holding the fleet's secret"},
		"a secret not created": {func(e *rotate.Engine) {
			e.Source = journal.Source{Kind: journal.SourceSecretsManager, Name: "valine-none-" + itoa(int(time.Now().UnixNano()))}
		}, rotate.ErrNoStore, "create it holding the fleet's secret"},
		"a cache ttl for env delivery":  {func(e *rotate.Engine) { e.CacheTTL = time.Minute }, rotate.ErrInvalidSource, "--delivery runtime"},
		"runtime delivery from the env": {func(e *rotate.Engine) { e.Delivery = journal.DeliveryRuntime }, rotate.ErrInvalidSource, "needs a store"},
	} {
		before := r.updates()
		_, err := r.rotate(t, r.engine(tc.mod), journal.ModeMaintenance, rotate.RotateOptions{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %v saying %q", name, err, tc.want, tc.says)
		}
		if n := r.updates() - before; n != 0 {
			t.Errorf("%s: %d function updates before the refusal", name, n)
		}
	}
	if st := r.status(t); st.HasJournal {
		t.Errorf("a refusal journalled rotation %s", st.Journal.ID)
	}
}

// TestRuntimeDeliveryConvergesAfterAStopAtEachStep: functions reading the
// store at run time (cache TTL 100 ms, the secondary from the store as
// well): every mode, finalize and rollback, stopped after each step and run
// again, converge with the store holding each end's secrets and the API
// honouring exactly those; no function is ever written.
func TestRuntimeDeliveryConvergesAfterAStopAtEachStep(t *testing.T) {
	t.Parallel()
	name := func() string { return strings.TrimPrefix(uniqueParameter(), "/") }
	for kind, runtime := range map[string]func() *testbed.RuntimeSecrets{
		"ssm": func() *testbed.RuntimeSecrets {
			n := "/" + name()
			return &testbed.RuntimeSecrets{Source: "ssm:" + n, SecondarySource: "ssm:" + n + "-secondary", CacheTTL: 100 * time.Millisecond}
		},
		"secretsmanager": func() *testbed.RuntimeSecrets {
			n := name()
			return &testbed.RuntimeSecrets{Source: "secretsmanager:" + n, SecondarySource: "secretsmanager:" + n + ":AWSPREVIOUS", CacheTTL: 100 * time.Millisecond}
		},
	} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			stopAtEachStep(t, storeScenarios(), rigOptions{runtimeFor: runtime})
		})
	}
}
