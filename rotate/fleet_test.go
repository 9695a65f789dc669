package rotate_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// fleetNames returns a unique prefix "pv-api-<test>-<random>-" and one
// function name per role under it: kumo's storage is global to the process.
func fleetNames(test string, roles ...string) (prefix string, names []string) {
	prefix = "pv-api-" + test + "-" + strings.ToLower(rand.Text()[:8]) + "-"
	for _, r := range roles {
		names = append(names, prefix+r)
	}
	return prefix, names
}

func TestSelectorValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sel  rotate.Selector
		ok   bool
		str  string
	}{
		{"names", rotate.Selector{Names: []string{"a", "b"}}, true, "functions a, b"},
		{"one name", rotate.Selector{Names: []string{"pv-api-prod-auth"}}, true, "functions pv-api-prod-auth"},
		{"arn", rotate.Selector{Names: []string{"arn:aws:lambda:us-east-1:000000000000:function:a"}}, true, "functions arn:aws:lambda:us-east-1:000000000000:function:a"},
		{"prefix", rotate.Selector{Prefix: "pv-api-prod-"}, true, "prefix pv-api-prod-"},
		{"tag with value", rotate.Selector{Tag: "app=valine"}, true, "tag app=valine"},
		{"tag with empty value", rotate.Selector{Tag: "app="}, true, "tag app="},
		{"tag key only", rotate.Selector{Tag: "app"}, true, "tag app"},
		{"tag value with =", rotate.Selector{Tag: "k=a=b"}, true, "tag k=a=b"},
		{"nothing", rotate.Selector{}, false, "no selector"},
		{"empty names slice", rotate.Selector{Names: []string{}}, false, "no selector"},
		{"names and prefix", rotate.Selector{Names: []string{"a"}, Prefix: "pv-"}, false, "functions a and prefix pv-"},
		{"prefix and tag", rotate.Selector{Prefix: "pv-", Tag: "app"}, false, "prefix pv- and tag app"},
		{"all three", rotate.Selector{Names: []string{"a"}, Prefix: "pv-", Tag: "app"}, false, "functions a and prefix pv- and tag app"},
		{"empty name", rotate.Selector{Names: []string{"a", ""}}, false, "functions a, "},
		{"blank name", rotate.Selector{Names: []string{" "}}, false, "functions  "},
		{"duplicate name", rotate.Selector{Names: []string{"a", "b", "a"}}, false, "functions a, b, a"},
		{"tag without key", rotate.Selector{Tag: "=valine"}, false, "tag =valine"},
		{"tag just =", rotate.Selector{Tag: "="}, false, "tag ="},
		{"glob prefix", rotate.Selector{Prefix: "pv-api-*"}, false, "prefix pv-api-*"},
		{"prefix with space", rotate.Selector{Prefix: "pv api"}, false, "prefix pv api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.sel.Validate()
			if tt.ok && err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, rotate.ErrInvalidSelector) {
				t.Errorf("Validate() = %v, want ErrInvalidSelector", err)
			}
			if got := tt.sel.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
		})
	}
}

