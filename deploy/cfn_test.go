package deploy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// template is deploy/template.yaml evaluated for one set of parameters:
// CloudFormation's short-form intrinsic functions (!Ref, !Sub, !GetAtt,
// !If, !Equals, !Not) are resolved the way CloudFormation resolves them,
// so a test reads the values a stack would get.
type template struct {
	params     map[string]string
	conditions map[string]bool
	resources  map[string]map[string]any // logical id -> evaluated resource
	raw        map[string]any            // the evaluated document
}

// noValue is AWS::NoValue: the member or element holding it disappears.
type noValue struct{}

// pseudo are the pseudo parameters a test stack has.
var pseudo = map[string]string{
	"AWS::StackName": "valine-probe-test", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012",
	"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
}

// loadTemplate parses the template and evaluates it with its parameters'
// defaults overridden by params. Unknown tags, references to nothing and
// parameters without a value fail the test.
func loadTemplate(t *testing.T, params map[string]string) *template {
	t.Helper()
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("template.yaml is not YAML: %v", err)
	}
	root := doc.Content[0]
	tp := &template{params: map[string]string{}, conditions: map[string]bool{}, resources: map[string]map[string]any{}}
	ev := &evaluator{t: t, tp: tp, resourceIDs: map[string]bool{}}
	// Parameters: defaults, then the overrides.
	for name, p := range mapping(t, member(t, root, "Parameters")) {
		if d := memberOrNil(p, "Default"); d != nil {
			tp.params[name] = d.Value
		}
	}
	for k, v := range params {
		if _, declared := mapping(t, member(t, root, "Parameters"))[k]; !declared {
			t.Fatalf("parameter %s is not declared", k)
		}
		tp.params[k] = v
	}
	for name := range mapping(t, member(t, root, "Parameters")) {
		if _, ok := tp.params[name]; !ok {
			t.Fatalf("parameter %s has no default and no value in this test", name)
		}
	}
	for id := range mapping(t, member(t, root, "Resources")) {
		ev.resourceIDs[id] = true
	}
	// Conditions may refer to each other; evaluate on demand.
	ev.condNodes = mapping(t, member(t, root, "Conditions"))
	for name := range ev.condNodes {
		ev.condition(name)
	}
	tp.raw = ev.eval(root).(map[string]any)
	for id, r := range tp.raw["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if c, ok := res["Condition"].(string); ok && !tp.conditions[c] {
			continue // not created
		}
		tp.resources[id] = res
	}
	return tp
}

type evaluator struct {
	t           *testing.T
	tp          *template
	resourceIDs map[string]bool
	condNodes   map[string]*yaml.Node
	evaluating  map[string]bool
}

func (e *evaluator) condition(name string) bool {
	if v, ok := e.tp.conditions[name]; ok {
		return v
	}
	n, ok := e.condNodes[name]
	if !ok {
		e.t.Fatalf("condition %s is not declared", name)
	}
	if e.evaluating == nil {
		e.evaluating = map[string]bool{}
	}
	if e.evaluating[name] {
		e.t.Fatalf("condition %s refers to itself", name)
	}
	e.evaluating[name] = true
	v, ok := e.eval(n).(bool)
	if !ok {
		e.t.Fatalf("condition %s is not a boolean", name)
	}
	e.tp.conditions[name] = v
	return v
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

// eval resolves a node to Go values: map[string]any, []any, string, bool.
func (e *evaluator) eval(n *yaml.Node) any {
	t := e.t
	switch n.Tag {
	case "!Ref":
		return e.ref(n.Value)
	case "!Sub":
		if n.Kind != yaml.ScalarNode {
			t.Fatalf("line %d: only the one-argument !Sub is supported", n.Line)
		}
		return subVar.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			if res, attr, ok := strings.Cut(name, "."); ok && e.resourceIDs[res] {
				return "getatt:" + res + "." + attr
			}
			v, ok := e.ref(name).(string)
			if !ok || strings.HasPrefix(v, "ref:") {
				t.Fatalf("line %d: !Sub ${%s} does not name a parameter or pseudo parameter", n.Line, name)
			}
			return v
		})
	case "!GetAtt":
		res, _, _ := strings.Cut(n.Value, ".")
		if !e.resourceIDs[res] {
			t.Fatalf("line %d: !GetAtt %s names no resource", n.Line, n.Value)
		}
		return "getatt:" + n.Value
	case "!If":
		args := n.Content
		if n.Kind != yaml.SequenceNode || len(args) != 3 {
			t.Fatalf("line %d: !If takes [condition, then, else]", n.Line)
		}
		if e.condition(args[0].Value) {
			return e.eval(args[1])
		}
		return e.eval(args[2])
	case "!Equals":
		if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
			t.Fatalf("line %d: !Equals takes two values", n.Line)
		}
		return fmt.Sprint(e.eval(n.Content[0])) == fmt.Sprint(e.eval(n.Content[1]))
	case "!Not":
		if n.Kind != yaml.SequenceNode || len(n.Content) != 1 {
			t.Fatalf("line %d: !Not takes one condition", n.Line)
		}
		v, ok := e.eval(n.Content[0]).(bool)
		if !ok {
			t.Fatalf("line %d: !Not of a non-boolean", n.Line)
		}
		return !v
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		t.Fatalf("line %d: tag %s is not handled by this test", n.Line, n.Tag)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				t.Fatalf("line %d: key %s twice", n.Content[i].Line, k)
			}
			if v := e.eval(n.Content[i+1]); v != (noValue{}) {
				m[k] = v
			}
		}
		return m
	case yaml.SequenceNode:
		var s []any
		for _, c := range n.Content {
			if v := e.eval(c); v != (noValue{}) {
				s = append(s, v)
			}
		}
		return s
	case yaml.AliasNode:
		return e.eval(n.Alias)
	}
	return n.Value
}

func (e *evaluator) ref(name string) any {
	if name == "AWS::NoValue" {
		return noValue{}
	}
	if v, ok := pseudo[name]; ok {
		return v
	}
	if v, ok := e.tp.params[name]; ok {
		return v
	}
	if e.resourceIDs[name] {
		return "ref:" + name
	}
	e.t.Fatalf("!Ref %s names no parameter, pseudo parameter or resource", name)
	return nil
}

func member(t *testing.T, n *yaml.Node, key string) *yaml.Node {
	t.Helper()
	v := memberOrNil(n, key)
	if v == nil {
		t.Fatalf("no %s in the template", key)
	}
	return v
}

func memberOrNil(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func mapping(t *testing.T, n *yaml.Node) map[string]*yaml.Node {
	t.Helper()
	if n.Kind != yaml.MappingNode {
		t.Fatalf("line %d: not a mapping", n.Line)
	}
	m := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		m[n.Content[i].Value] = n.Content[i+1]
	}
	return m
}

// get walks an evaluated value by keys.
func get(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a mapping at %s", strings.Join(path, "."), k)
		}
		v = m[k]
	}
	return v
}

// strs turns a string or a list of strings into a sorted list.
func strs(t *testing.T, v any) []string {
	t.Helper()
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				t.Fatalf("%v is not a string", x)
			}
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	case nil:
		return nil
	}
	t.Fatalf("%v is neither a string nor a list", v)
	return nil
}
