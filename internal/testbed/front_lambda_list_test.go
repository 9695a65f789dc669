package testbed_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/valine/valine-check/internal/testbed"
)

// listWorld starts a World of n functions named prefix00, prefix01, …,
// created out of name order so that creation order cannot pass for name
// order, and returns the prefix and the names in name order.
func listWorld(t *testing.T, n int) (*testbed.World, string, []string) {
	t.Helper()
	prefix := uniqueName("tb-list") + "-"
	sorted := make([]string, n)
	for i := range sorted {
		sorted[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	fns := slices.Clone(sorted)
	rand.Shuffle(len(fns), func(i, j int) { fns[i], fns[j] = fns[j], fns[i] })
	w := startWorld(t, testbed.Options{Functions: fns})
	return w, prefix, sorted
}

// listAll pages through ListFunctions with the SDK paginator and returns
// every name listed, in the order listed, and the number of pages. It fails
// the test on a page longer than pageMax or an item without a RevisionId.
func listAll(t *testing.T, c *lambda.Client, maxItems *int32, pageMax int) (names []string, pages int) {
	t.Helper()
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: maxItems})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("ListFunctions page %d: %v", pages+1, err)
		}
		pages++
		if len(page.Functions) > pageMax {
			t.Errorf("page %d has %d functions, want at most %d", pages, len(page.Functions), pageMax)
		}
		for _, f := range page.Functions {
			if aws.ToString(f.RevisionId) == "" {
				t.Errorf("%s listed without a RevisionId", aws.ToString(f.FunctionName))
			}
			names = append(names, aws.ToString(f.FunctionName))
		}
	}
	return names, pages
}

// withPrefix keeps the names starting with prefix: kumo's storage is global,
// so a listing also shows the functions of tests running alongside.
func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// strictlyIncreasing reports the first name that is not after the one before.
func strictlyIncreasing(names []string) (string, bool) {
	for i := 1; i < len(names); i++ {
		if names[i] <= names[i-1] {
			return names[i], false
		}
	}
	return "", true
}

func TestListFunctionsPagesEveryFunctionOnceInNameOrder(t *testing.T) {
	t.Parallel()
	const n = 60
	w, prefix, want := listWorld(t, n)
	c := lambda.NewFromConfig(w.AWS)
	tests := []struct {
		name     string
		maxItems *int32
		pageMax  int
		minPages int
	}{
		{"MaxItems 7", aws.Int32(7), 7, (n + 6) / 7},
		{"default 50", nil, 50, 2},
		{"MaxItems 10000 is served 50 a page, as AWS does", aws.Int32(10000), 50, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// kumo's own paging lost functions in about 1 listing of 4;
			// several listings make a lucky pass unlikely.
			for round := range 5 {
				names, pages := listAll(t, c, tt.maxItems, tt.pageMax)
				if name, ok := strictlyIncreasing(names); !ok {
					t.Errorf("round %d: %s listed out of name order or twice", round, name)
				}
				if got := withPrefix(names, prefix); !slices.Equal(got, want) {
					t.Errorf("round %d: listed %d of the world's %d functions: %v", round, len(got), n, got)
				}
				if pages < tt.minPages {
					t.Errorf("round %d: %d pages, want at least %d", round, pages, tt.minPages)
				}
				if t.Failed() {
					return
				}
			}
		})
	}
}

func TestListFunctionsMarkerSurvivesDeletion(t *testing.T) {
	t.Parallel()
	w, prefix, fns := listWorld(t, 12)
	c := lambda.NewFromConfig(w.AWS)
	ctx := t.Context()
	// Page until a page ends on the world's third function, then delete it
	// and the function after it before asking for the next page.
	in := &lambda.ListFunctionsInput{MaxItems: aws.Int32(1)}
	var listed []string
	for {
		page, err := c.ListFunctions(ctx, in)
		if err != nil {
			t.Fatalf("ListFunctions: %v", err)
		}
		listed = append(listed, withPrefix(names(page.Functions), prefix)...)
		if len(listed) == 3 {
			in.Marker = page.NextMarker
			break
		}
		if page.NextMarker == nil {
			t.Fatalf("listing ended after %d of the world's functions", len(listed))
		}
		in.Marker = page.NextMarker
	}
	for _, fn := range fns[2:4] {
		if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn)}); err != nil {
			t.Fatalf("DeleteFunction %s: %v", fn, err)
		}
	}
	in.MaxItems = aws.Int32(5)
	for p := lambda.NewListFunctionsPaginator(c, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListFunctions after the deletion: %v", err)
		}
		listed = append(listed, withPrefix(names(page.Functions), prefix)...)
	}
	want := append(slices.Clone(fns[:3]), fns[4:]...)
	if !slices.Equal(listed, want) {
		t.Errorf("listed %v\nwant %v", listed, want)
	}
}

func names(fns []lambdatypes.FunctionConfiguration) []string {
	out := make([]string, len(fns))
	for i, f := range fns {
		out[i] = aws.ToString(f.FunctionName)
	}
	return out
}

func TestListFunctionsRefusesBadParameters(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := lambda.NewFromConfig(w.AWS)
	tests := []struct {
		name string
		in   lambda.ListFunctionsInput
	}{
		{"MaxItems 0", lambda.ListFunctionsInput{MaxItems: aws.Int32(0)}},
		{"MaxItems 10001", lambda.ListFunctionsInput{MaxItems: aws.Int32(10001)}},
		{"negative MaxItems", lambda.ListFunctionsInput{MaxItems: aws.Int32(-1)}},
		{"marker not base64", lambda.ListFunctionsInput{Marker: aws.String("not a marker!")}},
		{"marker Front did not issue", lambda.ListFunctionsInput{Marker: aws.String(w.Function)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.ListFunctions(t.Context(), &tt.in)
			var bad *lambdatypes.InvalidParameterValueException
			if !errors.As(err, &bad) {
				t.Errorf("ListFunctions = %v, want InvalidParameterValueException", err)
			}
		})
	}
}
