package testbed_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestSSMGetParametersByPath(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	for _, n := range []string{"/c", "/a", "/b", "/sub/d"} {
		putVersions(t, c, prefix+n, ssmtypes.ParameterTypeString, "v"+n)
	}
	putVersions(t, c, prefix+"/sub/deep/e", ssmtypes.ParameterTypeSecureString, "secret", "secret-2")
	putVersions(t, c, prefix+"-sibling/x", ssmtypes.ParameterTypeString, "not under the path")
	list := func(in ssm.GetParametersByPathInput) (names []string, pages int) {
		t.Helper()
		p := ssm.NewGetParametersByPathPaginator(c, &in)
		for p.HasMorePages() {
			page, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatalf("GetParametersByPath: %v", err)
			}
			pages++
			for _, p := range page.Parameters {
				names = append(names, strings.TrimPrefix(aws.ToString(p.Name), prefix)+"="+aws.ToString(p.Value))
			}
		}
		return names, pages
	}
	cases := []struct {
		what  string
		in    ssm.GetParametersByPathInput
		want  []string
		pages int
	}{
		{"one level, 2 a page", ssm.GetParametersByPathInput{Path: aws.String(prefix), MaxResults: aws.Int32(2)},
			[]string{"/a=v/a", "/b=v/b", "/c=v/c"}, 2},
		{"recursive, trailing slash, decrypted", ssm.GetParametersByPathInput{Path: aws.String(prefix + "/"), Recursive: aws.Bool(true), WithDecryption: aws.Bool(true)},
			[]string{"/a=v/a", "/b=v/b", "/c=v/c", "/sub/d=v/sub/d", "/sub/deep/e=secret-2"}, 1},
		{"Type filter", ssm.GetParametersByPathInput{Path: aws.String(prefix), Recursive: aws.Bool(true), WithDecryption: aws.Bool(true),
			ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Type"), Values: []string{"SecureString"}}}},
			[]string{"/sub/deep/e=secret-2"}, 1},
	}
	for _, tc := range cases {
		if got, pages := list(tc.in); !slices.Equal(got, tc.want) || pages != tc.pages {
			t.Errorf("%s: %v in %d pages, want %v in %d", tc.what, got, pages, tc.want, tc.pages)
		}
	}
	_, err := c.GetParametersByPath(t.Context(), &ssm.GetParametersByPathInput{Path: aws.String(prefix), MaxResults: aws.Int32(11)})
	wantErr[*ssmtypes.ValidationException](t, "MaxResults 11", err)
	_, err = c.GetParametersByPath(t.Context(), &ssm.GetParametersByPathInput{Path: aws.String(prefix),
		ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Name"), Values: []string{"x"}}}})
	wantErr[*ssmtypes.InvalidFilterKey](t, "a Name filter by path", err)
}

func TestSSMDescribeParameters(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	putVersions(t, c, prefix+"/jwt", ssmtypes.ParameterTypeSecureString, "a", "b")
	putVersions(t, c, prefix+"/url", ssmtypes.ParameterTypeString, "https://x")
	if _, err := c.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(prefix + "/tagged"), Value: aws.String("v"),
		Type: ssmtypes.ParameterTypeString, Description: aws.String("kept"), Tags: []ssmtypes.Tag{{Key: aws.String("owner"), Value: aws.String("auth")}}}); err != nil {
		t.Fatalf("PutParameter: %v", err)
	}
	describe := func(filters ...ssmtypes.ParameterStringFilter) []ssmtypes.ParameterMetadata {
		t.Helper()
		var out []ssmtypes.ParameterMetadata
		p := ssm.NewDescribeParametersPaginator(c, &ssm.DescribeParametersInput{ParameterFilters: filters, MaxResults: aws.Int32(1)})
		for p.HasMorePages() {
			page, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatalf("DescribeParameters: %v", err)
			}
			out = append(out, page.Parameters...)
		}
		return out
	}
	under := ssmtypes.ParameterStringFilter{Key: aws.String("Name"), Option: aws.String("BeginsWith"), Values: []string{prefix + "/"}}
	all := describe(under)
	var got []string
	for _, m := range all {
		got = append(got, strings.TrimPrefix(aws.ToString(m.Name), prefix)+":"+string(m.Type))
	}
	if want := []string{"/jwt:SecureString", "/tagged:String", "/url:String"}; !slices.Equal(got, want) {
		t.Fatalf("DescribeParameters = %v, want %v", got, want)
	}
	if jwt := all[0]; jwt.Version != 2 || aws.ToString(jwt.KeyId) != "alias/aws/ssm" || jwt.Tier != ssmtypes.ParameterTierStandard {
		t.Errorf("jwt metadata: version %d key %q tier %s, want 2 alias/aws/ssm Standard", jwt.Version, aws.ToString(jwt.KeyId), jwt.Tier)
	}
	if tagged := all[1]; aws.ToString(tagged.Description) != "kept" {
		t.Errorf("description %q, want kept", aws.ToString(tagged.Description))
	}
	byTag := describe(under, ssmtypes.ParameterStringFilter{Key: aws.String("tag:owner"), Values: []string{"auth"}})
	if len(byTag) != 1 || aws.ToString(byTag[0].Name) != prefix+"/tagged" {
		t.Errorf("tag filter found %d parameters, want the tagged one", len(byTag))
	}
	_, err := c.DescribeParameters(t.Context(), &ssm.DescribeParametersInput{
		ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Type"), Option: aws.String("Contains"), Values: []string{"Secure"}}}})
	wantErr[*ssmtypes.InvalidFilterOption](t, "Contains on Type", err)
}
