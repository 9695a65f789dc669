package rotate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"golang.org/x/sync/errgroup"
)

// ErrInvalidSelector is wrapped by every Selector.Validate error.
var ErrInvalidSelector = errors.New("invalid fleet selector")

// ErrEmptyFleet is returned, wrapped with the selector, when no function
// matches: rotating nothing is never a success.
var ErrEmptyFleet = errors.New("no functions match")

// Selector chooses a fleet: exactly one of Names, Prefix and Tag is set.
type Selector struct {
	// Names are explicit function names (or ARNs); each must exist.
	Names []string
	// Prefix is a plain function-name prefix, such as "pv-api-prod-".
	Prefix string
	// Tag is "key=value" (that value; "key=" for an empty one) or "key"
	// (any value).
	Tag string
}

// Validate reports a selector that sets none or several of its fields, a
// tag with no key, an empty or repeated name, or a prefix with characters
// no function name has (a glob like "pv-*" is a typo here, not a pattern).
func (s Selector) Validate() error {
	set := 0
	for _, b := range []bool{len(s.Names) > 0, s.Prefix != "", s.Tag != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: set exactly one of names, prefix and tag (%d set)", ErrInvalidSelector, set)
	}
	switch {
	case len(s.Names) > 0:
		seen := map[string]bool{}
		for _, n := range s.Names {
			if strings.TrimSpace(n) == "" {
				return fmt.Errorf("%w: empty function name", ErrInvalidSelector)
			}
			if seen[n] {
				return fmt.Errorf("%w: function %s named twice", ErrInvalidSelector, n)
			}
			seen[n] = true
		}
	case s.Prefix != "":
		if i := strings.IndexFunc(s.Prefix, func(r rune) bool { return !isNameRune(r) }); i >= 0 {
			return fmt.Errorf("%w: prefix %q: %q cannot appear in a function name (the prefix is matched literally)", ErrInvalidSelector, s.Prefix, s.Prefix[i:i+1])
		}
	default:
		key, _ := s.tag()
		if strings.TrimSpace(key) == "" {
			return fmt.Errorf("%w: tag %q has no key (want key=value or key)", ErrInvalidSelector, s.Tag)
		}
	}
	return nil
}

