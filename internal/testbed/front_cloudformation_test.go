package testbed_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/valine/valine-check/internal/testbed"
)

// cfnTemplate declares a NoEcho parameter, a plain one with a default, and
// one Lambda function named fn.
func cfnTemplate(fn, stamp string) string {
	return `{"AWSTemplateFormatVersion":"2010-09-09",` +
		`"Parameters":{"JwtSecret":{"Type":"String","NoEcho":true},"Stage":{"Type":"String","Default":"prod"}},` +
		`"Resources":{"AuthLambdaFunction":{"Type":"AWS::Lambda::Function","Properties":{` +
		`"FunctionName":"` + fn + `","Code":{"S3Bucket":"b","S3Key":"` + stamp + `"},` +
		`"Environment":{"Variables":{"JWT_SECRET":{"Ref":"JwtSecret"}}}}}}}`
}

func param(k, v string) cfntypes.Parameter {
	return cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)}
}

// validationError fails unless err is CloudFormation's ValidationError
// with a message containing want.
func validationError(t *testing.T, what string, err error, want string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationError" || !strings.Contains(ae.ErrorMessage(), want) {
		t.Errorf("%s: %v, want ValidationError %q", what, err, want)
	}
}

func TestCloudFormationParametersAreKeptAndNoEchoMasked(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	ctx := t.Context()
	cf := cloudformation.NewFromConfig(w.AWS)
	name := uniqueName("tb-cfn-params")
	tmpl := cfnTemplate("fn-"+name, "v1")
	secret := "cfn-param-secret-" + uniqueName("x")

	_, err := cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(tmpl)})
	validationError(t, "CreateStack without the NoEcho parameter", err, "Parameters: [JwtSecret] must have values")
	_, err = cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(tmpl),
		Parameters: []cfntypes.Parameter{param("JwtSecret", secret), param("Nope", "x")}})
	validationError(t, "CreateStack with an undeclared parameter", err, "Parameters: [Nope] do not exist in the template")

	out, err := cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(tmpl),
		Parameters: []cfntypes.Parameter{param("JwtSecret", secret)}})
	if err != nil {
		t.Fatalf("CreateStack: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cf.DeleteStack(t.Context(), &cloudformation.DeleteStackInput{StackName: aws.String(name)})
	})
	for _, by := range []string{name, aws.ToString(out.StackId)} {
		d, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(by)})
		if err != nil {
			t.Fatalf("DescribeStacks %s: %v", by, err)
		}
		s := d.Stacks[0]
		got := map[string]string{}
		for _, p := range s.Parameters {
			got[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
		}
		if len(got) != 2 || got["JwtSecret"] != "****" || got["Stage"] != "prod" {
			t.Errorf("DescribeStacks %s parameters = %v, want JwtSecret **** and Stage prod", by, got)
		}
		if s.LastUpdatedTime != nil {
			t.Errorf("DescribeStacks %s: LastUpdatedTime %v on a stack never updated", by, s.LastUpdatedTime)
		}
		g, err := cf.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(by)})
		if err != nil || aws.ToString(g.TemplateBody) != tmpl {
			t.Errorf("GetTemplate %s = %v, want the template", by, err)
		}
	}
}

func TestCloudFormationUpdateStack(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	ctx := t.Context()
	cf := cloudformation.NewFromConfig(w.AWS)
	name := uniqueName("tb-cfn-update")
	fn := "fn-" + name
	tmpl := cfnTemplate(fn, "v1")
	if _, err := cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(tmpl),
		Parameters: []cfntypes.Parameter{param("JwtSecret", "one")}}); err != nil {
		t.Fatalf("CreateStack: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cf.DeleteStack(t.Context(), &cloudformation.DeleteStackInput{StackName: aws.String(name)})
	})
	_, err := cf.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String(name), TemplateBody: aws.String(tmpl),
		Parameters: []cfntypes.Parameter{param("JwtSecret", "one")}})
	validationError(t, "UpdateStack changing nothing", err, "No updates are to be performed.")
	_, err = cf.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String(name), UsePreviousTemplate: aws.Bool(true),
		Parameters: []cfntypes.Parameter{{ParameterKey: aws.String("JwtSecret"), UsePreviousValue: aws.Bool(true)}}})
	validationError(t, "UpdateStack with every previous value", err, "No updates are to be performed.")

	if _, err := cf.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String(name), UsePreviousTemplate: aws.Bool(true),
		Parameters: []cfntypes.Parameter{param("JwtSecret", "two"), param("Stage", "dev")}}); err != nil {
		t.Fatalf("UpdateStack with the previous template: %v", err)
	}
	d, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeStacks: %v", err)
	}
	s := d.Stacks[0]
	if s.LastUpdatedTime == nil || s.StackStatus != cfntypes.StackStatusUpdateComplete {
		t.Errorf("after UpdateStack: LastUpdatedTime %v, status %s; want a time and UPDATE_COMPLETE", s.LastUpdatedTime, s.StackStatus)
	}
	for _, p := range s.Parameters {
		if k, v := aws.ToString(p.ParameterKey), aws.ToString(p.ParameterValue); k == "Stage" && v != "dev" || k == "JwtSecret" && v != "****" {
			t.Errorf("after UpdateStack: parameter %s = %q", k, v)
		}
	}
	g, err := cf.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(name)})
	if err != nil || aws.ToString(g.TemplateBody) != tmpl {
		t.Errorf("GetTemplate after UsePreviousTemplate = %v, want the same template", err)
	}
	r, err := cf.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: s.StackId})
	if err != nil || len(r.StackResources) != 1 {
		t.Fatalf("DescribeStackResources by id: %v", err)
	}
	if res := r.StackResources[0]; aws.ToString(res.PhysicalResourceId) != fn || aws.ToString(res.LogicalResourceId) != "AuthLambdaFunction" {
		t.Errorf("resource %s has physical id %s, want %s", aws.ToString(res.LogicalResourceId), aws.ToString(res.PhysicalResourceId), fn)
	}
}

func TestCloudFormationMissingStack(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	ctx := t.Context()
	cf := cloudformation.NewFromConfig(w.AWS)
	name := uniqueName("tb-cfn-missing")
	_, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	validationError(t, "DescribeStacks", err, "Stack with id "+name+" does not exist")
	_, err = cf.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(name)})
	validationError(t, "GetTemplate", err, "Stack with id "+name+" does not exist")
	_, err = cf.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String(name), TemplateBody: aws.String(cfnTemplate("f", "v"))})
	validationError(t, "UpdateStack", err, "Stack with id "+name+" does not exist")
	if _, err := cf.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(name)}); err != nil {
		t.Errorf("DeleteStack of a missing stack: %v, want success as on AWS", err)
	}
}
