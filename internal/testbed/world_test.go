package testbed_test

import (
	"errors"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
)

func TestSetSecretsKeepsOtherVariables(t *testing.T) {
	t.Parallel()
	tricky := map[string]string{
		"DATABASE_URL": "postgres://valine:p%40ss w0rd=+/==@db.internal:5432/valine?sslmode=require",
		"JSON_CONFIG":  `{"a":[1,2,"three"],"b":"\u00e9\n"}`,
		"EMPTY":        "",
		"UNICODE":      "héllo wörld ✓",
		"TRAILING_WS":  "value with trailing spaces   ",
	}
	tests := []struct {
		name               string
		profile            profile.Profile
		primary, secondary string
		wantSecondary      bool
	}{
		{"runbook dual", profile.Presets["runbook"], "new-primary", "old-primary", true},
		{"runbook single", profile.Presets["runbook"], "new-primary", "", false},
		{"cookie", profile.Presets["cookie"], "new-primary", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fns := []string{uniqueName("tb-keep-a"), uniqueName("tb-keep-b")}
			w := startWorld(t, testbed.Options{Profile: tt.profile, Functions: fns, ExtraEnv: tricky})
			ctx := t.Context()
			before := map[string]map[string]string{}
			for _, fn := range w.Functions {
				env, _, err := w.Env(ctx, fn)
				if err != nil {
					t.Fatalf("Env: %v", err)
				}
				if env[tt.profile.SecretVar] != w.InitialSecret() {
					t.Fatalf("%s: initial secret not set", fn)
				}
				before[fn] = env
			}
			if err := w.SetSecrets(ctx, tt.primary, tt.secondary); err != nil {
				t.Fatalf("SetSecrets: %v", err)
			}
			for _, fn := range w.Functions {
				after, _, err := w.Env(ctx, fn)
				if err != nil {
					t.Fatalf("Env: %v", err)
				}
				if after[tt.profile.SecretVar] != tt.primary {
					t.Errorf("%s: primary not rotated", fn)
				}
				_, has := after[tt.profile.SecondaryVar]
				if tt.profile.SecondaryVar != "" && has != tt.wantSecondary {
					t.Errorf("%s: secondary present = %v, want %v", fn, has, tt.wantSecondary)
				}
				want := maps.Clone(before[fn])
				for _, v := range []string{tt.profile.SecretVar, tt.profile.SecondaryVar} {
					delete(want, v)
					delete(after, v)
				}
				if !maps.Equal(after, want) {
					t.Errorf("%s: other variables changed:\n got  %q\n want %q", fn, after, want)
				}
				for k, v := range tricky {
					if after[k] != v {
						t.Errorf("%s: %s = %q, want %q", fn, k, after[k], v)
					}
				}
			}
			if tt.wantSecondary {
				if err := w.SetSecrets(ctx, tt.primary, ""); err != nil {
					t.Fatalf("SetSecrets removing the secondary: %v", err)
				}
				env, _, err := w.Env(ctx, w.Function)
				if err != nil {
					t.Fatalf("Env: %v", err)
				}
				if _, has := env[tt.profile.SecondaryVar]; has {
					t.Error("secondary still present after SetSecrets with secondary \"\"")
				}
			}
		})
	}
}

func TestSetSecretsRefusesASecondaryTheProfileCannotHold(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{Profile: profile.Presets["cookie"]})
	if err := w.SetSecrets(t.Context(), "a", "b"); err == nil {
		t.Error("SetSecrets with a secondary on a profile without SecondaryVar: want an error")
	}
	if err := w.SetSecrets(t.Context(), "", ""); !errors.Is(err, testbed.ErrEmptySecret) {
		t.Errorf("SetSecrets with an empty primary: got %v, want testbed.ErrEmptySecret", err)
	}
	if n := w.AWSFront.Calls("lambda:UpdateFunctionConfiguration"); n != 0 {
		t.Errorf("%d UpdateFunctionConfiguration calls after two refusals, want none", n)
	}
}

