package rotate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

func start(t *testing.T, opts testbed.Options) (*testbed.World, *lambda.Client) {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	w, err := testbed.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w, lambda.NewFromConfig(w.AWS)
}

func mustSecret(t *testing.T) secret.Secret {
	t.Helper()
	s, err := rotate.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUpdateEnvKeepsEveryOtherVariable(t *testing.T) {
	t.Parallel()
	tricky := map[string]string{
		"DATABASE_URL": "postgres://valine:p%40ss=w0rd;x@db.internal:5432/valine?sslmode=require",
		"JSON_BLOB":    `{"a":[1,2,{"b":"c d"}],"e":"\u00e9"}`,
		"MULTILINE":    "line one\nline two\t tabbed ",
		"EMPTY":        "",
		"UNICODE":      "Grüße, 世界 🚀",
	}
	w, lc := start(t, testbed.Options{ExtraEnv: tricky})
	before, _, err := w.Env(t.Context(), w.Function)
	if err != nil {
		t.Fatal(err)
	}
	next, old := mustSecret(t), secret.NewSecret(w.InitialSecret())
	for _, step := range []struct {
		name                 string
		primary, secondary   secret.Secret
		wantPrimary, wantSec string
	}{
		{"stage", next, old, string(next.Reveal()), string(old.Reveal())},
		{"finalize", next, secret.Secret{}, string(next.Reveal()), ""},
	} {
		got, err := rotate.UpdateEnv(t.Context(), lc, w.Function, rotate.SetSecrets(w.Profile, step.primary, step.secondary), rotate.EnvUpdate{})
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		stored, _, err := w.Env(t.Context(), w.Function)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range before {
			if k == w.Profile.SecretVar || k == w.Profile.SecondaryVar {
				continue
			}
			if stored[k] != v || got.Config.Env[k] != v {
				t.Errorf("%s: %s changed (%q → %q)", step.name, k, v, stored[k])
			}
		}
		if stored[w.Profile.SecretVar] != step.wantPrimary || stored[w.Profile.SecondaryVar] != step.wantSec {
			t.Errorf("%s: secrets are %s / %s", step.name, secret.Fingerprint(stored[w.Profile.SecretVar]), secret.Fingerprint(stored[w.Profile.SecondaryVar]))
		}
		if _, present := stored[w.Profile.SecondaryVar]; step.wantSec == "" && present {
			t.Errorf("%s: secondary variable left in place", step.name)
		}
		if len(stored) != len(before)+boolInt(step.wantSec != "") {
			t.Errorf("%s: %d variables, had %d", step.name, len(stored), len(before))
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// racingLambda lets another writer change the function between UpdateEnv's
// read and its write, once.
type racingLambda struct {
	*lambda.Client
	race func()
	done atomic.Bool
}

func (r *racingLambda) UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	if r.done.CompareAndSwap(false, true) {
		r.race()
	}
	return r.Client.UpdateFunctionConfiguration(ctx, in, optFns...)
}

func TestUpdateEnvKeepsAConcurrentWritersChange(t *testing.T) {
	t.Parallel()
	w, lc := start(t, testbed.Options{})
	racer := &racingLambda{Client: lc, race: func() {
		if err := w.EditEnv(t.Context(), w.Function, func(env map[string]string) { env["FEATURE_FLAG"] = "on" }); err != nil {
			t.Error(err)
		}
	}}
	next := mustSecret(t)
	if _, err := rotate.UpdateEnv(t.Context(), racer, w.Function, rotate.SetSecrets(w.Profile, next, secret.Secret{}), rotate.EnvUpdate{}); err != nil {
		t.Fatal(err)
	}
	env, _, err := w.Env(t.Context(), w.Function)
	if err != nil {
		t.Fatal(err)
	}
	if env["FEATURE_FLAG"] != "on" {
		t.Error("the other writer's variable was lost: the stale write went through")
	}
	if env[w.Profile.SecretVar] != string(next.Reveal()) {
		t.Error("the rotation was lost")
	}
	if n := w.AWSFront.Calls("lambda:UpdateFunctionConfiguration"); n < 3 {
		t.Errorf("%d UpdateFunctionConfiguration calls; want the racer's, a refused stale one and a retried one", n)
	}
}

func TestUpdateEnvWaitsOutAnUpdateInProgress(t *testing.T) {
	t.Parallel()
	w, lc := start(t, testbed.Options{})
	var conflicts atomic.Int32
	w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/configuration") && conflicts.Add(1) <= 2 {
			return &testbed.Fault{Status: 409, ErrorType: "ResourceConflictException", Message: "An update is in progress"}
		}
		return nil
	})
	next := mustSecret(t)
	if _, err := rotate.UpdateEnv(t.Context(), lc, w.Function, rotate.SetSecrets(w.Profile, next, secret.Secret{}), rotate.EnvUpdate{Backoff: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if env, _, _ := w.Env(t.Context(), w.Function); env[w.Profile.SecretVar] != string(next.Reveal()) {
		t.Error("rotation not applied after the conflicts cleared")
	}

	// A conflict that never clears gives up, bounded, with the typed error.
	conflicts.Store(-1000)
	_, err := rotate.UpdateEnv(t.Context(), lc, w.Function, rotate.SetSecrets(w.Profile, mustSecret(t), secret.Secret{}), rotate.EnvUpdate{Backoff: time.Millisecond, Deadline: 200 * time.Millisecond})
	var busy *types.ResourceConflictException
	if !errors.As(err, &busy) {
		t.Errorf("want ResourceConflictException after giving up, got %v", err)
	}
}

func TestUpdateEnvRefusesBeforeAnyCall(t *testing.T) {
	t.Parallel()
	w, lc := start(t, testbed.Options{})
	huge := strings.Repeat("x", rotate.MaxEnvBytes)
	cases := []struct {
		name   string
		change func(map[string]string) error
		want   error
	}{
		{"empty primary", rotate.SetSecrets(w.Profile, secret.Secret{}, secret.Secret{}), rotate.ErrEmptySecret},
		{"over 4 KB", func(env map[string]string) error { env["BLOB"] = huge; return nil }, rotate.ErrEnvTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := w.AWSFront.Calls("lambda:UpdateFunctionConfiguration")
			_, err := rotate.UpdateEnv(t.Context(), lc, w.Function, tc.change, rotate.EnvUpdate{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			if after := w.AWSFront.Calls("lambda:UpdateFunctionConfiguration"); after != before {
				t.Errorf("%d update calls made; a refused change must not write", after-before)
			}
		})
	}
	if env, _, _ := w.Env(t.Context(), w.Function); env[w.Profile.SecretVar] != w.InitialSecret() {
		t.Error("the secret changed")
	}
}

func TestGenerateSecret(t *testing.T) {
	a, b := mustSecret(t), mustSecret(t)
	if len(a.Reveal()) != 44 || a.Equal(b) {
		t.Errorf("want distinct 44-character base64 secrets, got lengths %d/%d", len(a.Reveal()), len(b.Reveal()))
	}
}

// quotingLambda answers every update with an error quoting the environment
// it was sent, as Lambda's own 4 KB error does.
type quotingLambda struct{ *lambda.Client }

func (q quotingLambda) UpdateFunctionConfiguration(_ context.Context, in *lambda.UpdateFunctionConfigurationInput, _ ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	raw, _ := json.Marshal(in.Environment.Variables)
	return nil, &types.InvalidParameterValueException{Message: aws.String("environment variables exceeded the 4KB limit. String measured: " + string(raw))}
}

func TestUpdateEnvNeverPassesOnAValueQuotedByLambda(t *testing.T) {
	t.Parallel()
	w, lc := start(t, testbed.Options{ExtraEnv: map[string]string{"DATABASE_URL": `postgres://valine:p"ss\w0rd@db/valine`}})
	next := mustSecret(t)
	_, err := rotate.UpdateEnv(t.Context(), quotingLambda{lc}, w.Function, rotate.SetSecrets(w.Profile, next, secret.Secret{}), rotate.EnvUpdate{})
	var invalid *types.InvalidParameterValueException
	if !errors.As(err, &invalid) {
		t.Fatalf("the typed error must still be reachable: %v", err)
	}
	for _, v := range []string{string(next.Reveal()), w.InitialSecret(), `p"ss\w0rd`, `p\"ss\\w0rd`} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("the error passes on a value (%s): %v", secret.Fingerprint(v), secret.Fingerprint(err.Error()))
		}
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("nothing was redacted: the test does not test anything")
	}
}

// otherEncoderLambda quotes the environment the way another language's
// JSON encoder does: every '/' as \/ and every non-ASCII or HTML character
// as \u00xx.
type otherEncoderLambda struct{ *lambda.Client }

func (q otherEncoderLambda) UpdateFunctionConfiguration(_ context.Context, in *lambda.UpdateFunctionConfigurationInput, _ ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	raw, _ := json.Marshal(in.Environment.Variables)
	var b strings.Builder
	for _, r := range string(raw) {
		switch {
		case r == '/':
			b.WriteString(`\/`)
		case r > 126 || r == '@' || r == ':':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return nil, &types.InvalidParameterValueException{Message: aws.String("String measured: " + b.String())}
}

// A Lambda error quoting the environment with escapes other than Go's
// (\/, \u00xx) passes on no value either.
func TestUpdateEnvRedactsEveryEscapedFormLambdaQuotes(t *testing.T) {
	t.Parallel()
	const password = "s3cr/t&pässword"
	w, lc := start(t, testbed.Options{ExtraEnv: map[string]string{"DATABASE_URL": "postgres://valine:" + password + "@db.internal:5432/valine"}})
	_, err := rotate.UpdateEnv(t.Context(), otherEncoderLambda{lc}, w.Function, rotate.SetSecrets(w.Profile, mustSecret(t), secret.Secret{}), rotate.EnvUpdate{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, v := range []string{password, `s3cr\/t`, "s3cr", "db.internal"} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("the error passes on a piece of DATABASE_URL (%q)", v)
		}
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("nothing was redacted: %s", secret.Fingerprint(err.Error()))
	}
}

// A writer that keeps winning (eight PreconditionFailed in a row) is
// waited out with backoff and jitter within the deadline, not given up on
// after five immediate retries.
func TestUpdateEnvOutlastsABusyWriter(t *testing.T) {
	t.Parallel()
	w, lc := start(t, testbed.Options{})
	var puts atomic.Int32
	w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/configuration") && puts.Add(1) <= 8 {
			return &testbed.Fault{Status: http.StatusPreconditionFailed, ErrorType: "PreconditionFailedException", Message: "The Revision Id provided does not match the latest Revision Id"}
		}
		return nil
	})
	next := mustSecret(t)
	if _, err := rotate.UpdateEnv(t.Context(), lc, w.Function, rotate.SetSecrets(w.Profile, next, secret.Secret{}),
		rotate.EnvUpdate{Backoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}); err != nil {
		t.Fatalf("UpdateEnv against a busy writer: %v", err)
	}
	if n := puts.Load(); n != 9 {
		t.Errorf("%d writes, want 8 lost and 1 that landed", n)
	}
	if env, _, _ := w.Env(t.Context(), w.Function); env[w.Profile.SecretVar] != string(next.Reveal()) {
		t.Error("the change did not land")
	}
}

// The environment is measured as Lambda measures it: JSON without HTML
// escaping. A query string full of & is its bytes, not six bytes each.
func TestUpdateEnvMeasuresAsLambdaDoes(t *testing.T) {
	t.Parallel()
	query := strings.Repeat("a=1&", 250) + "<b>" // 1,003 bytes; 4,500 with HTML escapes
	w, lc := start(t, testbed.Options{ExtraEnv: map[string]string{"QUERY": query}})
	next := mustSecret(t)
	if _, err := rotate.UpdateEnv(t.Context(), lc, w.Function, rotate.SetSecrets(w.Profile, next, secret.Secret{}), rotate.EnvUpdate{}); err != nil {
		t.Fatalf("a 1 KB environment refused: %v", err)
	}
	if env, _, _ := w.Env(t.Context(), w.Function); env["QUERY"] != query || env[w.Profile.SecretVar] != string(next.Reveal()) {
		t.Error("the environment was not written as it should")
	}
}
