package testbed_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/testbed"
)

// runtimeTTL is the cache lifetime of the runtime tests, and runtimeWait
// how long they wait for a store change to show.
const (
	runtimeTTL  = 200 * time.Millisecond
	runtimeWait = 5 * time.Second
)

// acceptsSignedWith reports whether the reference API accepts an access
// token signed with secret on its profile endpoint.
func acceptsSignedWith(t *testing.T, w *testbed.World, secret string) bool {
	t.Helper()
	return getProfile(t, w, forge(t, jwt.SigningMethodHS256, []byte(secret), "access", hour())).status == http.StatusOK
}

// deleteParameter deletes an SSM parameter or fails.
func deleteParameter(t *testing.T, w *testbed.World, name string) {
	t.Helper()
	if _, err := ssm.NewFromConfig(w.AWS).DeleteParameter(t.Context(), &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatalf("DeleteParameter %s: %v", name, err)
	}
}

func TestRuntimeSecretsFromSSM(t *testing.T) {
	t.Parallel()
	param := "/" + uniqueName("tb-runtime-ssm") + "/jwt"
	second := param + "-secondary"
	w := startWorld(t, testbed.Options{RuntimeSecrets: &testbed.RuntimeSecrets{
		Source: "ssm:" + param, SecondarySource: "ssm:" + second, CacheTTL: runtimeTTL,
	}})
	initial := w.InitialSecret()
	if !acceptsSignedWith(t, w, initial) || acceptsSignedWith(t, w, "attacker-"+uniqueName("x")) {
		t.Fatal("at start the API must accept InitialSecret (the parameter the World created) and nothing else")
	}

	// The function's environment is not where the API reads.
	envOnly := "env-only-" + uniqueName("secret")
	if err := w.SetSecrets(t.Context(), envOnly, ""); err != nil {
		t.Fatal(err)
	}
	if acceptsSignedWith(t, w, envOnly) || !acceptsSignedWith(t, w, initial) {
		t.Error("the API followed the function's environment instead of the store")
	}

	rotated := "rotated-" + uniqueName("secret")
	putParameter(t, w, param, rotated)
	eventually(t, runtimeWait, "a token signed with the parameter's new value", func() bool { return acceptsSignedWith(t, w, rotated) })
	if acceptsSignedWith(t, w, initial) {
		t.Error("the old secret is accepted with no secondary parameter")
	}
	if s := mustLogin(t, w); !signedWith(s.access, rotated) {
		t.Error("login does not sign with the parameter's new value")
	}

	putParameter(t, w, second, initial)
	eventually(t, runtimeWait, "the old secret, now the secondary parameter", func() bool { return acceptsSignedWith(t, w, initial) })
	deleteParameter(t, w, second)
	eventually(t, runtimeWait, "the old secret refused once the secondary is deleted", func() bool { return !acceptsSignedWith(t, w, initial) })
	if !acceptsSignedWith(t, w, rotated) {
		t.Error("a missing secondary broke the primary")
	}

	if got := w.AWSFront.ClientCalls("ssm:GetParameter"); got != 0 {
		t.Errorf("ClientCalls(ssm:GetParameter) = %d: the API's own reads are counted as the client's", got)
	}
	if w.AWSFront.Calls("ssm:GetParameter") == 0 {
		t.Error("the API never read the store")
	}

	// No primary: the API cannot sign.
	deleteParameter(t, w, param)
	eventually(t, runtimeWait, "login failing with no primary parameter", func() bool {
		r, _ := login(t, w, w.ProbeEmail, w.ProbePassword)
		return r.status == http.StatusInternalServerError
	})
}

func TestRuntimeSecretsCacheTTL(t *testing.T) {
	t.Parallel()
	param := "/" + uniqueName("tb-runtime-ttl") + "/jwt"
	w := startWorld(t, testbed.Options{RuntimeSecrets: &testbed.RuntimeSecrets{Source: "ssm:" + param}})
	initial := w.InitialSecret()

	// The default lifetime (5 minutes) outlasts the test: the value read at
	// start is served.
	rotated := "rotated-" + uniqueName("secret")
	putParameter(t, w, param, rotated)
	if acceptsSignedWith(t, w, rotated) || !acceptsSignedWith(t, w, initial) {
		t.Error("the API read the store again within the cache lifetime")
	}
	w.API.SetCacheTTL(runtimeTTL)
	eventually(t, runtimeWait, "the new value once the shorter lifetime passed", func() bool { return acceptsSignedWith(t, w, rotated) })

	// Negative: every request reads the store.
	w.API.SetCacheTTL(-1)
	third := "third-" + uniqueName("secret")
	putParameter(t, w, param, third)
	if !acceptsSignedWith(t, w, third) {
		t.Error("with no cache the API did not read the store on the next request")
	}
}

