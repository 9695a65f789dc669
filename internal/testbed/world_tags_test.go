package testbed_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/valine/valine-check/internal/testbed"
)

func TestFunctionTagsAreListedOnEveryFunction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tags map[string]string
	}{
		{"no tags", nil},
		{"tags", map[string]string{"app": "valine", "stage": "prod", "owner": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fns := []string{uniqueName("tb-tags-auth"), uniqueName("tb-tags-profiles"), uniqueName("tb-tags-media")}
			w := startWorld(t, testbed.Options{Functions: fns, FunctionTags: tt.tags})
			if len(w.Functions) != len(fns) || w.Function != fns[0] {
				t.Fatalf("World.Functions = %v, Function = %s; want %v, %s", w.Functions, w.Function, fns, fns[0])
			}
			c := lambda.NewFromConfig(w.AWS)
			for _, fn := range fns {
				cfg, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)})
				if err != nil {
					t.Fatalf("GetFunctionConfiguration %s: %v", fn, err)
				}
				out, err := c.ListTags(t.Context(), &lambda.ListTagsInput{Resource: cfg.FunctionArn})
				if err != nil {
					t.Fatalf("ListTags %s: %v", fn, err)
				}
				want := tt.tags
				if want == nil {
					want = map[string]string{}
				}
				if !maps.Equal(out.Tags, want) {
					t.Errorf("%s: tags %v, want %v", fn, out.Tags, want)
				}
			}
		})
	}
}

func TestFunctionTagsAreCopied(t *testing.T) {
	t.Parallel()
	tags := map[string]string{"app": "valine"}
	opts := testbed.Options{FunctionTags: tags}
	w := startWorld(t, opts)
	tags["app"] = "changed after Start"
	c := lambda.NewFromConfig(w.AWS)
	cfg, err := c.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(w.Function)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ListTags(t.Context(), &lambda.ListTagsInput{Resource: cfg.FunctionArn})
	if err != nil {
		t.Fatal(err)
	}
	if out.Tags["app"] != "valine" {
		t.Errorf("tag app = %q, want valine", out.Tags["app"])
	}
}

func TestStartRefusesBadFunctionOptions(t *testing.T) {
	t.Parallel()
	dup := uniqueName("tb-dup")
	tests := []struct {
		name string
		opts testbed.Options
	}{
		{"duplicate function", testbed.Options{Functions: []string{dup, dup}}},
		{"empty function name", testbed.Options{Functions: []string{uniqueName("tb-ok"), ""}}},
		{"empty tag key", testbed.Options{FunctionTags: map[string]string{"": "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			w, err := testbed.Start(ctx, tt.opts)
			if err == nil {
				w.Close()
				t.Fatal("Start accepted the options")
			}
		})
	}
}
