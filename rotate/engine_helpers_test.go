package rotate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// dbPassword is the password inside trickyEnv's DATABASE_URL, as written
// (percent-encoded) and as a server would read it: neither may be printed.
const (
	dbPassword        = "p%40ss=w0rd"
	dbPasswordDecoded = "p@ss=w0rd"
)

// trickyEnv is the other variables every function of an engine test
// carries: values a careless read-modify-write mangles (separators,
// quotes, newlines, nothing at all, multi-byte runes).
var trickyEnv = map[string]string{
	"DATABASE_URL": "postgres://valine:" + dbPassword + ";x@db:5432/v?sslmode=require",
	"JSON_BLOB":    `{"a":[1,2,{"b":"c d"}],"q":"say \"hi\"","e":"\u00e9","n":null}`,
	"MULTILINE":    "line one\nline two\r\n\ttabbed and trailing ",
	"EMPTY":        "",
	"UNICODE":      "Grüße, 世界 🚀 ‮rtl",
	"SPACES":       "  leading and trailing  ",
	"EQUALS":       "a=b=c&d==",
}

// engineAppID marks, in the User-Agent, the AWS requests the engine under
// test sends, so the front's hook can tell them from the testbed's own and
// from the "other writers" a test plays.
const engineAppID = "valine-engine-under-test"

// fromEngine reports whether an AWS request was sent by the engine under test.
func fromEngine(r *http.Request) bool {
	return strings.Contains(r.Header.Get("User-Agent"), "app/"+engineAppID)
}

// isConfigPut reports whether r is UpdateFunctionConfiguration, of fn when
// fn is not "".
func isConfigPut(r *http.Request, fn string) bool {
	if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/configuration") {
		return false
	}
	return fn == "" || strings.Contains(r.URL.Path, "/functions/"+fn+"/")
}

// isSecretsOp reports whether r is the Secrets Manager operation op.
func isSecretsOp(r *http.Request, op string) bool {
	return r.Header.Get("X-Amz-Target") == "secretsmanager."+op
}

// fastRetryer is the CLI's retryer (8 attempts, backoff on throttling and
// 5xx) with the backoff capped so tests stay quick, and no retry quota, so
// a long run of injected faults cannot starve later calls.
func fastRetryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = 8
		so.MaxBackoff = 50 * time.Millisecond
		so.RateLimiter = ratelimit.None
	})
}

// rigOptions tune newFleetRig; zero values give the defaults.
type rigOptions struct {
	profile       profile.Profile
	misbehaviours testbed.Misbehaviour
	// convergence bounds the verifier's retries (default 3 s). Tests that
	// expect a check to fail shorten it: with no propagation delay a check
	// that fails for 300 ms fails for good.
	convergence time.Duration
	// roles name the fleet's functions (default auth, profiles, media).
	roles []string
	// propagation is the API's propagation delay (default none).
	propagation time.Duration
	// backend is the testbed API's backend (default the reference one);
	// busy its login busy schedule (default never).
	backend testbed.Backend
	busy    *testbed.BusyOptions
	// logs turns the verifier's log check on: it reads the log group of
	// the function the API logs to, through the engine's marked client.
	logs bool
	// updateDuration keeps each Lambda update in progress that long
	// (default: done at once); quotas sets Lambda's request-rate quotas
	// (default none); tags go on every function.
	updateDuration time.Duration
	quotas         *testbed.LambdaQuotas
	tags           map[string]string
	// store, when set, is the kind of source of truth the engines rotate
	// with the fleet (journal.SourceSSM or SourceSecretsManager): the rig
	// creates it, under a unique name, holding the fleet's secret.
	store journal.SourceKind
	// deploy makes the fleet stack-managed and runtime has the API read its
	// secrets from a store (see testbed.Options); a store either names is
	// the rig's source unless store is set.
	deploy  *testbed.DeployOptions
	runtime *testbed.RuntimeSecrets
	// runtimeFor, when set, gives each rig its own runtime (store names
	// unique to it): for tests that build many rigs from one rigOptions.
	runtimeFor func() *testbed.RuntimeSecrets
}