func TestResolveFleet(t *testing.T) {
	t.Parallel()
	prefix, fleet := fleetNames("resolve", "auth", "profiles", "media", "uploads")
	app := "valine-" + strings.ToLower(rand.Text()[:8])
	teamKey := "team-" + strings.ToLower(rand.Text()[:8])
	_, lc := start(t, testbed.Options{
		Functions:    fleet,
		FunctionTags: map[string]string{"app": app, teamKey: "auth"},
	})
	// Decoys in other worlds, sharing kumo's process-global storage: a name
	// that extends the prefix's stem without its dash, another stage, the
	// same tag key with a near value.
	stem := strings.TrimSuffix(prefix, "-")
	decoys := []string{stem + "x-auth", strings.Replace(stem, "pv-api-", "pv-api-staging-", 1) + "-auth"}
	start(t, testbed.Options{Functions: decoys, FunctionTags: map[string]string{"app": app + "-staging"}})
	_, tagged := fleetNames("resolve-tagged", "auth")
	start(t, testbed.Options{Functions: tagged, FunctionTags: map[string]string{teamKey: "payments"}})

	want := slices.Sorted(slices.Values(fleet))
	arn, err := lc.GetFunctionConfiguration(t.Context(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fleet[1])})
	if err != nil {
		t.Fatal(err)
	}
	missing := prefix + "missing"
	tests := []struct {
		name        string
		sel         rotate.Selector
		want        []string
		wantErr     error // errors.Is
		wantMissing bool  // errors.As *types.ResourceNotFoundException
	}{
		{"names unsorted", rotate.Selector{Names: []string{fleet[2], fleet[0], fleet[3], fleet[1]}}, want, nil, false},
		{"names subset", rotate.Selector{Names: []string{fleet[3], fleet[1]}}, []string{fleet[1], fleet[3]}, nil, false},
		{"name by arn", rotate.Selector{Names: []string{aws.ToString(arn.FunctionArn), fleet[0]}}, []string{fleet[0], fleet[1]}, nil, false},
		{"name and its arn", rotate.Selector{Names: []string{aws.ToString(arn.FunctionArn), fleet[1]}}, []string{fleet[1]}, nil, false},
		{"a missing name", rotate.Selector{Names: []string{fleet[0], missing}}, nil, nil, true},
		{"prefix", rotate.Selector{Prefix: prefix}, want, nil, false},
		{"narrower prefix", rotate.Selector{Prefix: prefix + "u"}, []string{fleet[3]}, nil, false},
		{"prefix matching nothing", rotate.Selector{Prefix: prefix + "nothing"}, nil, rotate.ErrEmptyFleet, false},
		{"tag with value", rotate.Selector{Tag: "app=" + app}, want, nil, false},
		{"decoy tag value", rotate.Selector{Tag: "app=" + app + "-staging"}, slices.Sorted(slices.Values(decoys)), nil, false},
		{"tag key only", rotate.Selector{Tag: teamKey}, slices.Sorted(slices.Values(append(slices.Clone(fleet), tagged...))), nil, false},
		{"tag key and value", rotate.Selector{Tag: teamKey + "=auth"}, want, nil, false},
		{"tag matching nothing", rotate.Selector{Tag: "app=" + app + "-nowhere"}, nil, rotate.ErrEmptyFleet, false},
		{"invalid selector", rotate.Selector{Prefix: prefix, Tag: "app"}, nil, rotate.ErrInvalidSelector, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := rotate.ResolveFleet(t.Context(), lc, tt.sel)
			var notFound *types.ResourceNotFoundException
			switch {
			case tt.wantMissing:
				if !errors.As(err, &notFound) {
					t.Fatalf("ResolveFleet() error = %v, want ResourceNotFoundException", err)
				}
				if !strings.Contains(err.Error(), missing) {
					t.Errorf("error %q does not name %s", err, missing)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ResolveFleet() error = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(tt.wantErr, rotate.ErrEmptyFleet) && !strings.Contains(err.Error(), tt.sel.String()) {
					t.Errorf("error %q does not say which selector matched nothing", err)
				}
			case err != nil:
				t.Fatalf("ResolveFleet() error = %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ResolveFleet() = %v, want %v", got, tt.want)
			}
		})
	}
}

// pagedLambda is a FleetAPI holding many functions that pages ListFunctions
// the way AWS does (at most 50 a page, whatever MaxItems asks) and tracks
// how many GetFunction calls run at once.
type pagedLambda struct {
	names     []string
	tags      map[string]map[string]string
	gone      map[string]bool // deleted after listing: GetFunction says not found
	tagsErr   error           // when set, GetFunction fails with it
	mu        sync.Mutex
	pages     int
	inFlight  int
	maxFlight int
}

func (p *pagedLambda) ListFunctions(_ context.Context, in *lambda.ListFunctionsInput, _ ...func(*lambda.Options)) (*lambda.ListFunctionsOutput, error) {
	p.mu.Lock()
	p.pages++
	p.mu.Unlock()
	start := 0
	if in.Marker != nil {
		_, err := fmt.Sscanf(*in.Marker, "m%d", &start)
		if err != nil {
			return nil, fmt.Errorf("bad marker %q", *in.Marker)
		}
	}
	size := 50
	if in.MaxItems != nil && int(*in.MaxItems) < size {
		size = int(*in.MaxItems)
	}
	end := min(start+size, len(p.names))
	out := &lambda.ListFunctionsOutput{}
	for _, n := range p.names[start:end] {
		out.Functions = append(out.Functions, types.FunctionConfiguration{
			FunctionName: aws.String(n),
			FunctionArn:  aws.String("arn:aws:lambda:eu-west-1:123456789012:function:" + n),
		})
	}
	if end < len(p.names) {
		out.NextMarker = aws.String(fmt.Sprintf("m%d", end))
	}
	return out, nil
}

