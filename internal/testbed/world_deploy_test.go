package testbed_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/testbed"
)

// stackTemplate is the part of a World's template the tests read.
type stackTemplate struct {
	Parameters map[string]struct {
		Type   string
		NoEcho bool
	}
	Resources map[string]struct {
		Type       string
		Properties struct {
			FunctionName string
			Environment  struct{ Variables map[string]any }
		}
	}
}

// getTemplate reads the stack's template through CloudFormation and
// returns it raw and parsed.
func getTemplate(t *testing.T, w *testbed.World) (string, stackTemplate) {
	t.Helper()
	out, err := cloudformation.NewFromConfig(w.AWS).GetTemplate(t.Context(), &cloudformation.GetTemplateInput{StackName: aws.String(w.StackName)})
	if err != nil {
		t.Fatalf("GetTemplate: %v", err)
	}
	raw := aws.ToString(out.TemplateBody)
	var doc stackTemplate
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("the template is not JSON: %v", err)
	}
	return raw, doc
}

// envOf reads a function's environment or fails.
func envOf(t *testing.T, w *testbed.World, fn string) map[string]string {
	t.Helper()
	env, _, err := w.Env(t.Context(), fn)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// putParameter overwrites an SSM SecureString parameter, creating it.
func putParameter(t *testing.T, w *testbed.World, name, value string) {
	t.Helper()
	if _, err := ssm.NewFromConfig(w.AWS).PutParameter(t.Context(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true),
	}); err != nil {
		t.Fatalf("PutParameter %s: %v", name, err)
	}
}

// putSecret writes a new AWSCURRENT version of a secret.
func putSecret(t *testing.T, w *testbed.World, name, value string) {
	t.Helper()
	if _, err := secretsmanager.NewFromConfig(w.AWS).PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
	}); err != nil {
		t.Fatalf("PutSecretValue %s: %v", name, err)
	}
}

// redeploy runs World.Redeploy or fails.
func redeploy(t *testing.T, w *testbed.World) testbed.DeployResult {
	t.Helper()
	res, err := w.Redeploy(t.Context())
	if err != nil {
		t.Fatalf("Redeploy: %v", err)
	}
	return res
}