// A writer that changes a function between SetSecrets's read and its write
// loses nothing: SetSecrets's write carries the RevisionId it read, Front
// refuses it as stale, and SetSecrets starts again from a fresh read. The
// other writer edits as a console does (read, change, write everything back
// without a RevisionId), from the fault hook, when SetSecrets's first write
// of the second function arrives.
func TestSetSecretsKeepsAVariableAddedBetweenItsReadAndItsWrite(t *testing.T) {
	t.Parallel()
	fns := []string{uniqueName("tb-race-a"), uniqueName("tb-race-b")}
	w := startWorld(t, testbed.Options{Functions: fns})
	ctx := t.Context()
	raced := fns[1]
	other := lambda.NewFromConfig(w.AWS)
	var fired atomic.Bool
	w.AWSFront.SetFault(func(r *http.Request) *testbed.Fault {
		if r.Method != http.MethodPut || r.URL.Path != "/2015-03-31/functions/"+raced+"/configuration" || !fired.CompareAndSwap(false, true) {
			return nil
		}
		cfg, err := other.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(raced)})
		if err != nil {
			t.Errorf("the other writer's read: %v", err)
			return nil
		}
		env := maps.Clone(cfg.Environment.Variables)
		env["FEATURE_FLAG"] = "on"
		if _, err := other.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(raced), Environment: &lambdatypes.Environment{Variables: env},
		}); err != nil {
			t.Errorf("the other writer's write: %v", err)
		}
		return nil
	})
	before, _, err := w.Env(ctx, raced)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	if err := w.SetSecrets(ctx, "new-primary", "old-primary"); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	if !fired.Load() {
		t.Fatal("the other writer never ran: the test proves nothing")
	}
	after, _, err := w.Env(ctx, raced)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	want := maps.Clone(before)
	want["FEATURE_FLAG"] = "on"
	want[w.Profile.SecretVar] = "new-primary"
	want[w.Profile.SecondaryVar] = "old-primary"
	if !maps.Equal(after, want) {
		t.Errorf("environment after the race:\n got  %q\n want %q", after, want)
	}
	// One write of the first function; for the second the other writer's,
	// SetSecrets's refused stale one and its retry.
	if n := w.AWSFront.Calls("lambda:UpdateFunctionConfiguration"); n != 4 {
		t.Errorf("%d UpdateFunctionConfiguration calls, want 4", n)
	}
}

func TestDefaultsAreRealisticAndUnique(t *testing.T) {
	t.Parallel()
	a := startWorld(t, testbed.Options{})
	b := startWorld(t, testbed.Options{})
	if a.Function == b.Function || a.InitialSecret() == b.InitialSecret() {
		t.Error("two default worlds share a function name or a secret")
	}
	if !strings.HasPrefix(a.Function, "valine-tb-") || a.LogGroup != "/aws/lambda/"+a.Function {
		t.Errorf("function %q, log group %q", a.Function, a.LogGroup)
	}
	env, _, err := a.Env(t.Context(), a.Function)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	for _, k := range []string{"NODE_ENV", "DATABASE_URL", "LOG_LEVEL", "CORS_ORIGIN", "AUTH_JWT_SECRET"} {
		if env[k] == "" {
			t.Errorf("default environment lacks %s", k)
		}
	}
	if _, has := env["AUTH_JWT_SECRET_SECONDARY"]; has {
		t.Error("a fresh world has a secondary secret")
	}
	if a.Profile.Name != "runbook" || a.ProbeEmail != "probe@valine.test" || a.ProbePassword == "" {
		t.Errorf("profile %q, probe user %q", a.Profile.Name, a.ProbeEmail)
	}
}

func TestSimulateUsersLeavesSuccessfulVerifications(t *testing.T) {
	t.Parallel()
	for _, preset := range []string{"runbook", "cookie"} {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			w := startWorld(t, testbed.Options{Profile: profile.Presets[preset]})
			if err := w.SimulateUsers(t.Context(), 3); err != nil {
				t.Fatalf("SimulateUsers: %v", err)
			}
			if got := len(logLines(t, w, "JWT verification ok secret=primary")); got != 3 {
				t.Errorf("%d successful verification lines, want 3", got)
			}
			if got := w.API.Requests(); got != 6 {
				t.Errorf("API served %d requests, want 6", got)
			}
		})
	}
}