func (p *pagedLambda) GetFunction(ctx context.Context, in *lambda.GetFunctionInput, _ ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	p.mu.Lock()
	p.inFlight++
	p.maxFlight = max(p.maxFlight, p.inFlight)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	// Give other calls a chance to overlap, so a missing bound would show.
	for range 100 {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		runtime.Gosched()
	}
	name := aws.ToString(in.FunctionName)
	switch {
	case p.tagsErr != nil:
		return nil, p.tagsErr
	case p.gone[name] || !slices.Contains(p.names, name):
		return nil, &types.ResourceNotFoundException{Message: aws.String("Function not found: " + name)}
	}
	return &lambda.GetFunctionOutput{
		Configuration: &types.FunctionConfiguration{FunctionName: in.FunctionName},
		Tags:          maps.Clone(p.tags[name]),
	}, nil
}

var errThrottled = errors.New("throttled")

func TestResolveFleetPagesThroughListFunctions(t *testing.T) {
	t.Parallel()
	newFake := func() *pagedLambda {
		p := &pagedLambda{tags: map[string]map[string]string{}, gone: map[string]bool{}}
		for i := range 130 {
			team := "other"
			if i%10 == 0 {
				team = "auth"
			}
			name := fmt.Sprintf("fn-%03d", i)
			if i%2 == 0 {
				name = fmt.Sprintf("pv-api-prod-%03d", i)
			}
			p.names = append(p.names, name)
			p.tags[name] = map[string]string{"team": team}
		}
		// Lambda lists in no promised order; the fleet comes back sorted anyway.
		slices.Reverse(p.names)
		return p
	}
	var prodNames, authNames []string
	for i := range 130 {
		if i%2 == 0 {
			prodNames = append(prodNames, fmt.Sprintf("pv-api-prod-%03d", i))
		}
		if i%10 == 0 {
			authNames = append(authNames, fmt.Sprintf("pv-api-prod-%03d", i))
		}
	}
	tests := []struct {
		name    string
		sel     rotate.Selector
		edit    func(*pagedLambda)
		want    []string
		wantErr error
	}{
		{"prefix", rotate.Selector{Prefix: "pv-api-prod-"}, nil, prodNames, nil},
		{"tag", rotate.Selector{Tag: "team=auth"}, nil, authNames, nil},
		{"tag on a function deleted after listing", rotate.Selector{Tag: "team=auth"},
			func(p *pagedLambda) { p.gone["pv-api-prod-060"] = true },
			slices.DeleteFunc(slices.Clone(authNames), func(n string) bool { return n == "pv-api-prod-060" }), nil},
		{"GetFunction failing", rotate.Selector{Tag: "team=auth"}, func(p *pagedLambda) { p.tagsErr = errThrottled }, nil, errThrottled},
		{"nothing on any page", rotate.Selector{Prefix: "pv-web-"}, nil, nil, rotate.ErrEmptyFleet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake()
			if tt.edit != nil {
				tt.edit(fake)
			}
			got, err := rotate.ResolveFleet(t.Context(), fake, tt.sel)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ResolveFleet() error = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ResolveFleet() = %v, want %v", got, tt.want)
			}
			if fake.pages != 3 {
				t.Errorf("ListFunctions called %d times, want 3 pages of 50, 50 and 30", fake.pages)
			}
			if fake.maxFlight > 16 {
				t.Errorf("%d GetFunction calls ran at once, want at most 16", fake.maxFlight)
			}
		})
	}
}

// envOf reads a function's environment through the testbed.
func envOf(t *testing.T, w *testbed.World, fn string) (map[string]string, string) {
	t.Helper()
	env, rev, err := w.Env(t.Context(), fn)
	if err != nil {
		t.Fatal(err)
	}
	return env, rev
}

// jsonSize measures env as Lambda does: JSON without HTML escaping.
func jsonSize(t *testing.T, env map[string]string) int {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		t.Fatal(err)
	}
	return buf.Len() - 1 // the encoder's newline
}