func TestStackManagedWorldIsTaggedAndTemplated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		source, second  func(base string) string
		want, wantExtra func(base string) any // the template's value of SecretVar and SecondaryVar
		showsSecret     bool
	}{
		{
			name:      "ssm",
			source:    func(b string) string { return "ssm:/" + b + "/jwt" },
			second:    func(b string) string { return "ssm:/" + b + "/jwt-secondary" },
			want:      func(b string) any { return "{{resolve:ssm-secure:/" + b + "/jwt}}" },
			wantExtra: func(b string) any { return "{{resolve:ssm-secure:/" + b + "/jwt-secondary}}" },
		},
		{
			name:      "secretsmanager",
			source:    func(b string) string { return "secretsmanager:" + b },
			second:    func(b string) string { return "secretsmanager:" + b + ":AWSPREVIOUS" },
			want:      func(b string) any { return "{{resolve:secretsmanager:" + b + ":SecretString}}" },
			wantExtra: func(b string) any { return "{{resolve:secretsmanager:" + b + ":SecretString::AWSPREVIOUS}}" },
		},
		{
			name:   "template parameter",
			source: func(string) string { return "param:JwtSecret" },
			second: func(string) string { return "" },
			want:   func(string) any { return map[string]any{"Ref": "JwtSecret"} },
		},
		{
			name:        "literal",
			source:      func(string) string { return "" },
			second:      func(string) string { return "" },
			showsSecret: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := uniqueName("tb-stack-src")
			fns := []string{uniqueName("tb-stack-auth"), uniqueName("tb-stack_profiles")}
			userTags := map[string]string{"app": "valine"}
			w := startWorld(t, testbed.Options{
				Functions: fns, FunctionTags: userTags,
				Deploy: &testbed.DeployOptions{Source: tt.source(base), SecondarySource: tt.second(base)},
			})
			if !strings.HasPrefix(w.StackName, "valine-tb-stack-") || !strings.Contains(w.StackID, ":stack/"+w.StackName+"/") {
				t.Fatalf("StackName %q, StackID %q", w.StackName, w.StackID)
			}
			p := w.Profile
			raw, doc := getTemplate(t, w)
			if got := strings.Contains(raw, w.InitialSecret()); got != tt.showsSecret {
				t.Errorf("the template shows the secret value: %v, want %v", got, tt.showsSecret)
			}
			lc := lambda.NewFromConfig(w.AWS)
			logicalIDs := map[string]string{}
			for id, res := range doc.Resources {
				if res.Type != "AWS::Lambda::Function" {
					t.Errorf("resource %s is a %s", id, res.Type)
				}
				logicalIDs[res.Properties.FunctionName] = id
				vars := res.Properties.Environment.Variables
				want := tt.want
				if want == nil {
					want = func(string) any { return w.InitialSecret() }
				}
				if got := vars[p.SecretVar]; fmt.Sprint(got) != fmt.Sprint(want(base)) {
					t.Errorf("%s: template %s = %v, want %v", id, p.SecretVar, got, want(base))
				}
				if tt.wantExtra != nil && fmt.Sprint(vars[p.SecondaryVar]) != fmt.Sprint(tt.wantExtra(base)) {
					t.Errorf("%s: template %s = %v, want %v", id, p.SecondaryVar, vars[p.SecondaryVar], tt.wantExtra(base))
				}
				if _, ok := vars[p.SecondaryVar]; tt.wantExtra == nil && ok {
					t.Errorf("%s: template sets %s with no secondary source", id, p.SecondaryVar)
				}
				if vars["NODE_ENV"] != "production" {
					t.Errorf("%s: template NODE_ENV = %v, want the ExtraEnv literal", id, vars["NODE_ENV"])
				}
			}
			if len(doc.Resources) != len(fns) {
				t.Errorf("the template has %d resources, want %d", len(doc.Resources), len(fns))
			}
			if tt.name == "template parameter" {
				if d := doc.Parameters["JwtSecret"]; d.Type != "String" || !d.NoEcho {
					t.Errorf("parameter JwtSecret declared %+v, want a NoEcho String", d)
				}
			}
			for _, fn := range fns {
				cfg, err := lc.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)})
				if err != nil {
					t.Fatal(err)
				}
				tags, err := lc.ListTags(t.Context(), &lambda.ListTagsInput{Resource: cfg.FunctionArn})
				if err != nil {
					t.Fatal(err)
				}
				want := maps.Clone(userTags)
				want["aws:cloudformation:stack-name"] = w.StackName
				want["aws:cloudformation:stack-id"] = w.StackID
				want["aws:cloudformation:logical-id"] = logicalIDs[fn]
				if logicalIDs[fn] == "" || !maps.Equal(tags.Tags, want) {
					t.Errorf("%s: tags %v, want %v", fn, tags.Tags, want)
				}
				env := cfg.Environment.Variables
				if env[p.SecretVar] != w.InitialSecret() {
					t.Errorf("%s: %s is not InitialSecret after the first deploy", fn, p.SecretVar)
				}
				if second, ok := env[p.SecondaryVar]; tt.wantExtra != nil && second != w.InitialSecret() || tt.wantExtra == nil && ok {
					t.Errorf("%s: %s set %v, want it only with a secondary source (holding InitialSecret)", fn, p.SecondaryVar, ok)
				}
			}
			r, err := cloudformation.NewFromConfig(w.AWS).DescribeStackResources(t.Context(), &cloudformation.DescribeStackResourcesInput{StackName: aws.String(w.StackID)})
			if err != nil {
				t.Fatalf("DescribeStackResources: %v", err)
			}
			var physical []string
			for _, res := range r.StackResources {
				physical = append(physical, aws.ToString(res.PhysicalResourceId))
			}
			if slices.Sort(physical); !slices.Equal(physical, slices.Sorted(slices.Values(fns))) {
				t.Errorf("the stack's physical resources are %v, want %v", physical, fns)
			}
		})
	}
}