// isNameRune reports whether r may appear in a Lambda function name.
func isNameRune(r rune) bool {
	return r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// tag splits Tag into its key and, when it has one, its value.
func (s Selector) tag() (key string, value *string) {
	k, v, ok := strings.Cut(s.Tag, "=")
	if !ok {
		return k, nil
	}
	return k, &v
}

// String describes the selector for humans: "functions a, b", "prefix
// pv-api-prod-", "tag app=valine" or "tag app".
func (s Selector) String() string {
	var parts []string
	if len(s.Names) > 0 {
		parts = append(parts, "functions "+strings.Join(s.Names, ", "))
	}
	if s.Prefix != "" {
		parts = append(parts, "prefix "+s.Prefix)
	}
	if s.Tag != "" {
		parts = append(parts, "tag "+s.Tag)
	}
	if len(parts) == 0 {
		return "no selector"
	}
	return strings.Join(parts, " and ")
}

// ResolveFleet returns the names of the functions sel chooses, sorted and
// without duplicates. Each explicit name must exist: a missing one is an
// error naming it that wraps *types.ResourceNotFoundException. A prefix or a
// tag pages through ListFunctions; a tag then reads each function's tags
// from GetFunction (whose quota is not the control plane's), a few at a
// time. A selector matching nothing returns ErrEmptyFleet.
func ResolveFleet(ctx context.Context, api FleetAPI, sel Selector) ([]string, error) {
	names, _, err := ResolveFleetRead(ctx, api, sel)
	return names, err
}

// FleetRead is what resolving a fleet read of its functions: GetFunction's
// answers, by function name. Given to an Engine (Engine.Read), the run's
// first inspection uses them instead of reading the functions again.
type FleetRead map[string]*lambda.GetFunctionOutput

// ResolveFleetRead is ResolveFleet, also returning the functions it read
// on the way: explicit names and a tag read each function (GetFunction); a
// prefix reads none.
func ResolveFleetRead(ctx context.Context, api FleetAPI, sel Selector) ([]string, FleetRead, error) {
	if err := sel.Validate(); err != nil {
		return nil, nil, err
	}
	var (
		names []string
		read  = FleetRead{}
		mu    sync.Mutex
		err   error
	)
	keep := func(name string, out *lambda.GetFunctionOutput) {
		mu.Lock()
		defer mu.Unlock()
		read[name] = out
	}
	switch {
	case len(sel.Names) > 0:
		names, err = resolveNames(ctx, api, sel.Names, keep)
	case sel.Prefix != "":
		names, err = resolvePrefix(ctx, api, sel.Prefix)
	default:
		key, value := sel.tag()
		names, err = resolveTag(ctx, api, key, value, keep)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("resolving the fleet (%s): %w", sel, err)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("%w %s", ErrEmptyFleet, sel)
	}
	return names, read, nil
}

// resolveNames checks that each function exists and returns the names Lambda
// reports (so an ARN becomes the name). Every missing function is named.
func resolveNames(ctx context.Context, api FleetAPI, names []string, keep func(string, *lambda.GetFunctionOutput)) ([]string, error) {
	out := make([]string, len(names))
	errs := make([]error, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for i, n := range names {
		g.Go(func() error {
			got, err := api.GetFunction(gctx, &lambda.GetFunctionInput{FunctionName: aws.String(n)})
			var missing *types.ResourceNotFoundException
			switch {
			case errors.As(err, &missing):
				errs[i] = fmt.Errorf("function %s not found: %w", n, err)
				return nil // name every missing function, not just the first
			case err != nil:
				return fmt.Errorf("reading function %s: %w", n, err)
			}
			if got.Configuration != nil {
				out[i] = aws.ToString(got.Configuration.FunctionName)
			}
			if out[i] == "" {
				out[i] = n
			}
			keep(out[i], got)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// listMaxItems is the largest page ListFunctions accepts. AWS answers at
// most 50 a page whatever is asked, so asking for more costs nothing there;
// an implementation that honours it needs fewer round trips. (The testbed
// pages 50 at a time, as AWS does.)
const listMaxItems = 10000

// listFunctions pages through ListFunctions and returns the name and ARN of
// every function whose name keep accepts.
func listFunctions(ctx context.Context, api FleetAPI, keep func(name string) bool) ([]types.FunctionConfiguration, error) {
	var fns []types.FunctionConfiguration
	pages := lambda.NewListFunctionsPaginator(api, &lambda.ListFunctionsInput{MaxItems: aws.Int32(listMaxItems)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing functions: %w", err)
		}
		for _, f := range page.Functions {
			if keep(aws.ToString(f.FunctionName)) {
				fns = append(fns, types.FunctionConfiguration{FunctionName: f.FunctionName, FunctionArn: f.FunctionArn})
			}
		}
	}
	return fns, nil
}

// resolvePrefix returns the functions whose name starts with prefix.
func resolvePrefix(ctx context.Context, api FleetAPI, prefix string) ([]string, error) {
	fns, err := listFunctions(ctx, api, func(name string) bool { return strings.HasPrefix(name, prefix) })
	if err != nil {
		return nil, err
	}
	names := make([]string, len(fns))
	for i, f := range fns {
		names[i] = aws.ToString(f.FunctionName)
	}
	return names, nil
}

// resolveTag returns the functions tagged key (with value, when not nil). A
// function deleted between the listing and its GetFunction is not in the
// fleet.
func resolveTag(ctx context.Context, api FleetAPI, key string, value *string, keep func(string, *lambda.GetFunctionOutput)) ([]string, error) {
	fns, err := listFunctions(ctx, api, func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	match := make([]bool, len(fns))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for i, f := range fns {
		g.Go(func() error {
			out, err := api.GetFunction(gctx, &lambda.GetFunctionInput{FunctionName: f.FunctionName})
			var gone *types.ResourceNotFoundException
			switch {
			case errors.As(err, &gone):
				return nil
			case err != nil:
				return fmt.Errorf("listing the tags of %s: %w", aws.ToString(f.FunctionName), err)
			}
			v, ok := out.Tags[key]
			match[i] = ok && (value == nil || v == *value)
			if match[i] {
				keep(aws.ToString(f.FunctionName), out)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var names []string
	for i, f := range fns {
		if match[i] {
			names = append(names, aws.ToString(f.FunctionName))
		}
	}
	return names, nil
}
