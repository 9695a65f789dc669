package testbed_test

import (
	"maps"
	"strings"
	"testing"

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