func TestRedeployWritesTheSSMParameterAndRevertsHandEdits(t *testing.T) {
	t.Parallel()
	param := "/" + uniqueName("tb-stack-ssm") + "/jwt"
	fns := []string{uniqueName("tb-stack-a"), uniqueName("tb-stack-b"), uniqueName("tb-stack-c")}
	w := startWorld(t, testbed.Options{Functions: fns, Deploy: &testbed.DeployOptions{Source: "ssm:" + param}})
	p := w.Profile
	cf := cloudformation.NewFromConfig(w.AWS)
	before, err := cf.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(w.StackName)})
	if err != nil {
		t.Fatal(err)
	}
	initial := envOf(t, w, fns[0])

	rotated := "rotated-" + uniqueName("secret")
	putParameter(t, w, param, rotated)
	for _, fn := range fns {
		if envOf(t, w, fn)[p.SecretVar] != w.InitialSecret() {
			t.Fatalf("%s changed before any deploy", fn)
		}
	}
	res := redeploy(t, w)
	if !slices.Equal(res.Written, fns) || len(res.Unchanged) != 0 || len(res.Dropped) != 0 {
		t.Errorf("Redeploy = %+v, want every function written and nothing dropped", res)
	}
	if res.StackName != w.StackName || res.StackID != w.StackID {
		t.Errorf("Redeploy names stack %s %s, want %s %s", res.StackName, res.StackID, w.StackName, w.StackID)
	}
	for _, fn := range fns {
		want := maps.Clone(initial)
		want[p.SecretVar] = rotated
		if got := envOf(t, w, fn); !maps.Equal(got, want) {
			t.Errorf("%s after Redeploy: variables %v, want the template's with the parameter's new value", fn, slices.Sorted(maps.Keys(got)))
		}
	}
	after, err := cf.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(w.StackName)})
	if err != nil {
		t.Fatal(err)
	}
	if before.Stacks[0].LastUpdatedTime != nil || after.Stacks[0].LastUpdatedTime == nil {
		t.Errorf("LastUpdatedTime %v before and %v after Redeploy, want none and then a time", before.Stacks[0].LastUpdatedTime, after.Stacks[0].LastUpdatedTime)
	}
	if strings.Contains(fmt.Sprintf("%+v", res), rotated) || strings.Contains(fmt.Sprintf("%+v", res), w.InitialSecret()) {
		t.Error("the DeployResult shows a secret")
	}
	if raw, _ := getTemplate(t, w); strings.Contains(raw, rotated) || !strings.Contains(raw, "{{resolve:ssm-secure:"+param+"}}") {
		t.Error("the deployed template shows the parameter's value, or lost its reference")
	}

	// A hand edit on one function: the secret, an ExtraEnv value and a
	// variable the template lacks.
	edited := fns[1]
	if err := w.EditEnv(t.Context(), edited, func(env map[string]string) {
		env[p.SecretVar] = "hand-edited-" + uniqueName("secret")
		env["LOG_LEVEL"] = "debug"
		env["ADDED_BY_HAND"] = "1"
	}); err != nil {
		t.Fatal(err)
	}
	res = redeploy(t, w)
	if !slices.Equal(res.Written, []string{edited}) || !slices.Equal(res.Unchanged, []string{fns[0], fns[2]}) {
		t.Errorf("Redeploy wrote %v and left %v, want only %s written", res.Written, res.Unchanged, edited)
	}
	if got := res.Dropped[edited]; !slices.Equal(got, []string{"ADDED_BY_HAND"}) || len(res.Dropped) != 1 {
		t.Errorf("Redeploy dropped %v, want ADDED_BY_HAND from %s", res.Dropped, edited)
	}
	if got, want := envOf(t, w, edited), envOf(t, w, fns[0]); !maps.Equal(got, want) {
		t.Errorf("%s after Redeploy: %v, want the template's environment, as %s has", edited, slices.Sorted(maps.Keys(got)), fns[0])
	}

	// The API reads the new secret from the environment the deploy wrote.
	s := mustLogin(t, w)
	if !signedWith(s.access, rotated) {
		t.Error("after Redeploy the API does not sign with the parameter's value")
	}
}

func TestRedeployLiteralWritesTheDeployEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, source string }{
		{"literal", ""},
		{"template parameter", "param:JwtSecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := startWorld(t, testbed.Options{Backend: testbed.BackendValine, Busy: &testbed.BusyOptions{},
				Functions: []string{uniqueName("tb-stack-lit-a"), uniqueName("tb-stack-lit-b")},
				Deploy:    &testbed.DeployOptions{Source: tt.source}})
			p := w.Profile
			ci := "ci-secret-" + uniqueName("with-32-characters-or-more")
			w.SetDeployEnv(ci)
			res := redeploy(t, w)
			if !slices.Equal(res.Written, w.Functions) {
				t.Errorf("Redeploy wrote %v, want every function", res.Written)
			}
			for _, fn := range w.Functions {
				if envOf(t, w, fn)[p.SecretVar] != ci {
					t.Errorf("%s: %s is not the deploy environment's value", fn, p.SecretVar)
				}
			}
			raw, _ := getTemplate(t, w)
			if got := strings.Contains(raw, ci); got != (tt.source == "") {
				t.Errorf("the template holds the deploy environment's value: %v, want %v (only a literal does)", got, tt.source == "")
			}
			if tt.source != "" {
				d, err := cloudformation.NewFromConfig(w.AWS).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(w.StackName)})
				if err != nil || len(d.Stacks[0].Parameters) != 1 || aws.ToString(d.Stacks[0].Parameters[0].ParameterValue) != "****" {
					t.Errorf("DescribeStacks parameters %v (%v), want JwtSecret masked", d, err)
				}
			}

			// Without the variable the deploy fails and changes nothing.
			w.SetDeployEnv("")
			if _, err := w.Redeploy(t.Context()); err == nil || !strings.Contains(err.Error(), p.SecretVar) {
				t.Errorf("Redeploy with no %s in the deploy environment: %v, want an error naming it", p.SecretVar, err)
			}
			if envOf(t, w, w.Function)[p.SecretVar] != ci {
				t.Error("a failed deploy changed a function")
			}
		})
	}
}

func TestRedeploySecretsManagerStages(t *testing.T) {
	t.Parallel()
	name := uniqueName("tb-stack-sm")
	w := startWorld(t, testbed.Options{Deploy: &testbed.DeployOptions{
		Source: "secretsmanager:" + name, SecondarySource: "secretsmanager:" + name + ":AWSPREVIOUS",
	}})
	p := w.Profile
	rotated := "rotated-" + uniqueName("secret")
	putSecret(t, w, name, rotated)
	redeploy(t, w)
	env := envOf(t, w, w.Function)
	if env[p.SecretVar] != rotated || env[p.SecondaryVar] != w.InitialSecret() {
		t.Errorf("after Redeploy %s is the new value: %v, %s the previous one: %v", p.SecretVar, env[p.SecretVar] == rotated, p.SecondaryVar, env[p.SecondaryVar] == w.InitialSecret())
	}
	old := forge(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), "access", hour())
	if r := getProfile(t, w, old); r.status != http.StatusOK {
		t.Errorf("a token signed with the previous secret (now the secondary): %d, want 200", r.status)
	}
}