func TestRuntimeSecretsFromSecretsManagerWithAWSPREVIOUS(t *testing.T) {
	t.Parallel()
	name := uniqueName("tb-runtime-sm")
	w := startWorld(t, testbed.Options{RuntimeSecrets: &testbed.RuntimeSecrets{
		Source: "secretsmanager:" + name, SecondarySource: "secretsmanager:" + name + ":AWSPREVIOUS", CacheTTL: runtimeTTL,
	}})
	initial := w.InitialSecret()
	if !acceptsSignedWith(t, w, initial) || acceptsSignedWith(t, w, "attacker-"+uniqueName("x")) {
		t.Fatal("at start (one version, no AWSPREVIOUS) the API must accept InitialSecret and nothing else")
	}
	rotated := "rotated-" + uniqueName("secret")
	putSecret(t, w, name, rotated)
	eventually(t, runtimeWait, "a token signed with the new AWSCURRENT", func() bool { return acceptsSignedWith(t, w, rotated) })
	if !acceptsSignedWith(t, w, initial) {
		t.Error("a token signed with the previous value (AWSPREVIOUS) is refused")
	}
	third := "third-" + uniqueName("secret")
	putSecret(t, w, name, third)
	eventually(t, runtimeWait, "the next rotation", func() bool { return acceptsSignedWith(t, w, third) })
	if !acceptsSignedWith(t, w, rotated) || acceptsSignedWith(t, w, initial) {
		t.Error("after a second rotation the API must accept AWSCURRENT and AWSPREVIOUS, and refuse the version before")
	}
	if got := w.AWSFront.ClientCalls("secretsmanager:GetSecretValue"); got != 0 {
		t.Errorf("ClientCalls(secretsmanager:GetSecretValue) = %d: the API's own reads are counted as the client's", got)
	}
}

func TestRuntimeSecretsValineBackend(t *testing.T) {
	t.Parallel()
	param := "/" + uniqueName("tb-runtime-valine") + "/jwt"
	w := startValine(t, testbed.Options{RuntimeSecrets: &testbed.RuntimeSecrets{Source: "ssm:" + param, CacheTTL: runtimeTTL}})
	_, id := valineLogin(t, w)
	accepts := func(secret string) bool {
		token := forgeClaims(t, jwt.SigningMethodHS256, []byte(secret), valineToken(id, "access", hour()))
		return me(t, w, w.Profile.ProfilePath, token, "", "").status == http.StatusOK
	}
	initial := w.InitialSecret()
	if !accepts(initial) {
		t.Fatal("at start the valine backend refuses InitialSecret")
	}

	// A new execution environment starts, but the secret still comes from
	// the store.
	envOnly := "env-only-" + uniqueName("secret-of-32-characters-at-least")
	if err := w.EditEnv(t.Context(), w.Function, func(env map[string]string) { env[w.Profile.SecretVar] = envOnly }); err != nil {
		t.Fatal(err)
	}
	if accepts(envOnly) || !accepts(initial) {
		t.Error("the valine backend followed the function's environment instead of the store")
	}

	rotated := "rotated-" + uniqueName("secret-of-32-characters-at-least")
	putParameter(t, w, param, rotated)
	eventually(t, runtimeWait, "a token signed with the parameter's new value", func() bool { return accepts(rotated) })
	if accepts(initial) {
		t.Error("the valine backend still accepts the old secret (it knows one)")
	}

	putParameter(t, w, param, "short")
	eventually(t, runtimeWait, "500 for a secret under 32 characters", func() bool {
		r, _ := login(t, w, w.ProbeEmail, w.ProbePassword)
		return r.status == http.StatusInternalServerError
	})
	if got := w.AWSFront.ClientCalls("ssm:GetParameter"); got != 0 {
		t.Errorf("ClientCalls(ssm:GetParameter) = %d: the API's own reads are counted as the client's", got)
	}
}

func TestRuntimeSecretsWithAStack(t *testing.T) {
	t.Parallel()
	param := "/" + uniqueName("tb-runtime-stack") + "/jwt"
	w := startWorld(t, testbed.Options{
		Deploy:         &testbed.DeployOptions{Source: "ssm:" + param},
		RuntimeSecrets: &testbed.RuntimeSecrets{Source: "ssm:" + param, CacheTTL: runtimeTTL},
	})
	rotated := "rotated-" + uniqueName("secret")
	putParameter(t, w, param, rotated)
	// The API sees the store change before any deploy reaches the functions.
	eventually(t, runtimeWait, "the new value before a deploy", func() bool { return acceptsSignedWith(t, w, rotated) })
	if envOf(t, w, w.Function)[w.Profile.SecretVar] != w.InitialSecret() {
		t.Error("the functions changed without a deploy")
	}
	redeploy(t, w)
	if envOf(t, w, w.Function)[w.Profile.SecretVar] != rotated {
		t.Error("Redeploy did not write the parameter's value")
	}
}