// fleetRig is a local world with a fleet of functions sharing one secret,
// and everything an engine against it needs. Every engine it builds shares
// the backup, the audit file and the progress buffer, as successive runs
// of the command do.
type fleetRig struct {
	w          *testbed.World
	opts       rigOptions
	old        secret.Secret // the fleet's secret at start
	backupName string
	sm         *secretsmanager.Client // the engine's (marked, fast retries)
	lambda     *lambda.Client         // the engine's (marked, fast retries)
	auditPath  string
	audit      *rotate.AuditLog
	progress   *syncBuffer
	// source is the store the engines rotate with the fleet (zero: none),
	// ssm its client (the engine's: marked, fast retries).
	source journal.Source
	ssm    *ssm.Client
	// before is every function's environment at start.
	before map[string]map[string]string

	fault   atomic.Pointer[func(*http.Request) *testbed.Fault]
	writes  writeWatch
	errsMu  sync.Mutex
	errText []string // every error an engine operation returned, for the leak checks
}

// newFleetRig starts a world with a fleet of three functions carrying
// trickyEnv, no propagation delay, and a front hook that checks every
// environment the engine writes (see writeWatch) before any injected fault.
func newFleetRig(t *testing.T, o rigOptions) *fleetRig {
	t.Helper()
	if len(o.roles) == 0 {
		o.roles = []string{"auth", "profiles", "media"}
	}
	if o.convergence <= 0 {
		o.convergence = 3 * time.Second
	}
	if o.runtimeFor != nil {
		o.runtime = o.runtimeFor()
	}
	_, names := fleetNames("eng", o.roles...)
	if o.busy == nil {
		o.busy = &testbed.BusyOptions{}
	}
	w, _ := start(t, testbed.Options{
		Backend:          o.backend,
		Busy:             o.busy,
		Profile:          o.profile,
		Functions:        names,
		ExtraEnv:         trickyEnv,
		Misbehaviours:    o.misbehaviours,
		PropagationDelay: o.propagation,
		UpdateDuration:   o.updateDuration,
		LambdaQuotas:     o.quotas,
		FunctionTags:     o.tags,
		Deploy:           o.deploy,
		RuntimeSecrets:   o.runtime,
	})
	r := &fleetRig{
		w:          w,
		opts:       o,
		old:        secret.NewSecret(w.InitialSecret()),
		backupName: "valine-eng-" + rand.Text()[:16],
		sm: secretsmanager.NewFromConfig(w.AWS, func(so *secretsmanager.Options) {
			so.AppID = engineAppID
			so.Retryer = fastRetryer()
		}),
		lambda:    r0Lambda(w.AWS),
		auditPath: t.TempDir() + "/audit.jsonl",
		progress:  &syncBuffer{},
	}
	r.audit = &rotate.AuditLog{Path: r.auditPath}
	r.ssm = ssm.NewFromConfig(w.AWS, func(so *ssm.Options) {
		so.AppID = engineAppID
		so.Retryer = fastRetryer()
	})
	switch {
	case o.store != "":
		r.source = r.createStore(t, o.store)
	case o.runtime != nil:
		r.source = mustSource(t, o.runtime.Source)
	case o.deploy != nil && o.deploy.Source != "" && !strings.HasPrefix(o.deploy.Source, "param:"):
		r.source = mustSource(t, o.deploy.Source)
	}
	r.writes.profile = w.Profile
	r.rebase(t)
	w.AWSFront.SetFault(func(req *http.Request) *testbed.Fault {
		if fromEngine(req) && isConfigPut(req, "") {
			r.writes.check(req)
		}
		if f := r.fault.Load(); f != nil {
			return (*f)(req)
		}
		return nil
	})
	t.Cleanup(func() {
		// Whatever a test did, no write of the engine put an empty or
		// short secret on a function or dropped another variable.
		for _, bad := range r.writes.problems() {
			t.Errorf("engine write: %s", bad)
		}
		if o.runtime != nil && r.updates() > 0 {
			t.Errorf("%d function updates: functions that read the store at run time are never written", r.updates())
		}
	})
	return r
}

