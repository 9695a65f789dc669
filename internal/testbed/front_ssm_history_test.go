package testbed_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// historyOf lists every version of name through the paginator, MaxResults
// a page, as "<version>=<value>[labels]".
func historyOf(t *testing.T, c *ssm.Client, name string, maxResults int32, decrypt bool) (entries []string, pages int) {
	t.Helper()
	in := &ssm.GetParameterHistoryInput{Name: aws.String(name), WithDecryption: aws.Bool(decrypt)}
	if maxResults > 0 {
		in.MaxResults = aws.Int32(maxResults)
	}
	p := ssm.NewGetParameterHistoryPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("GetParameterHistory: %v", err)
		}
		pages++
		if maxResults > 0 && len(page.Parameters) > int(maxResults) {
			t.Errorf("page of %d entries, MaxResults %d", len(page.Parameters), maxResults)
		}
		for _, h := range page.Parameters {
			entries = append(entries, fmt.Sprintf("%d=%s%v", h.Version, aws.ToString(h.Value), h.Labels))
		}
	}
	return entries, pages
}

func TestSSMParameterHistory(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	name := prefix + "/jwt"
	putVersions(t, c, name, ssmtypes.ParameterTypeSecureString, "a", "b", "c", "d", "e")
	if _, err := c.LabelParameterVersion(t.Context(), &ssm.LabelParameterVersionInput{Name: aws.String(name), ParameterVersion: aws.Int64(4), Labels: []string{"previous"}}); err != nil {
		t.Fatalf("LabelParameterVersion: %v", err)
	}
	want := []string{"1=a[]", "2=b[]", "3=c[]", "4=d[previous]", "5=e[]"}
	for _, tc := range []struct {
		maxResults int32
		pages      int
	}{{0, 1}, {2, 3}, {5, 1}, {50, 1}} {
		got, pages := historyOf(t, c, name, tc.maxResults, true)
		if !slices.Equal(got, want) || pages != tc.pages {
			t.Errorf("MaxResults %d: %v in %d pages, want %v in %d", tc.maxResults, got, pages, want, tc.pages)
		}
	}
	encrypted, _ := historyOf(t, c, name, 0, false)
	for i, e := range encrypted {
		if e == want[i] || len(e) < 20 {
			t.Errorf("history without WithDecryption shows %q", e)
		}
	}
	arn := "arn:aws:ssm:us-east-1:000000000000:parameter" + name
	if got, _ := historyOf(t, c, arn, 0, true); !slices.Equal(got, want) {
		t.Errorf("history by ARN = %v, want %v", got, want)
	}
	for _, bad := range []int32{51, -1} {
		_, err := c.GetParameterHistory(t.Context(), &ssm.GetParameterHistoryInput{Name: aws.String(name), MaxResults: aws.Int32(bad)})
		wantErr[*ssmtypes.ValidationException](t, fmt.Sprintf("MaxResults %d", bad), err)
	}
	_, err := c.GetParameterHistory(t.Context(), &ssm.GetParameterHistoryInput{Name: aws.String(name), NextToken: aws.String("forged")})
	wantErr[*ssmtypes.InvalidNextToken](t, "a foreign NextToken", err)
	_, err = c.GetParameterHistory(t.Context(), &ssm.GetParameterHistoryInput{Name: aws.String(prefix + "/missing")})
	wantErr[*ssmtypes.ParameterNotFound](t, "history of an unknown parameter", err)
}

