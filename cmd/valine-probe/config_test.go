package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over a map.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// validEnv is the least a deployment sets.
func validEnv() map[string]string {
	return map[string]string{
		envAPIURL:        "https://api.valine.example",
		envDeployment:    "valine-api-prod",
		envProbeSecretID: "valine/probe-credentials",
	}
}

func TestConfigFromEnvDefaults(t *testing.T) {
	t.Parallel()
	c, err := configFromEnv(env(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.profile.Name != "runbook" || c.namespace != "" || c.backupSecret != "" || c.credsTTL != 5*time.Minute ||
		c.checkTimeout != 10*time.Second || c.convergence != 20*time.Second || c.concurrency != 8 || c.logLevel != slog.LevelInfo {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		set     map[string]string
		unset   []string
		wantErr []string
		check   func(t *testing.T, c config)
	}{
		{name: "everything set", set: map[string]string{
			envProfile: "cookie", envProfileJSON: `{"profilePath":"/api/auth/me","rejectStatus":403}`,
			envBackupSecret: "valine-check/pv-api-prod-", envNamespace: "Acme/Probe", envCredsTTL: "1m",
			envCheckTimeout: "5s", envConvergence: "45s", envConcurrency: "2", envLogLevel: "debug",
		}, check: func(t *testing.T, c config) {
			if c.profile.Name != "cookie+overrides" || c.profile.ProfilePath != "/api/auth/me" || c.profile.RejectStatus != 403 ||
				c.backupSecret != "valine-check/pv-api-prod-" || c.namespace != "Acme/Probe" || c.credsTTL != time.Minute ||
				c.checkTimeout != 5*time.Second || c.convergence != 45*time.Second || c.concurrency != 2 || c.logLevel != slog.LevelDebug {
				t.Errorf("%+v", c)
			}
		}},
		{name: "namespace under its other name", set: map[string]string{envNamespaceAlt: "Acme/Other"},
			check: func(t *testing.T, c config) {
				if c.namespace != "Acme/Other" {
					t.Errorf("namespace %q", c.namespace)
				}
			}},
		{name: "required missing", unset: []string{envAPIURL, envDeployment, envProbeSecretID},
			wantErr: []string{envAPIURL + " is required", envProbeSecretID + " is required", "Deployment dimension is empty"}},
		{name: "not a URL", set: map[string]string{envAPIURL: "api.valine.example"}, wantErr: []string{"not an http(s) URL"}},
		{name: "AWS namespace", set: map[string]string{envNamespace: "AWS/Lambda"}, wantErr: []string{"reserved"}},
		{name: "unknown preset", set: map[string]string{envProfile: "graphql"}, wantErr: []string{"unknown preset"}},
		{name: "unknown profile field", set: map[string]string{envProfileJSON: `{"profilePth":"/me"}`}, wantErr: []string{envProfileJSON, "profilePth"}},
		{name: "invalid profile", set: map[string]string{envProfileJSON: `{"rejectStatus":200}`}, wantErr: []string{"rejectStatus 200"}},
		{name: "a source of truth", set: map[string]string{envBackupSecret: "valine-check/pv-api-prod-", envSource: "ssm:/valine/prod/jwt-secret"},
			check: func(t *testing.T, c config) {
				if c.source.String() != "ssm:/valine/prod/jwt-secret" {
					t.Errorf("source %s", c.source)
				}
			}},
		{name: "a source without a backup", set: map[string]string{envSource: "secretsmanager:valine/prod/jwt-secret"}, wantErr: []string{envSource + " needs " + envBackupSecret}},
		{name: "a bad source", set: map[string]string{envBackupSecret: "b", envSource: "ssm:/aws/x"}, wantErr: []string{envSource, "not an SSM parameter name"}},
		{name: "lambda-env as the source", set: map[string]string{envBackupSecret: "b", envSource: "lambda-env"}, wantErr: []string{"want ssm:/name or secretsmanager:name"}},
		{name: "bad durations and numbers", set: map[string]string{envCredsTTL: "5", envCheckTimeout: "-1s", envConcurrency: "0", envLogLevel: "loud"},
			wantErr: []string{envCredsTTL, envCheckTimeout, envConcurrency, envLogLevel}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := validEnv()
			for k, v := range tc.set {
				m[k] = v
			}
			for _, k := range tc.unset {
				delete(m, k)
			}
			c, err := configFromEnv(env(m))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, c)
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}