// testPace paces the engines of the tests far faster than AWS allows (the
// testbed sets no quota unless a test asks), so that a test waits for
// nothing but what it tests; a 429 pauses for 20 ms.
var testPace = rotate.LambdaPace{Control: 2000, GetFunction: 2000, ThrottlePause: 20 * time.Millisecond}

// r0Lambda is the engine's Lambda client: marked and with fast retries.
func r0Lambda(cfg aws.Config) *lambda.Client {
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.AppID = engineAppID
		o.Retryer = fastRetryer()
	})
}

// rebase takes every function's environment as it is now as the one the
// rest of the test compares with (for a test whose setup edits them).
func (r *fleetRig) rebase(t *testing.T) {
	t.Helper()
	r.before = r.envs(t)
	r.writes.mu.Lock()
	r.writes.before = r.before
	r.writes.mu.Unlock()
}

// setFault installs fn after the rig's own hook; nil removes it.
func (r *fleetRig) setFault(fn func(*http.Request) *testbed.Fault) {
	if fn == nil {
		r.fault.Store(nil)
		return
	}
	r.fault.Store(&fn)
}

// verifier is the probes verifier the engines use. The log check is
// skipped (no Target.Function) in every engine test.
func (r *fleetRig) verifier() rotate.ProbeVerifier {
	v := rotate.ProbeVerifier{
		Target: probes.Target{API: r.client()},
		Config: probes.Config{ProbeEmail: r.w.ProbeEmail, ProbePassword: secret.NewSecret(r.w.ProbePassword)},
		Runner: probes.Runner{CheckTimeout: 2 * time.Second, Convergence: r.opts.convergence, RetryInterval: 20 * time.Millisecond, MaxRetryInterval: 100 * time.Millisecond},
	}
	if r.opts.logs {
		v.Target.Function = r.w.Function
		v.Target.Logs = cloudwatchlogs.NewFromConfig(r.w.AWS, func(o *cloudwatchlogs.Options) {
			o.AppID = engineAppID
			o.Retryer = fastRetryer()
		})
	}
	return v
}

// client is a probes client for the world's API.
func (r *fleetRig) client() *probes.Client {
	return &probes.Client{BaseURL: r.w.APIURL, Profile: r.w.Profile}
}

// engine returns a fresh engine, as a new run of the command builds one,
// changed by mods.
func (r *fleetRig) engine(mods ...func(*rotate.Engine)) *rotate.Engine {
	e := &rotate.Engine{
		Lambda:   r.lambda,
		Pace:     testPace,
		Backup:   rotate.Backup{API: r.sm, Name: r.backupName},
		Profile:  r.w.Profile,
		Fleet:    r.w.Functions,
		Verifier: r.verifier(),
		Audit:    r.audit,
		Operator: "arn:aws:iam::000000000000:user/test",
		Reason:   "test",
		Progress: r.progress,
		Source:   r.source,
		Stores:   rotate.StoreClients{SSM: r.ssm, Secrets: r.sm},
	}
	if r.opts.runtime != nil {
		// The API reads the store at run time: so the engines deliver.
		e.Delivery, e.CacheTTL = journal.DeliveryRuntime, max(r.opts.runtime.CacheTTL, time.Millisecond)
	}
	for _, m := range mods {
		m(e)
	}
	return e
}

// note keeps an operation's error text for the leak checks and returns err.
func (r *fleetRig) note(err error) error {
	if err != nil {
		r.errsMu.Lock()
		r.errText = append(r.errText, err.Error())
		r.errsMu.Unlock()
	}
	return err
}

