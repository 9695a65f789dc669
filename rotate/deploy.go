package rotate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"go.yaml.in/yaml/v3"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

// The tags CloudFormation puts on every resource it creates.
const (
	StackNameTag = "aws:cloudformation:stack-name"
	LogicalIDTag = "aws:cloudformation:logical-id"
)

// ErrDeployDrift is returned when a rotation would change a stack-managed
// fleet without changing what the stack's next deploy writes: that deploy
// would silently put the old secret back.
var ErrDeployDrift = errors.New("the next deploy would undo this rotation")

// DeployAPI is the CloudFormation call deploy awareness makes.
type DeployAPI interface {
	GetTemplate(ctx context.Context, in *cloudformation.GetTemplateInput, optFns ...func(*cloudformation.Options)) (*cloudformation.GetTemplateOutput, error)
}

// SupplyKind is how a stack's template gives a function its secret
// variable.
type SupplyKind string

// The ways a template supplies the variable.
const (
	// SupplyReference: a dynamic reference ({{resolve:ssm-secure:…}},
	// {{resolve:secretsmanager:…}}) or an SSM-typed template parameter,
	// resolved by CloudFormation at each deploy from Supply.Source.
	SupplyReference SupplyKind = "reference"
	// SupplyParameter: a template parameter whose value the deploy passes.
	SupplyParameter SupplyKind = "parameter"
	// SupplyLiteral: a value written into the template, as the Serverless
	// Framework writes ${env:…} and ${ssm:…} once it has resolved them.
	SupplyLiteral SupplyKind = "literal"
	// SupplyAbsent: the template does not set the variable.
	SupplyAbsent SupplyKind = "absent"
	// SupplyUnknown: the template could not be read, or sets the variable
	// with an expression (Fn::Sub, Fn::If, …).
	SupplyUnknown SupplyKind = "unknown"
)

// Supply is how one function's secret variable comes from its stack.
type Supply struct {
	Kind SupplyKind
	// Source is the store a reference resolves from (zero otherwise).
	Source journal.Source
	// Parameter is the template parameter's name (SupplyParameter, or a
	// reference through an SSM-typed parameter).
	Parameter string
	// Literal is a literal's value, held as a Secret: it prints as a
	// fingerprint only.
	Literal secret.Secret
	// Detail says why the kind is unknown.
	Detail string
}

// String says how the variable is supplied, by fingerprint only.
func (s Supply) String() string {
	switch s.Kind {
	case SupplyReference:
		if s.Parameter != "" {
			return fmt.Sprintf("the SSM-typed parameter %s, resolved from %s at each deploy", s.Parameter, s.Source)
		}
		return fmt.Sprintf("a dynamic reference to %s, resolved at each deploy", s.Source)
	case SupplyParameter:
		return fmt.Sprintf("the template parameter %s (whatever the deploy passes)", s.Parameter)
	case SupplyLiteral:
		return fmt.Sprintf("a literal %s in the template (the deploy resolved it before CloudFormation: serverless's ${env:…} or ${ssm:…})", s.Literal)
	case SupplyAbsent:
		return "nothing: the template does not set it, so the next deploy removes it"
	}
	return "could not tell (" + s.Detail + ")"
}

// StackDeploy is the part of a fleet one CloudFormation stack deploys.
type StackDeploy struct {
	Stack string
	// Functions are the fleet's functions the stack deploys, in fleet
	// order, and Supplies how the template gives each its secret variable.
	Functions []string
	Supplies  map[string]Supply
}

// Supply is the functions' common supply, or false when they differ.
func (d StackDeploy) Supply() (Supply, bool) {
	var first Supply
	for i, fn := range d.Functions {
		s := d.Supplies[fn]
		if i == 0 {
			first = s
			continue
		}
		if s.Kind != first.Kind || s.Source != first.Source || s.Parameter != first.Parameter || !s.Literal.Equal(first.Literal) {
			return Supply{}, false
		}
	}
	return first, len(d.Functions) > 0
}

