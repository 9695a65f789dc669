package testbed

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// This file holds the stack's template (what a deploy uploads) and its
// resolution (what CloudFormation makes of it at deploy time); the World's
// deploys are in world_deploy.go.

// logicalID names a function's resource as serverless does: dashes spelled
// "Dash", underscores "Underscore", the first letter upper case, then
// "LambdaFunction".
func logicalID(fn string) string {
	s := strings.NewReplacer("-", "Dash", "_", "Underscore").Replace(fn)
	s = strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return -1
	}, s)
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s + "LambdaFunction"
}

// cfnDoc is the template a deploy uploads: one AWS::Lambda::Function per
// function.
type cfnDoc struct {
	AWSTemplateFormatVersion string                  `json:"AWSTemplateFormatVersion"`
	Description              string                  `json:"Description"`
	Parameters               map[string]cfnParamDecl `json:"Parameters,omitempty"`
	Resources                map[string]cfnFunction  `json:"Resources"`
}

// cfnParamDecl declares a template parameter.
type cfnParamDecl struct {
	Type        string `json:"Type"`
	NoEcho      bool   `json:"NoEcho"`
	Description string `json:"Description"`
}

// cfnFunction is an AWS::Lambda::Function resource.
type cfnFunction struct {
	Type       string `json:"Type"`
	Properties struct {
		FunctionName string `json:"FunctionName"`
		Handler      string `json:"Handler"`
		Runtime      string `json:"Runtime"`
		Role         string `json:"Role"`
		Code         struct {
			S3Bucket string `json:"S3Bucket"`
			S3Key    string `json:"S3Key"`
		} `json:"Code"`
		Environment struct {
			// Variables hold strings (literals or dynamic references) and
			// {"Ref": name} maps.
			Variables map[string]any `json:"Variables"`
		} `json:"Environment"`
		Tags []cfnTag `json:"Tags,omitempty"`
	} `json:"Properties"`
}

// cfnTag is a resource tag in a template.
type cfnTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// templateValue is what the template holds for a reference: a dynamic
// reference, a Ref to a parameter, or (a literal) the deploy environment's
// value itself.
func templateValue(ref secretRef, deployEnv string) any {
	switch ref.kind {
	case refSSM:
		return "{{resolve:ssm-secure:" + ref.name + "}}"
	case refSecretsManager:
		if ref.stage != "" {
			return "{{resolve:secretsmanager:" + ref.name + ":SecretString::" + ref.stage + "}}"
		}
		return "{{resolve:secretsmanager:" + ref.name + ":SecretString}}"
	case refParam:
		return map[string]string{"Ref": ref.name}
	}
	return deployEnv
}

// template builds the template of deploy number n from the deploy
// environment's value: the variables of every function, ExtraEnv as
// literals and the secret variables as their references, and the code key
// of that deploy (serverless uploads each deploy's package under a new key,
// so every deploy updates every function).
func (w *World) template(deployEnv string, n int) cfnDoc {
	d := w.deploy
	doc := cfnDoc{
		AWSTemplateFormatVersion: "2010-09-09",
		Description:              "The Valine API (testbed), as serverless deploy packages it",
		Resources:                map[string]cfnFunction{},
	}
	if d.primary.kind == refParam {
		doc.Parameters = map[string]cfnParamDecl{d.primary.name: {
			Type: "String", NoEcho: true, Description: "The JWT signing secret, passed by each deploy",
		}}
	}
	var tags []cfnTag
	for _, k := range slices.Sorted(maps.Keys(w.opts.FunctionTags)) {
		tags = append(tags, cfnTag{Key: k, Value: w.opts.FunctionTags[k]})
	}
	for _, fn := range w.Functions {
		var res cfnFunction
		res.Type = "AWS::Lambda::Function"
		p := &res.Properties
		p.FunctionName, p.Handler, p.Runtime, p.Role = fn, "bootstrap", "provided.al2023", functionRole
		p.Code.S3Bucket = deployBucket
		p.Code.S3Key = fmt.Sprintf("serverless/%s/%d/valine.zip", d.name, n)
		vars := map[string]any{}
		for k, v := range w.opts.ExtraEnv {
			vars[k] = v
		}
		vars[w.Profile.SecretVar] = templateValue(d.primary, deployEnv)
		if d.secondary.kind != refLiteral {
			vars[w.Profile.SecondaryVar] = templateValue(d.secondary, deployEnv)
		}
		p.Environment.Variables = vars
		p.Tags = tags
		doc.Resources[d.logicalIDs[fn]] = res
	}
	return doc
}