func (r *fleetRig) rotate(t *testing.T, e *rotate.Engine, mode journal.Mode, opt rotate.RotateOptions) (rotate.Outcome, error) {
	t.Helper()
	out, err := e.Rotate(t.Context(), mode, opt)
	return out, r.note(err)
}

func (r *fleetRig) finalize(t *testing.T, e *rotate.Engine, opt rotate.FinalizeOptions) (rotate.Outcome, error) {
	t.Helper()
	out, err := e.Finalize(t.Context(), opt)
	return out, r.note(err)
}

func (r *fleetRig) rollback(t *testing.T, e *rotate.Engine) (rotate.Outcome, error) {
	t.Helper()
	out, err := e.Rollback(t.Context(), rotate.RollbackOptions{})
	return out, r.note(err)
}

// mustRotate rotates in mode and fails the test unless it ends in phase want.
func (r *fleetRig) mustRotate(t *testing.T, mode journal.Mode, want journal.Phase) rotate.Outcome {
	t.Helper()
	out, err := r.rotate(t, r.engine(), mode, rotate.RotateOptions{})
	if err != nil {
		t.Fatalf("Rotate(%s): %v", mode, err)
	}
	if out.Journal.Phase != want {
		t.Fatalf("Rotate(%s) ended in phase %s, want %s", mode, out.Journal.Phase, want)
	}
	return out
}

// updates counts the UpdateFunctionConfiguration calls the front received.
func (r *fleetRig) updates() int { return r.w.AWSFront.Calls("lambda:UpdateFunctionConfiguration") }

// envs reads every function's environment.
func (r *fleetRig) envs(t *testing.T) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, fn := range r.w.Functions {
		env, _ := envOf(t, r.w, fn)
		out[fn] = env
	}
	return out
}

// others is env without the profile's secret variables.
func (r *fleetRig) others(env map[string]string) map[string]string {
	out := maps.Clone(env)
	delete(out, r.w.Profile.SecretVar)
	if r.w.Profile.SecondaryVar != "" {
		delete(out, r.w.Profile.SecondaryVar)
	}
	return out
}

// wantOthersKept checks that every function holds exactly the variables
// it started with, byte for byte, apart from the secret variables, plus
// the ones added[fn] (another writer's).
func (r *fleetRig) wantOthersKept(t *testing.T, added map[string]map[string]string) {
	t.Helper()
	for fn, env := range r.envs(t) {
		want := r.others(r.before[fn])
		maps.Copy(want, added[fn])
		got := r.others(env)
		if !maps.Equal(got, want) {
			t.Errorf("%s: other variables changed:\n%s", fn, mapDiff(want, got))
		}
	}
}

// wantEnvsEqual checks that every function's whole environment equals
// want's, byte for byte.
func (r *fleetRig) wantEnvsEqual(t *testing.T, want map[string]map[string]string) {
	t.Helper()
	for fn, env := range r.envs(t) {
		if !maps.Equal(env, want[fn]) {
			t.Errorf("%s: environment changed:\n%s", fn, mapDiff(want[fn], env))
		}
	}
}

// mapDiff describes how got differs from want; secret variables' values
// are shown as fingerprints.
func mapDiff(want, got map[string]string) string {
	// Fingerprints only: a failing test must not print a secret or
	// DATABASE_URL's password either.
	show := func(_, v string) string { return secret.Fingerprint(v) }
	var b strings.Builder
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			b.WriteString("  missing " + k + "\n")
		case g != v:
			b.WriteString("  " + k + ": " + show(k, v) + " → " + show(k, g) + "\n")
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			b.WriteString("  added " + k + "=" + show(k, v) + "\n")
		}
	}
	return b.String()
}

