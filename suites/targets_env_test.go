package suites

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/probes"
)

// TestDeploymentFromEnv checks how the suite reads a real deployment from
// the environment: what it requires, and that its errors never carry a secret.
func TestDeploymentFromEnv(t *testing.T) {
	const password, oldSecret = "pw-do-not-print", "old-secret-do-not-print"
	base := map[string]string{
		envAPIURL: "https://api.valine.example", envProbeEmail: "probe@valine.example",
		envProbePassword: password, envOldSecret: oldSecret,
	}
	tests := []struct {
		name    string
		set     map[string]string
		wantErr string // "" means success
	}{
		{name: "defaults to strict", set: nil},
		{name: "grace", set: map[string]string{envExpect: "grace"}},
		{name: "missing password", set: map[string]string{envProbePassword: ""}, wantErr: envProbePassword},
		{name: "bad expect", set: map[string]string{envExpect: "lenient"}, wantErr: envExpect},
		{name: "unknown profile", set: map[string]string{envProfile: "nope"}, wantErr: envProfile},
		{name: "bad since", set: map[string]string{envSince: "yesterday"}, wantErr: envSince},
		{name: "bad convergence", set: map[string]string{envConvergence: "soon"}, wantErr: envConvergence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.set {
				env[k] = v
			}
			before := time.Now()
			d, err := deploymentFromEnv(context.Background(), func(k string) string { return env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want one naming %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), oldSecret) {
					t.Fatal("the error carries a secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("deploymentFromEnv: %v", err)
			}
			if err := d.in.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			want := probes.Strict
			if env[envExpect] != "" {
				want = probes.Expect(env[envExpect])
			}
			if _, skip := d.stage(context.Background(), want); skip != "" {
				t.Errorf("stage(%s) skipped: %s", want, skip)
			}
			other := map[probes.Expect]probes.Expect{probes.Strict: probes.Grace, probes.Grace: probes.Strict}[want]
			if _, skip := d.stage(context.Background(), other); !strings.Contains(skip, envExpect) {
				t.Errorf("stage(%s) = skip %q; want a reason naming %s", other, skip, envExpect)
			}
			if c := d.in.Config; c.LogsUntil.Before(before) || !c.LogsSince.Before(c.LogsUntil) || d.in.Target.Logs != nil {
				t.Errorf("log window %s to %s, logs client %v; want one ending now, and no client without %s",
					c.LogsSince, c.LogsUntil, d.in.Target.Logs, envFunction)
			}
		})
	}
}