func TestSSMLabelParameterVersion(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	name := prefix + "/jwt"
	putVersions(t, c, name, ssmtypes.ParameterTypeString, "v1", "v2", "v3")
	label := func(version int64, labels ...string) (*ssm.LabelParameterVersionOutput, error) {
		in := &ssm.LabelParameterVersionInput{Name: aws.String(name), Labels: labels}
		if version > 0 {
			in.ParameterVersion = aws.Int64(version)
		}
		return c.LabelParameterVersion(t.Context(), in)
	}
	type step struct {
		what    string
		version int64 // 0: let AWS pick the latest
		labels  []string
		invalid []string
		labeled int64
		history []string // after the step
	}
	steps := []step{
		{what: "the latest by default", labels: []string{"current"}, labeled: 3,
			history: []string{"1=v1[]", "2=v2[]", "3=v3[current]"}},
		{what: "a chosen version", version: 1, labels: []string{"stable", "old"}, labeled: 1,
			history: []string{"1=v1[stable old]", "2=v2[]", "3=v3[current]"}},
		{what: "a label moves from the version that had it", version: 2, labels: []string{"stable", "current"}, labeled: 2,
			history: []string{"1=v1[old]", "2=v2[stable current]", "3=v3[]"}},
		{what: "invalid labels are returned, not attached", version: 3,
			labels:  []string{"1st", "aws-x", "AWSy", "Ssm.z", "has space", "a/b", "ok_1.-x"},
			invalid: []string{"1st", "aws-x", "AWSy", "Ssm.z", "has space", "a/b"}, labeled: 3,
			history: []string{"1=v1[old]", "2=v2[stable current]", "3=v3[ok_1.-x]"}},
		{what: "relabelling is a no-op", version: 3, labels: []string{"ok_1.-x"}, labeled: 3,
			history: []string{"1=v1[old]", "2=v2[stable current]", "3=v3[ok_1.-x]"}},
	}
	for _, s := range steps { // in order: each step starts where the last left
		out, err := label(s.version, s.labels...)
		if err != nil {
			t.Fatalf("%s: LabelParameterVersion: %v", s.what, err)
		}
		if out.ParameterVersion != s.labeled || !slices.Equal(out.InvalidLabels, s.invalid) {
			t.Errorf("%s: ParameterVersion %d InvalidLabels %v, want %d %v", s.what, out.ParameterVersion, out.InvalidLabels, s.labeled, s.invalid)
		}
		if got, _ := historyOf(t, c, name, 0, true); !slices.Equal(got, s.history) {
			t.Errorf("%s: history %v, want %v", s.what, got, s.history)
		}
	}

	ten := []string{"l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9"}
	if _, err := label(1, ten[:9]...); err != nil { // v1 has "old": now 10
		t.Fatalf("labelling up to 10: %v", err)
	}
	_, err := label(1, ten[9])
	wantErr[*ssmtypes.ParameterVersionLabelLimitExceeded](t, "an 11th label", err)
	_, err = label(9, "x")
	wantErr[*ssmtypes.ParameterVersionNotFound](t, "an unknown version", err)
	_, err = c.LabelParameterVersion(t.Context(), &ssm.LabelParameterVersionInput{Name: aws.String(prefix + "/missing"), Labels: []string{"x"}})
	wantErr[*ssmtypes.ParameterNotFound](t, "an unknown parameter", err)
	_, err = label(1, strings.Repeat("x", 101))
	wantErr[*ssmtypes.ValidationException](t, "a label of 101 characters", err)
	if got, _ := historyOf(t, c, name, 0, true); len(got) != 3 || got[2] != "3=v3[ok_1.-x]" || !strings.HasPrefix(got[0], "1=v1[old l0") {
		t.Errorf("refused labels changed the history: %v", got)
	}
}

func TestSSMUnlabelParameterVersion(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	name := prefix + "/jwt"
	putVersions(t, c, name, ssmtypes.ParameterTypeString, "v1", "v2")
	if _, err := c.LabelParameterVersion(t.Context(), &ssm.LabelParameterVersionInput{Name: aws.String(name), ParameterVersion: aws.Int64(1), Labels: []string{"a", "b"}}); err != nil {
		t.Fatalf("LabelParameterVersion: %v", err)
	}
	out, err := c.UnlabelParameterVersion(t.Context(), &ssm.UnlabelParameterVersionInput{Name: aws.String(name), ParameterVersion: aws.Int64(1), Labels: []string{"a", "zzz"}})
	if err != nil {
		t.Fatalf("UnlabelParameterVersion: %v", err)
	}
	if !slices.Equal(out.RemovedLabels, []string{"a"}) || !slices.Equal(out.InvalidLabels, []string{"zzz"}) {
		t.Errorf("removed %v invalid %v, want [a] [zzz]", out.RemovedLabels, out.InvalidLabels)
	}
	if got, _ := historyOf(t, c, name, 0, true); !slices.Equal(got, []string{"1=v1[b]", "2=v2[]"}) {
		t.Errorf("history %v, want v1 labelled b only", got)
	}
	_, err = getValue(t, c, name+":a")
	wantErr[*ssmtypes.ParameterNotFound](t, "reading a removed label", err)
	_, err = c.UnlabelParameterVersion(t.Context(), &ssm.UnlabelParameterVersionInput{Name: aws.String(name), ParameterVersion: aws.Int64(7), Labels: []string{"b"}})
	wantErr[*ssmtypes.ParameterVersionNotFound](t, "an unknown version", err)
	_, err = c.UnlabelParameterVersion(t.Context(), &ssm.UnlabelParameterVersionInput{Name: aws.String(prefix + "/missing"), ParameterVersion: aws.Int64(1), Labels: []string{"b"}})
	wantErr[*ssmtypes.ParameterNotFound](t, "an unknown parameter", err)
}