// wantFleet checks that every function holds primary and, when it is not
// empty, secondary; an empty secondary means the variable is absent.
func (r *fleetRig) wantFleet(t *testing.T, primary, secondary secret.Secret) {
	t.Helper()
	p := r.w.Profile
	for fn, env := range r.envs(t) {
		if got := env[p.SecretVar]; got != reveal(primary) {
			t.Errorf("%s: %s is %s, want %s", fn, p.SecretVar, secret.Fingerprint(got), primary)
		}
		if p.SecondaryVar == "" {
			continue
		}
		got, present := env[p.SecondaryVar]
		switch {
		case secondary.IsEmpty() && present:
			t.Errorf("%s: %s is %s, want it absent", fn, p.SecondaryVar, secret.Fingerprint(got))
		case !secondary.IsEmpty() && got != reveal(secondary):
			t.Errorf("%s: %s is %s, want %s", fn, p.SecondaryVar, secret.Fingerprint(got), secondary)
		}
	}
}

// wantNoShortSecret checks that no function holds an empty or short
// primary, or a secondary variable with an empty or short value.
func (r *fleetRig) wantNoShortSecret(t *testing.T) {
	t.Helper()
	p := r.w.Profile
	for fn, env := range r.envs(t) {
		if v := env[p.SecretVar]; len(v) < rotate.MinSecretBytes {
			t.Errorf("%s: %s holds %d bytes (%s)", fn, p.SecretVar, len(v), secret.Fingerprint(v))
		}
		if v, ok := env[p.SecondaryVar]; p.SecondaryVar != "" && ok && len(v) < rotate.MinSecretBytes {
			t.Errorf("%s: %s holds %d bytes (%s)", fn, p.SecondaryVar, len(v), secret.Fingerprint(v))
		}
	}
}

// status is a fresh engine's Status.
func (r *fleetRig) status(t *testing.T) rotate.Status {
	t.Helper()
	st, err := r.engine().Status(t.Context())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

// backupSecrets reads the backup's AWSCURRENT and AWSPREVIOUS.
func (r *fleetRig) backupSecrets(t *testing.T) (current, previous secret.Secret) {
	t.Helper()
	b := r.engine().Backup
	current, err := b.Current(t.Context())
	if err != nil {
		t.Fatalf("backup Current: %v", err)
	}
	previous, err = b.Previous(t.Context())
	if err != nil {
		t.Fatalf("backup Previous: %v", err)
	}
	return current, previous
}

// accepted forges a token from a fresh login's claims, signed with key,
// and reports whether the profile endpoint accepts it; an answer that is
// neither acceptance nor the profile's rejection fails the test.
func (r *fleetRig) accepted(t *testing.T, key secret.Secret) bool {
	t.Helper()
	c := r.client()
	s, err := c.Login(t.Context(), r.w.ProbeEmail, secret.NewSecret(r.w.ProbePassword))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	tok, err := probes.Resign(s.Access, key)
	if err != nil {
		t.Fatalf("Resign: %v", err)
	}
	resp, err := c.Me(t.Context(), tok)
	switch {
	case err != nil:
		t.Fatalf("Me: %v", err)
	case resp.Status == http.StatusOK:
		return true
	case !c.IsRejection(resp):
		t.Fatalf("Me with a token signed with %s: HTTP %d %s, neither acceptance nor rejection", key, resp.Status, resp.Body)
	}
	return false
}

// wantTokens checks which of the secrets the API honours.
func (r *fleetRig) wantTokens(t *testing.T, accepted map[string]secret.Secret, refused map[string]secret.Secret) {
	t.Helper()
	for name, key := range accepted {
		if !r.accepted(t, key) {
			t.Errorf("a token signed with the %s secret %s is refused, want accepted", name, key)
		}
	}
	for name, key := range refused {
		if r.accepted(t, key) {
			t.Errorf("a token signed with the %s secret %s is accepted, want refused", name, key)
		}
	}
}

// journalSecrets returns the secrets the journal's fingerprints name, read
// from the backup, and checks that the backup agrees with the journal:
// AWSCURRENT the new secret, AWSPREVIOUS the old one, swapped once a
// rollback has restored the old one (AWSCURRENT names what the fleet holds).
func (r *fleetRig) journalSecrets(t *testing.T, j journal.Journal) (old, next secret.Secret) {
	t.Helper()
	current, previous := r.backupSecrets(t)
	if j.Phase == journal.PhaseRolledBack {
		if current.Fingerprint() != j.OldFingerprint || previous.Fingerprint() != j.NewFingerprint {
			t.Fatalf("after the rollback of %s the backup holds current %s, previous %s; want current %s (the restored secret), previous %s",
				j.ID, current, previous, j.OldFingerprint, j.NewFingerprint)
		}
		return current, previous
	}
	if current.Fingerprint() != j.NewFingerprint || previous.Fingerprint() != j.OldFingerprint {
		t.Fatalf("backup holds current %s, previous %s; journal of %s says new %s, old %s",
			current, previous, j.ID, j.NewFingerprint, j.OldFingerprint)
	}
	return previous, current
}

// auditRecords reads the audit file, one record per line.
func (r *fleetRig) auditRecords(t *testing.T) ([]rotate.AuditRecord, string) {
	t.Helper()
	raw, err := os.ReadFile(r.auditPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var recs []rotate.AuditRecord
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var rec rotate.AuditRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %d is not a JSON record: %v", i+1, err)
		}
		recs = append(recs, rec)
	}
	return recs, string(raw)
}