func TestInspect(t *testing.T) {
	t.Parallel()
	extra := map[string]string{"FEATURE_X": "on", "HTML": "<a href='x'>&</a>", "UNICODE": "Grüße 🚀"}
	tests := []struct {
		name    string
		profile profile.Profile
		// secondary, when set, is staged on the second function only;
		// emptySecondary sets the secondary variable to "" on the third.
		secondary      bool
		emptySecondary bool
	}{
		{"runbook, no secondary", profile.Presets["runbook"], false, false},
		{"runbook, secondary on one", profile.Presets["runbook"], true, true},
		{"cookie", profile.Presets["cookie"], false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, fleet := fleetNames("inspect", "auth", "profiles", "media")
			w, lc := start(t, testbed.Options{Profile: tt.profile, Functions: fleet, ExtraEnv: extra})
			p := tt.profile
			second := mustSecret(t)
			if tt.secondary {
				if err := w.EditEnv(t.Context(), fleet[1], func(env map[string]string) { env[p.SecondaryVar] = string(second.Reveal()) }); err != nil {
					t.Fatal(err)
				}
			}
			if tt.emptySecondary {
				if err := w.EditEnv(t.Context(), fleet[2], func(env map[string]string) { env[p.SecondaryVar] = "" }); err != nil {
					t.Fatal(err)
				}
			}
			order := []string{fleet[2], fleet[0], fleet[1]} // not sorted: Inspect keeps the order given
			fs, err := rotate.Inspect(t.Context(), lc, order, p, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs.Functions) != len(order) {
				t.Fatalf("%d states, want %d", len(fs.Functions), len(order))
			}
			initial := secret.NewSecret(w.InitialSecret())
			for i, st := range fs.Functions {
				env, rev := envOf(t, w, order[i])
				if st.Name != order[i] {
					t.Errorf("state %d is %s, want %s", i, st.Name, order[i])
				}
				if !st.Primary.Equal(initial) || !st.HasPrimaryVar {
					t.Errorf("%s: primary %s (present %v), want %s", st.Name, st.Primary, st.HasPrimaryVar, initial)
				}
				wantSecondary, wantHas := secret.Secret{}, false
				if tt.secondary && st.Name == fleet[1] {
					wantSecondary, wantHas = second, true
				}
				if tt.emptySecondary && st.Name == fleet[2] {
					wantHas = true
				}
				if !st.Secondary.Equal(wantSecondary) || st.HasSecondaryVar != wantHas {
					t.Errorf("%s: secondary %s (present %v), want %s (present %v)", st.Name, st.Secondary, st.HasSecondaryVar, wantSecondary, wantHas)
				}
				if st.RevisionID == "" || st.RevisionID != rev {
					t.Errorf("%s: RevisionID %q, want %q", st.Name, st.RevisionID, rev)
				}
				if st.LastModified == "" || st.LastUpdateStatus != string(types.LastUpdateStatusSuccessful) || st.State != string(types.StateActive) {
					t.Errorf("%s: LastModified %q, LastUpdateStatus %q, State %q", st.Name, st.LastModified, st.LastUpdateStatus, st.State)
				}
				if want := jsonSize(t, env); st.EnvBytes != want {
					t.Errorf("%s: EnvBytes %d, want %d", st.Name, st.EnvBytes, want)
				}
				if want := len(env) - 1 - boolInt(wantHas); st.OtherVars != want {
					t.Errorf("%s: OtherVars %d, want %d", st.Name, st.OtherVars, want)
				}
			}
		})
	}
}

func TestInspectMissingFunction(t *testing.T) {
	t.Parallel()
	_, fleet := fleetNames("inspect-missing", "auth")
	w, lc := start(t, testbed.Options{Functions: fleet})
	missing := fleet[0] + "-gone"
	_, err := rotate.Inspect(t.Context(), lc, []string{fleet[0], missing}, w.Profile, 0)
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("Inspect() error = %v, want ResourceNotFoundException", err)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name %s", err, missing)
	}
}