// stackParams are the parameter values a deploy passes: the deploy
// environment's for a "param:" source.
func (w *World) stackParams(deployEnv string) []cfntypes.Parameter {
	if w.deploy.primary.kind != refParam {
		return nil
	}
	return []cfntypes.Parameter{{ParameterKey: aws.String(w.deploy.primary.name), ParameterValue: aws.String(deployEnv)}}
}

// dynamicRefRE matches a dynamic reference in a template string.
var dynamicRefRE = regexp.MustCompile(`\{\{resolve:([^{}]*)\}\}`)

// resolve computes every function's environment as CloudFormation does at
// deploy time: each {{resolve:ssm-secure:…}} is the parameter's latest
// value (a SecureString), each {{resolve:secretsmanager:…}} the secret's
// SecretString in the stage named (AWSCURRENT by default), each Ref the
// parameter value the deploy passed. Anything that resolves to nothing
// fails the whole deploy, before any function changes. Reads go through the
// World's own clients.
func (w *World) resolve(ctx context.Context, doc cfnDoc, params []cfntypes.Parameter) (map[string]map[string]string, error) {
	values := map[string]string{}
	for _, p := range params {
		values[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	resolved := map[string]string{} // one read per reference per deploy
	expand := func(s string) (string, error) {
		var failed error
		out := dynamicRefRE.ReplaceAllStringFunc(s, func(m string) string {
			inner := dynamicRefRE.FindStringSubmatch(m)[1]
			if v, ok := resolved[inner]; ok {
				return v
			}
			ref, err := parseDynamicRef(inner)
			if err == nil {
				var v string
				v, err = w.stores.read(ctx, ref, true)
				if err == nil {
					resolved[inner] = v
					return v
				}
			}
			if failed == nil {
				failed = fmt.Errorf("resolving {{resolve:%s}}: %w", inner, err)
			}
			return ""
		})
		return out, failed
	}
	envs := map[string]map[string]string{}
	for _, fn := range w.Functions {
		res := doc.Resources[w.deploy.logicalIDs[fn]]
		env := map[string]string{}
		for k, v := range res.Properties.Environment.Variables {
			switch v := v.(type) {
			case string:
				s, err := expand(v)
				if err != nil {
					return nil, fmt.Errorf("%s of %s: %w", k, fn, err)
				}
				env[k] = s
			case map[string]string:
				val, ok := values[v["Ref"]]
				if !ok {
					return nil, fmt.Errorf("%s of %s: parameter %s has no value", k, fn, v["Ref"])
				}
				env[k] = val
			}
		}
		envs[fn] = env
	}
	return envs, nil
}

// parseDynamicRef reads the inside of a {{resolve:…}} reference the World
// writes: "ssm-secure:NAME" or "secretsmanager:ID:SecretString[::STAGE]".
func parseDynamicRef(inner string) (secretRef, error) {
	if name, ok := strings.CutPrefix(inner, "ssm-secure:"); ok {
		return secretRef{kind: refSSM, name: name}, nil
	}
	if rest, ok := strings.CutPrefix(inner, "secretsmanager:"); ok {
		parts := strings.Split(rest, ":")
		if len(parts) >= 2 && parts[1] == "SecretString" && (len(parts) == 2 || len(parts) == 4 && parts[2] == "") {
			ref := secretRef{kind: refSecretsManager, name: parts[0]}
			if len(parts) == 4 {
				ref.stage = parts[3]
			}
			return ref, nil
		}
	}
	return secretRef{}, fmt.Errorf("dynamic reference %q is not one the testbed resolves", inner)
}