// jwtShape matches a compact JWS whose header is JSON.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)

// wantNoLeak checks that no text holds a secret value, the probe user's
// password, the value of another variable (DATABASE_URL, its password…),
// or a token.
func (r *fleetRig) wantNoLeak(t *testing.T, where string, text string, secrets ...secret.Secret) {
	t.Helper()
	values := map[string]string{
		"the initial secret":      reveal(r.old),
		"the probe password":      r.w.ProbePassword,
		"DATABASE_URL":            trickyEnv["DATABASE_URL"],
		"the database password":   dbPassword,
		"the decoded db password": dbPasswordDecoded,
	}
	for k, v := range trickyEnv {
		values["the value of "+k] = v
	}
	for i, s := range secrets {
		if !s.IsEmpty() {
			values[fmt.Sprintf("secret #%d (%s)", i, s)] = reveal(s)
		}
	}
	for name, v := range values {
		if v != "" && strings.Contains(text, v) {
			t.Errorf("%s holds %s", where, name)
		}
	}
	if tok := jwtShape.FindString(text); tok != "" {
		t.Errorf("%s holds a token (%s)", where, secret.Fingerprint(tok))
	}
}

// writeWatch checks every environment the engine sends to Lambda: the
// primary at least MinSecretBytes, the secondary absent or as long, and
// every variable the function started with present and unchanged. It keeps
// fingerprints and names, never values.
type writeWatch struct {
	profile profile.Profile
	before  map[string]map[string]string

	mu     sync.Mutex
	seen   int
	issues []string
}

func (ww *writeWatch) check(req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var in struct {
		Environment *struct{ Variables map[string]string }
	}
	fn := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/2015-03-31/functions/"), "/configuration")
	ww.mu.Lock()
	defer ww.mu.Unlock()
	var issues []string
	switch err := json.Unmarshal(body, &in); {
	case err != nil:
		issues = append(issues, fn+": unreadable request body")
	case in.Environment == nil:
		issues = append(issues, fn+": an update without an Environment")
	default:
		env := in.Environment.Variables
		if v := env[ww.profile.SecretVar]; len(v) < rotate.MinSecretBytes {
			issues = append(issues, fn+": wrote "+ww.profile.SecretVar+" of "+itoa(len(v))+" bytes")
		}
		if v, ok := env[ww.profile.SecondaryVar]; ww.profile.SecondaryVar != "" && ok && len(v) < rotate.MinSecretBytes {
			issues = append(issues, fn+": wrote "+ww.profile.SecondaryVar+" of "+itoa(len(v))+" bytes")
		}
		for k, v := range ww.before[fn] {
			if k == ww.profile.SecretVar || k == ww.profile.SecondaryVar {
				continue
			}
			if got, ok := env[k]; !ok || got != v {
				issues = append(issues, fn+": wrote "+k+" changed or missing")
			}
		}
	}
	ww.seen++
	ww.issues = append(ww.issues, issues...)
}