// String says which stack deploys which functions and how it supplies the
// variable named v.
func (d StackDeploy) String(v string) string {
	head := fmt.Sprintf("stack %s deploys %s", d.Stack, plural(len(d.Functions), "function"))
	if s, same := d.Supply(); same {
		return fmt.Sprintf("%s; its template gives %s %s", head, v, s)
	}
	var parts []string
	for _, fn := range d.Functions {
		parts = append(parts, fmt.Sprintf("%s: %s", fn, d.Supplies[fn]))
	}
	return fmt.Sprintf("%s; its template gives %s differently: %s", head, v, strings.Join(parts, "; "))
}

// Stacks groups the fleet's stack-managed functions by stack (sorted by
// name); a fleet with none returns nil.
func (f FleetState) Stacks() []StackDeploy {
	var out []StackDeploy
	for _, fn := range f.Functions {
		if fn.Stack == "" {
			continue
		}
		i := slices.IndexFunc(out, func(d StackDeploy) bool { return d.Stack == fn.Stack })
		if i < 0 {
			out = append(out, StackDeploy{Stack: fn.Stack, Supplies: map[string]Supply{}})
			i = len(out) - 1
		}
		out[i].Functions = append(out[i].Functions, fn.Name)
	}
	slices.SortFunc(out, func(a, b StackDeploy) int { return strings.Compare(a.Stack, b.Stack) })
	return out
}

// DescribeDeploys returns the fleet's stacks with how each template
// supplies p.SecretVar, read with GetTemplate (the template as last
// deployed). A template that cannot be read leaves its functions'
// supplies unknown, saying why; api nil reads no template.
func DescribeDeploys(ctx context.Context, api DeployAPI, f FleetState, p profile.Profile) []StackDeploy {
	stacks := f.Stacks()
	logical := map[string]string{}
	for _, fn := range f.Functions {
		logical[fn.Name] = fn.LogicalID
	}
	for i := range stacks {
		d := &stacks[i]
		tpl, err := readTemplate(ctx, api, d.Stack)
		for _, fn := range d.Functions {
			if err != nil {
				d.Supplies[fn] = Supply{Kind: SupplyUnknown, Detail: err.Error()}
				continue
			}
			d.Supplies[fn] = tpl.supply(logical[fn], fn, p.SecretVar)
		}
	}
	return stacks
}

// template is a CloudFormation template as generic data.
type template struct {
	Parameters map[string]any
	Resources  map[string]any
	Globals    map[string]any
}

// readTemplate reads a stack's template (JSON or YAML, CloudFormation's
// short-form tags included).
func readTemplate(ctx context.Context, api DeployAPI, stack string) (template, error) {
	if api == nil {
		return template{}, errors.New("no CloudFormation client")
	}
	out, err := api.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(stack), TemplateStage: cfntypes.TemplateStageOriginal})
	if err != nil {
		return template{}, fmt.Errorf("reading the template of stack %s: %w", stack, err)
	}
	body := aws.ToString(out.TemplateBody)
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		var node yaml.Node
		if yerr := yaml.Unmarshal([]byte(body), &node); yerr != nil {
			return template{}, fmt.Errorf("the template of stack %s is neither JSON nor YAML: %v", stack, yerr)
		}
		m, ok := fromYAML(&node).(map[string]any)
		if !ok {
			return template{}, fmt.Errorf("the template of stack %s is not a mapping", stack)
		}
		doc = m
	}
	t := template{}
	t.Parameters, _ = doc["Parameters"].(map[string]any)
	t.Resources, _ = doc["Resources"].(map[string]any)
	t.Globals, _ = doc["Globals"].(map[string]any)
	return t, nil
}

// fromYAML turns a YAML node into generic data, turning CloudFormation's
// short forms (!Ref X, !Sub …) into their long forms ({"Ref": X},
// {"Fn::Sub": …}).
func fromYAML(n *yaml.Node) any {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return fromYAML(n.Content[0])
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = fromYAML(n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		var s []any
		for _, c := range n.Content {
			s = append(s, fromYAML(c))
		}
		v = s
	case yaml.AliasNode:
		return fromYAML(n.Alias)
	default:
		v = n.Value
	}
	if tag, ok := strings.CutPrefix(n.Tag, "!"); ok && !strings.HasPrefix(tag, "!") {
		if tag == "Ref" {
			return map[string]any{"Ref": v}
		}
		return map[string]any{"Fn::" + tag: v}
	}
	return v
}