func TestRedeployFailsOnAReferenceToNothing(t *testing.T) {
	t.Parallel()
	param := "/" + uniqueName("tb-stack-gone") + "/jwt"
	w := startWorld(t, testbed.Options{Deploy: &testbed.DeployOptions{Source: "ssm:" + param}})
	cf := cloudformation.NewFromConfig(w.AWS)
	if _, err := ssm.NewFromConfig(w.AWS).DeleteParameter(t.Context(), &ssm.DeleteParameterInput{Name: aws.String(param)}); err != nil {
		t.Fatal(err)
	}
	_, err := w.Redeploy(t.Context())
	if err == nil || !strings.Contains(err.Error(), param) {
		t.Errorf("Redeploy with the parameter deleted: %v, want an error naming it", err)
	}
	d, derr := cf.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(w.StackName)})
	if derr != nil || d.Stacks[0].LastUpdatedTime != nil {
		t.Errorf("after a failed deploy the stack was updated (%v)", derr)
	}
	if envOf(t, w, w.Function)[w.Profile.SecretVar] != w.InitialSecret() {
		t.Error("a failed deploy changed the function")
	}

	// A String parameter does not satisfy ssm-secure either.
	if _, err := ssm.NewFromConfig(w.AWS).PutParameter(t.Context(), &ssm.PutParameterInput{
		Name: aws.String(param), Value: aws.String("plain"), Type: ssmtypes.ParameterTypeString,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Redeploy(t.Context()); err == nil || !strings.Contains(err.Error(), "SecureString") {
		t.Errorf("Redeploy with a String parameter: %v, want a SecureString error", err)
	}
}

func TestRedeployWithoutAStack(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	if _, err := w.Redeploy(t.Context()); !errors.Is(err, testbed.ErrNotStackManaged) {
		t.Errorf("Redeploy: %v, want ErrNotStackManaged", err)
	}
	if w.StackName != "" || w.StackID != "" {
		t.Errorf("StackName %q, StackID %q without Options.Deploy", w.StackName, w.StackID)
	}
}

func TestDeployAndRuntimeOptionsAreChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts testbed.Options
	}{
		{"unknown source kind", testbed.Options{Deploy: &testbed.DeployOptions{Source: "vault:/x"}}},
		{"empty ssm name", testbed.Options{Deploy: &testbed.DeployOptions{Source: "ssm:"}}},
		{"unknown stage", testbed.Options{Deploy: &testbed.DeployOptions{Source: "secretsmanager:x:AWSPENDING"}}},
		{"bad parameter name", testbed.Options{Deploy: &testbed.DeployOptions{Source: "param:jwt-secret"}}},
		{"secondary from a parameter", testbed.Options{Deploy: &testbed.DeployOptions{Source: "ssm:/x", SecondarySource: "param:X"}}},
		{"secondary without a variable", testbed.Options{Backend: testbed.BackendValine, Deploy: &testbed.DeployOptions{SecondarySource: "ssm:/x"}}},
		{"bad stack name", testbed.Options{Deploy: &testbed.DeployOptions{StackName: "1-stack"}}},
		{"runtime without a source", testbed.Options{RuntimeSecrets: &testbed.RuntimeSecrets{}}},
		{"runtime from a literal", testbed.Options{RuntimeSecrets: &testbed.RuntimeSecrets{Source: "param:X"}}},
		{"runtime secondary with valine", testbed.Options{Backend: testbed.BackendValine, RuntimeSecrets: &testbed.RuntimeSecrets{Source: "ssm:/x", SecondarySource: "ssm:/y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := testbed.Start(t.Context(), tt.opts)
			if err == nil {
				w.Close()
				t.Fatal("Start accepted the options")
			}
			if !strings.HasPrefix(err.Error(), "testbed options: ") {
				t.Errorf("Start: %v, want an options error", err)
			}
		})
	}
}

func TestStackWorldCloseDeletesStackAndStore(t *testing.T) {
	t.Parallel()
	param := "/" + uniqueName("tb-stack-close") + "/jwt"
	ctx := t.Context()
	w, err := testbed.Start(ctx, testbed.Options{Deploy: &testbed.DeployOptions{Source: "ssm:" + param}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := w.AWS
	stack := w.StackName
	w.Close()
	// The AWS front is gone with the World: read kumo's storage through a
	// new World.
	other := startWorld(t, testbed.Options{})
	cfg.BaseEndpoint = aws.String(other.AWSURL)
	if _, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param)}); err == nil {
		t.Error("the parameter outlived the World")
	}
	if _, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)}); err == nil {
		t.Error("the stack outlived the World")
	}
}