// checked counts the engine's writes the watch has seen.
func (ww *writeWatch) checked() int {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	return ww.seen
}

func (ww *writeWatch) problems() []string {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	return append([]string(nil), ww.issues...)
}

func itoa(n int) string { return strconv.Itoa(n) }

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stsClient is an STS client for the world (kumo serves GetCallerIdentity).
func (r *fleetRig) stsClient() *sts.Client { return sts.NewFromConfig(r.w.AWS) }

// countingFault returns a fault hook that answers with f the first n
// requests match selects (all of them when n < 0), and how many it faulted.
func countingFault(n int64, match func(*http.Request) bool, f testbed.Fault) (func(*http.Request) *testbed.Fault, *atomic.Int64) {
	var hits atomic.Int64
	return func(req *http.Request) *testbed.Fault {
		if !match(req) {
			return nil
		}
		if k := hits.Add(1); n >= 0 && k > n {
			return nil
		}
		return &f
	}, &hits
}

// errStop is the injected crash.
var errStop = errors.New("injected stop")

// createStore creates a source of truth of kind under a unique name,
// holding the fleet's secret, as the deploy that made the fleet left it.
func (r *fleetRig) createStore(t *testing.T, kind journal.SourceKind) journal.Source {
	t.Helper()
	name := "/valine-eng-" + rand.Text()[:12] + "/jwt-secret"
	switch kind {
	case journal.SourceSSM:
		if _, err := r.ssm.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(reveal(r.old)), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
			t.Fatalf("creating the SSM parameter: %v", err)
		}
	case journal.SourceSecretsManager:
		name = strings.TrimPrefix(name, "/")
		if _, err := r.sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(reveal(r.old))}); err != nil {
			t.Fatalf("creating the source secret: %v", err)
		}
	default:
		t.Fatalf("createStore: %q is not a store", kind)
	}
	return journal.Source{Kind: kind, Name: name}
}

// storeHolds reads what the rig's source of truth holds.
func (r *fleetRig) storeHolds(t *testing.T) (primary, secondary secret.Secret) {
	t.Helper()
	s, err := rotate.NewStore(r.source, rotate.StoreClients{SSM: r.ssm, Secrets: r.sm})
	if err != nil || s == nil {
		t.Fatalf("NewStore(%s): %v", r.source, err)
	}
	primary, secondary, err = s.Read(t.Context())
	if err != nil {
		t.Fatalf("reading %s: %v", r.source, err)
	}
	return primary, secondary
}

// wantStore checks that the rig's source of truth holds primary and
// secondary (nothing to check without one).
func (r *fleetRig) wantStore(t *testing.T, primary, secondary secret.Secret) {
	t.Helper()
	if !r.source.IsStore() {
		return
	}
	gotPrimary, gotSecondary := r.storeHolds(t)
	if !gotPrimary.Equal(primary) || !gotSecondary.Equal(secondary) {
		t.Errorf("%s holds primary %s, secondary %s; want %s, %s", r.source, gotPrimary, fpOr(gotSecondary), primary, fpOr(secondary))
	}
}

func fpOr(s secret.Secret) string {
	if s.IsEmpty() {
		return "none"
	}
	return s.Fingerprint()
}

// mustSource parses a testbed source ("ssm:/name", "secretsmanager:name").
func mustSource(t *testing.T, s string) journal.Source {
	t.Helper()
	src, err := journal.ParseSource(s)
	if err != nil {
		t.Fatalf("ParseSource(%q): %v", s, err)
	}
	return src
}

// uniqueParameter is an SSM parameter name no other test uses.
func uniqueParameter() string { return "/valine-eng-" + rand.Text()[:12] + "/jwt-secret" }