func TestDriftOnTheTestbed(t *testing.T) {
	t.Parallel()
	password := "s3cr3t-" + strings.ToLower(rand.Text()[:10])
	extra := map[string]string{"DATABASE_URL": "postgres://valine:" + password + "@db.internal:5432/valine"}
	_, fleet := fleetNames("drift", "auth", "profiles", "media")
	w, lc := start(t, testbed.Options{Functions: fleet, ExtraEnv: extra})
	p := w.Profile
	initial := secret.NewSecret(w.InitialSecret())
	var outputs []string
	record := func(v ...any) {
		for _, x := range v {
			if b, err := json.Marshal(x); err == nil {
				outputs = append(outputs, string(b))
			}
			outputs = append(outputs, fmt.Sprint(x), fmt.Sprintf("%+v", x), fmt.Sprintf("%#v", x), fmt.Sprintf("%q", x))
		}
	}

	fs, err := rotate.Inspect(t.Context(), lc, fleet, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := fs.Drift()
	record(fs, d, d.String())
	if !d.Consistent || len(d.Groups) != 1 || len(d.Groups[0].Functions) != 3 {
		t.Fatalf("fresh fleet: %+v, want one group of 3", d)
	}
	if want := fmt.Sprintf("all 3 functions agree (primary %s, no secondary)", initial.Fingerprint()); d.String() != want {
		t.Errorf("String() = %q, want %q", d.String(), want)
	}
	if primary, secondary, ok := fs.Secrets(); !ok || !primary.Equal(initial) || !secondary.IsEmpty() {
		t.Errorf("Secrets() = %s, %s, %v; want %s, empty, true", primary, secondary, ok, initial)
	}

	// Another writer changes one function's primary: the fleet drifts.
	other := mustSecret(t)
	if err := w.EditEnv(t.Context(), fleet[1], func(env map[string]string) { env[p.SecretVar] = string(other.Reveal()) }); err != nil {
		t.Fatal(err)
	}
	fs, err = rotate.Inspect(t.Context(), lc, fleet, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	d = fs.Drift()
	record(fs, d, d.String())
	if d.Consistent || len(d.Groups) != 2 {
		t.Fatalf("after the edit: %+v, want two groups", d)
	}
	if g := d.Groups[0]; g.Primary != initial.Fingerprint() || !slices.Equal(g.Functions, []string{fleet[0], fleet[2]}) {
		t.Errorf("largest group %+v, want %s on %s, %s", g, initial.Fingerprint(), fleet[0], fleet[2])
	}
	if g := d.Groups[1]; g.Primary != other.Fingerprint() || !slices.Equal(g.Functions, []string{fleet[1]}) {
		t.Errorf("second group %+v, want %s on %s", g, other.Fingerprint(), fleet[1])
	}
	want := fmt.Sprintf("DRIFT: 2 functions on primary %s (%s, %s); 1 function on primary %s (%s)",
		initial.Fingerprint(), fleet[0], fleet[2], other.Fingerprint(), fleet[1])
	if d.String() != want {
		t.Errorf("String() = %q, want %q", d.String(), want)
	}
	if _, _, ok := fs.Secrets(); ok {
		t.Error("Secrets() ok on a drifted fleet")
	}

	for _, out := range outputs {
		for _, v := range []string{w.InitialSecret(), string(other.Reveal()), password} {
			if strings.Contains(out, v) {
				t.Fatalf("output leaks a value: %s", out)
			}
		}
	}
}

func TestDriftGroups(t *testing.T) {
	t.Parallel()
	a, b, c := secret.NewSecret("secret-a"), secret.NewSecret("secret-b"), secret.NewSecret("secret-c")
	fn := func(name string, primary, secondary secret.Secret) rotate.FunctionState {
		return rotate.FunctionState{Name: name, Primary: primary, Secondary: secondary}
	}
	tests := []struct {
		name       string
		fleet      []rotate.FunctionState
		consistent bool
		groups     [][]string // function names per group, in order
		str        string
	}{
		{"empty fleet", nil, true, nil, "no functions"},
		{"one function", []rotate.FunctionState{fn("x", a, b)}, true, [][]string{{"x"}},
			fmt.Sprintf("1 function (primary %s, secondary %s)", a.Fingerprint(), b.Fingerprint())},
		{"staged fleet agrees", []rotate.FunctionState{fn("x", a, b), fn("y", a, b)}, true, [][]string{{"x", "y"}},
			fmt.Sprintf("all 2 functions agree (primary %s, secondary %s)", a.Fingerprint(), b.Fingerprint())},
		{"secondary differs only", []rotate.FunctionState{fn("x", a, b), fn("y", a, secret.Secret{})}, false, nil,
			fmt.Sprintf("DRIFT: 1 function on primary %[1]s, no secondary (y); 1 function on primary %[1]s, secondary %[2]s (x)", a.Fingerprint(), b.Fingerprint())},
		{"largest group first", []rotate.FunctionState{fn("x", c, secret.Secret{}), fn("y", a, secret.Secret{}), fn("z", a, secret.Secret{})}, false, [][]string{{"y", "z"}, {"x"}}, ""},
		{"empty primary is a group", []rotate.FunctionState{fn("x", a, secret.Secret{}), fn("y", secret.Secret{}, secret.Secret{})}, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := rotate.FleetState{Functions: tt.fleet}.Drift()
			if d.Consistent != tt.consistent {
				t.Errorf("Consistent = %v, want %v", d.Consistent, tt.consistent)
			}
			if tt.groups != nil {
				var got [][]string
				for _, g := range d.Groups {
					got = append(got, g.Functions)
				}
				if !slices.EqualFunc(got, tt.groups, slices.Equal) {
					t.Errorf("groups %v, want %v", got, tt.groups)
				}
			}
			for i := 1; i < len(d.Groups); i++ {
				p, q := d.Groups[i-1], d.Groups[i]
				byName := cmp.Or(strings.Compare(p.Primary, q.Primary), strings.Compare(p.Secondary, q.Secondary))
				if len(p.Functions) < len(q.Functions) || len(p.Functions) == len(q.Functions) && byName > 0 {
					t.Errorf("groups out of order: %+v before %+v", p, q)
				}
			}
			if tt.str != "" && d.String() != tt.str {
				t.Errorf("String() = %q, want %q", d.String(), tt.str)
			}
			for _, s := range []secret.Secret{a, b, c} {
				if strings.Contains(d.String(), string(s.Reveal())) {
					t.Errorf("String() leaks a value: %s", d)
				}
			}
		})
	}
}

func TestHeadroomMatchesWhatStagingAccepts(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"runbook", "cookie"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := profile.Presets[name]
			_, fleet := fleetNames("headroom", "fits", "overflows", "small")
			// A current primary shorter than a generated one, so staging grows
			// the environment even without a secondary variable.
			initial := "short-initial-" + strings.ToLower(rand.Text()[:10])
			w, lc := start(t, testbed.Options{Profile: p, Functions: fleet, InitialSecret: initial, ExtraEnv: map[string]string{"PAD": ""}})
			fs, err := rotate.Inspect(t.Context(), lc, fleet, p, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Independently: the size after staging a 44-character primary
			// over the current one, which moves to the secondary variable.
			env, _ := envOf(t, w, fleet[0])
			staged := maps.Clone(env)
			staged[p.SecretVar] = strings.Repeat("k", 44)
			if p.SecondaryVar != "" {
				staged[p.SecondaryVar] = env[p.SecretVar]
			}
			room := rotate.MaxEnvBytes - jsonSize(t, staged)
			if got := fs.Headroom(p, 44, true); got != room {
				t.Fatalf("Headroom() = %d, want %d", got, room)
			}
			// Pad one function to exactly no room left and another to one
			// byte over: Headroom reports the worst, and staging agrees.
			pad := func(fn string, n int) {
				if err := w.EditEnv(t.Context(), fn, func(env map[string]string) { env["PAD"] = strings.Repeat("p", n) }); err != nil {
					t.Fatal(err)
				}
			}
			pad(fleet[0], room)
			pad(fleet[1], room+1)
			fs, err = rotate.Inspect(t.Context(), lc, fleet, p, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := fs.Headroom(p, 44, true); got != -1 {
				t.Errorf("Headroom() = %d, want -1", got)
			}
			if got := (rotate.FleetState{Functions: fs.Functions[:1]}).Headroom(p, 44, true); got != 0 {
				t.Errorf("Headroom() of the exactly-full function = %d, want 0", got)
			}
			old := secret.NewSecret(w.InitialSecret())
			secondary := old
			if p.SecondaryVar == "" {
				secondary = secret.Secret{}
			}
			stage := rotate.SetSecrets(p, mustSecret(t), secondary)
			if _, err := rotate.UpdateEnv(t.Context(), lc, fleet[0], stage, rotate.EnvUpdate{}); err != nil {
				t.Errorf("staging with headroom 0: %v", err)
			}
			if _, err := rotate.UpdateEnv(t.Context(), lc, fleet[1], stage, rotate.EnvUpdate{}); !errors.Is(err, rotate.ErrEnvTooLarge) {
				t.Errorf("staging with headroom -1: %v, want ErrEnvTooLarge", err)
			}
		})
	}
}

func TestHeadroomOfAnEmptyFleet(t *testing.T) {
	t.Parallel()
	if got := (rotate.FleetState{}).Headroom(profile.Presets["runbook"], 44, true); got != rotate.MaxEnvBytes {
		t.Errorf("Headroom() = %d, want %d", got, rotate.MaxEnvBytes)
	}
}