// dynamicReference matches CloudFormation's {{resolve:service:name…}}.
var dynamicReference = regexp.MustCompile(`^\{\{resolve:(ssm|ssm-secure|secretsmanager):([^:}]+)(:[^}]*)?\}\}$`)

// supply is how the template gives the function (by logical id, else by
// FunctionName) variable v.
func (t template) supply(logicalID, name, v string) Supply {
	props := t.functionProperties(logicalID, name)
	if props == nil {
		return Supply{Kind: SupplyUnknown, Detail: fmt.Sprintf("no function resource for %s in the template", name)}
	}
	val, ok := variables(props)[v]
	if !ok {
		if g, _ := t.Globals["Function"].(map[string]any); g != nil {
			val, ok = variables(g)[v]
		}
	}
	if !ok {
		return Supply{Kind: SupplyAbsent}
	}
	switch x := val.(type) {
	case string:
		if m := dynamicReference.FindStringSubmatch(x); m != nil {
			kind := journal.SourceSSM
			if m[1] == "secretsmanager" {
				kind = journal.SourceSecretsManager
			}
			return Supply{Kind: SupplyReference, Source: journal.Source{Kind: kind, Name: m[2]}}
		}
		return Supply{Kind: SupplyLiteral, Literal: secret.NewSecret(x)}
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok && len(x) == 1 {
			param, _ := t.Parameters[ref].(map[string]any)
			if typ, _ := param["Type"].(string); strings.HasPrefix(typ, "AWS::SSM::Parameter::Value") {
				def, _ := param["Default"].(string)
				return Supply{Kind: SupplyReference, Parameter: ref, Source: journal.Source{Kind: journal.SourceSSM, Name: def}}
			}
			return Supply{Kind: SupplyParameter, Parameter: ref}
		}
		for k := range x {
			return Supply{Kind: SupplyUnknown, Detail: "an expression (" + k + ")"}
		}
	}
	return Supply{Kind: SupplyUnknown, Detail: fmt.Sprintf("a %T", val)}
}

// functionProperties finds the function's resource properties.
func (t template) functionProperties(logicalID, name string) map[string]any {
	isFunction := func(r map[string]any) bool {
		typ, _ := r["Type"].(string)
		return typ == "AWS::Lambda::Function" || typ == "AWS::Serverless::Function"
	}
	if r, _ := t.Resources[logicalID].(map[string]any); r != nil && isFunction(r) {
		props, _ := r["Properties"].(map[string]any)
		return props
	}
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		r, _ := t.Resources[id].(map[string]any)
		if r == nil || !isFunction(r) {
			continue
		}
		props, _ := r["Properties"].(map[string]any)
		if fn, _ := props["FunctionName"].(string); fn == name {
			return props
		}
	}
	return nil
}

// variables is Environment.Variables of a function's properties.
func variables(props map[string]any) map[string]any {
	env, _ := props["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	return vars
}

// checkDeploy refuses a rotation that the fleet's next deploy would undo:
// a stack-managed fleet rotated in its environment alone (source
// lambda-env), or one whose template reads a store other than src. allow
// (--allow-deploy-drift) lets it go ahead. The message names the stacks
// and the source to use.
func checkDeploy(stacks []StackDeploy, src journal.Source, v string, allow bool) error {
	if allow || len(stacks) == 0 {
		return nil
	}
	var why []string
	suggest := ""
	for _, d := range stacks {
		s, same := d.Supply()
		switch {
		case !src.IsStore():
			why = append(why, d.String(v))
			if same && s.Kind == SupplyReference {
				suggest = s.Source.String()
			}
		case same && s.Kind == SupplyReference && s.Source != src:
			why = append(why, d.String(v)+", not from "+src.String())
			suggest = s.Source.String()
		}
	}
	if len(why) == 0 {
		return nil
	}
	use := "--source ssm:/name or --source secretsmanager:name, naming what the deploy reads"
	if suggest != "" {
		use = "--source " + suggest
	}
	return fmt.Errorf("%w: %s. Rotate with %s, or give --allow-deploy-drift to change the functions alone (and expect the next deploy to revert them); nothing was changed",
		ErrDeployDrift, strings.Join(why, "; "), use)
}
