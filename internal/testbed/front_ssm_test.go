package testbed_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/valine/valine-check/internal/testbed"
)

// ssmClient starts a World and returns an SSM client on it and a unique
// parameter path prefix.
func ssmClient(t *testing.T) (*ssm.Client, string) {
	t.Helper()
	w := startWorld(t, testbed.Options{})
	return ssm.NewFromConfig(w.AWS), "/" + uniqueName("tb-ssm")
}

// putVersions creates name with the first value and overwrites it with the
// others, one version each.
func putVersions(t *testing.T, c *ssm.Client, name string, typ ssmtypes.ParameterType, values ...string) {
	t.Helper()
	for i, v := range values {
		in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(v), Overwrite: aws.Bool(i > 0)}
		if i == 0 {
			in.Type = typ
		}
		out, err := c.PutParameter(t.Context(), in)
		if err != nil {
			t.Fatalf("PutParameter %s #%d: %v", name, i+1, err)
		}
		if out.Version != int64(i+1) {
			t.Fatalf("PutParameter %s #%d: Version %d", name, i+1, out.Version)
		}
	}
}

// getValue reads ref (a name, maybe with a selector) decrypted.
func getValue(t *testing.T, c *ssm.Client, ref string) (*ssmtypes.Parameter, error) {
	t.Helper()
	out, err := c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(ref), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Parameter, nil
}

// wantErr fails unless err is the SDK error *E.
func wantErr[E error](t *testing.T, what string, err error) {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Errorf("%s: error = %v, want %T", what, err, target)
	}
}

func TestSSMPutParameterVersions(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	name := prefix + "/jwt"
	putVersions(t, c, name, ssmtypes.ParameterTypeSecureString, "s1", "s2", "s3")
	p, err := getValue(t, c, name)
	if err != nil {
		t.Fatalf("GetParameter: %v", err)
	}
	if aws.ToString(p.Value) != "s3" || p.Version != 3 || p.Type != ssmtypes.ParameterTypeSecureString {
		t.Errorf("latest = %s v%d %s, want s3 v3 SecureString (type kept by overwrites that omit it)", aws.ToString(p.Value), p.Version, p.Type)
	}
	_, err = c.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("s4"), Type: ssmtypes.ParameterTypeSecureString})
	wantErr[*ssmtypes.ParameterAlreadyExists](t, "PutParameter without Overwrite", err)
	_, err = c.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(prefix + "/untyped"), Value: aws.String("v")})
	wantErr[*ssmtypes.ValidationException](t, "PutParameter creating without Type", err)
	if p, err := getValue(t, c, name); err != nil || p.Version != 3 {
		t.Errorf("after refused writes: %v, %v; want version 3", p, err)
	}
}

func TestSSMSecureStringNeedsDecryption(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	name := prefix + "/secret"
	const plain = "hs256-plaintext-secret"
	putVersions(t, c, name, ssmtypes.ParameterTypeSecureString, plain)
	reads := map[string]func() (string, error){
		"GetParameter": func() (string, error) {
			out, err := c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(name)})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.Parameter.Value), nil
		},
		"GetParameters": func() (string, error) {
			out, err := c.GetParameters(t.Context(), &ssm.GetParametersInput{Names: []string{name}})
			if err != nil || len(out.Parameters) != 1 {
				return "", err
			}
			return aws.ToString(out.Parameters[0].Value), nil
		},
		"GetParametersByPath": func() (string, error) {
			out, err := c.GetParametersByPath(t.Context(), &ssm.GetParametersByPathInput{Path: aws.String(prefix)})
			if err != nil || len(out.Parameters) != 1 {
				return "", err
			}
			return aws.ToString(out.Parameters[0].Value), nil
		},
		"GetParameterHistory": func() (string, error) {
			out, err := c.GetParameterHistory(t.Context(), &ssm.GetParameterHistoryInput{Name: aws.String(name)})
			if err != nil || len(out.Parameters) != 1 {
				return "", err
			}
			return aws.ToString(out.Parameters[0].Value), nil
		},
	}
	var first string
	for _, op := range slices.Sorted(maps.Keys(reads)) {
		got, err := reads[op]()
		switch {
		case err != nil:
			t.Errorf("%s: %v", op, err)
		case got == "" || strings.Contains(got, plain):
			t.Errorf("%s without WithDecryption = %q, want the ciphertext, not the plaintext", op, got)
		case first != "" && got != first:
			t.Errorf("%s ciphertext %q differs from %q", op, got, first)
		}
		first = got
	}
	if p, err := getValue(t, c, name); err != nil || aws.ToString(p.Value) != plain {
		t.Errorf("GetParameter WithDecryption = %v, %v; want the plaintext", p, err)
	}
}

func TestSSMSelectors(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	name := prefix + "/jwt"
	putVersions(t, c, name, ssmtypes.ParameterTypeSecureString, "old", "current", "next")
	if _, err := c.LabelParameterVersion(t.Context(), &ssm.LabelParameterVersionInput{Name: aws.String(name), ParameterVersion: aws.Int64(2), Labels: []string{"live"}}); err != nil {
		t.Fatalf("LabelParameterVersion: %v", err)
	}
	cases := []struct {
		ref, value, selector string
		version              int64
		wantErr              func(t *testing.T, err error)
	}{
		{ref: name, value: "next", version: 3},
		{ref: name + ":1", value: "old", version: 1, selector: ":1"},
		{ref: name + ":live", value: "current", version: 2, selector: ":live"},
		{ref: "arn:aws:ssm:us-east-1:000000000000:parameter" + name + ":1", value: "old", version: 1, selector: ":1"},
		{ref: name + ":9", wantErr: func(t *testing.T, err error) { wantErr[*ssmtypes.ParameterVersionNotFound](t, "unknown version", err) }},
		{ref: name + ":nolabel", wantErr: func(t *testing.T, err error) { wantErr[*ssmtypes.ParameterNotFound](t, "unknown label", err) }},
		{ref: prefix + "/missing:1", wantErr: func(t *testing.T, err error) { wantErr[*ssmtypes.ParameterNotFound](t, "unknown parameter", err) }},
	}
	for _, tc := range cases {
		t.Run(strings.TrimPrefix(tc.ref, prefix), func(t *testing.T) {
			p, err := getValue(t, c, tc.ref)
			if tc.wantErr != nil {
				tc.wantErr(t, err)
				return
			}
			if err != nil {
				t.Fatalf("GetParameter: %v", err)
			}
			if aws.ToString(p.Name) != name || aws.ToString(p.Value) != tc.value || p.Version != tc.version || aws.ToString(p.Selector) != tc.selector {
				t.Errorf("got %s %s v%d selector %q; want %s %s v%d selector %q", aws.ToString(p.Name), aws.ToString(p.Value), p.Version, aws.ToString(p.Selector), name, tc.value, tc.version, tc.selector)
			}
		})
	}
	out, err := c.GetParameters(t.Context(), &ssm.GetParametersInput{
		Names: []string{name + ":1", name + ":live", name + ":9", name + ":nolabel"}, WithDecryption: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetParameters: %v", err)
	}
	var got []string
	for _, p := range out.Parameters {
		got = append(got, aws.ToString(p.Value)+aws.ToString(p.Selector))
	}
	if want := []string{"old:1", "current:live"}; !slices.Equal(got, want) || !slices.Equal(out.InvalidParameters, []string{name + ":9", name + ":nolabel"}) {
		t.Errorf("GetParameters = %v invalid %v; want %v invalid [:9 :nolabel]", got, out.InvalidParameters, want)
	}
}

func TestSSMDeleteParameterForgetsHistory(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	name := prefix + "/jwt"
	if _, err := c.PutParameter(t.Context(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String("v1"), Type: ssmtypes.ParameterTypeString,
		Tags: []ssmtypes.Tag{{Key: aws.String("team"), Value: aws.String("auth")}},
	}); err != nil {
		t.Fatalf("PutParameter: %v", err)
	}
	putVersions(t, c, prefix+"/other", ssmtypes.ParameterTypeString, "x")
	if _, err := c.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("v2"), Overwrite: aws.Bool(true)}); err != nil {
		t.Fatalf("PutParameter v2: %v", err)
	}
	if _, err := c.LabelParameterVersion(t.Context(), &ssm.LabelParameterVersionInput{Name: aws.String(name), ParameterVersion: aws.Int64(1), Labels: []string{"old"}}); err != nil {
		t.Fatalf("LabelParameterVersion: %v", err)
	}
	if _, err := c.DeleteParameter(t.Context(), &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatalf("DeleteParameter: %v", err)
	}
	_, err := getValue(t, c, name)
	wantErr[*ssmtypes.ParameterNotFound](t, "GetParameter after delete", err)
	_, err = c.GetParameterHistory(t.Context(), &ssm.GetParameterHistoryInput{Name: aws.String(name)})
	wantErr[*ssmtypes.ParameterNotFound](t, "GetParameterHistory after delete", err)
	_, err = c.DeleteParameter(t.Context(), &ssm.DeleteParameterInput{Name: aws.String(name)})
	wantErr[*ssmtypes.ParameterNotFound](t, "DeleteParameter twice", err)

	putVersions(t, c, name, ssmtypes.ParameterTypeString, "again")
	h, err := c.GetParameterHistory(t.Context(), &ssm.GetParameterHistoryInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("GetParameterHistory: %v", err)
	}
	if len(h.Parameters) != 1 || h.Parameters[0].Version != 1 || len(h.Parameters[0].Labels) != 0 {
		t.Errorf("history of the recreated parameter = %d entries, want only version 1, unlabelled", len(h.Parameters))
	}
	_, err = getValue(t, c, name+":old")
	wantErr[*ssmtypes.ParameterNotFound](t, "label of the deleted parameter", err)
	tags, err := c.ListTagsForResource(t.Context(), &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name)})
	if err != nil || len(tags.TagList) != 0 {
		t.Errorf("tags of the recreated parameter = %v, %v; want none", tags, err)
	}
}

func TestSSMPutParameterValidation(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	putVersions(t, c, prefix+"/exists", ssmtypes.ParameterTypeString, "v")
	put := func(name, value string, tier ssmtypes.ParameterTier, overwrite bool, tags ...ssmtypes.Tag) error {
		_, err := c.PutParameter(t.Context(), &ssm.PutParameterInput{
			Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString,
			Tier: tier, Overwrite: aws.Bool(overwrite), Tags: tags,
		})
		return err
	}
	tag := ssmtypes.Tag{Key: aws.String("k"), Value: aws.String("v")}
	for _, bad := range []struct{ what, name, value string }{
		{"a space", prefix + "/a b", "v"},
		{"a colon (a selector's)", prefix + "/a:1", "v"},
		{"an aws prefix", "/AWS-thing" + prefix, "v"},
		{"a path without the leading slash", strings.TrimPrefix(prefix, "/") + "/x", "v"},
		{"a Standard value over 4096 characters", prefix + "/big", strings.Repeat("x", 4097)},
	} {
		wantErr[*ssmtypes.ValidationException](t, bad.what, put(bad.name, bad.value, "", false))
	}
	wantErr[*ssmtypes.ValidationException](t, "tags with overwrite", put(prefix+"/exists", "v2", "", true, tag))
	deep := prefix + strings.Repeat("/l", 15)
	wantErr[*ssmtypes.HierarchyLevelLimitExceededException](t, "16 levels", put(deep, "v", "", false))
	if err := put(prefix+"/advanced", strings.Repeat("x", 5000), ssmtypes.ParameterTierAdvanced, false); err != nil {
		t.Errorf("Advanced 5000 characters: %v", err)
	}
	wantErr[*ssmtypes.ValidationException](t, "Advanced back to Standard", put(prefix+"/advanced", "v", ssmtypes.ParameterTierStandard, true))
	d, err := c.DescribeParameters(t.Context(), &ssm.DescribeParametersInput{
		ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Path"), Option: aws.String("Recursive"), Values: []string{prefix}}},
	})
	if err != nil {
		t.Fatalf("DescribeParameters: %v", err)
	}
	var names []string
	for _, p := range d.Parameters {
		names = append(names, aws.ToString(p.Name))
	}
	if want := []string{prefix + "/advanced", prefix + "/exists"}; !slices.Equal(names, want) {
		t.Errorf("parameters = %v, want only %v: refused writes create nothing", names, want)
	}
}

func TestSSMTags(t *testing.T) {
	t.Parallel()
	c, prefix := ssmClient(t)
	name := prefix + "/jwt"
	if _, err := c.PutParameter(t.Context(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String("v"), Type: ssmtypes.ParameterTypeSecureString,
		Tags: []ssmtypes.Tag{{Key: aws.String("team"), Value: aws.String("auth")}},
	}); err != nil {
		t.Fatalf("PutParameter: %v", err)
	}
	list := func() map[string]string {
		t.Helper()
		out, err := c.ListTagsForResource(t.Context(), &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name)})
		if err != nil {
			t.Fatalf("ListTagsForResource: %v", err)
		}
		m := map[string]string{}
		for _, tg := range out.TagList {
			m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		return m
	}
	if got := list(); !maps.Equal(got, map[string]string{"team": "auth"}) {
		t.Errorf("PutParameter's tags = %v, want team=auth", got)
	}
	if _, err := c.AddTagsToResource(t.Context(), &ssm.AddTagsToResourceInput{
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name),
		Tags: []ssmtypes.Tag{{Key: aws.String("phase"), Value: aws.String("grace")}, {Key: aws.String("team"), Value: aws.String("platform")}},
	}); err != nil {
		t.Fatalf("AddTagsToResource: %v", err)
	}
	if _, err := c.RemoveTagsFromResource(t.Context(), &ssm.RemoveTagsFromResourceInput{
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name), TagKeys: []string{"phase"},
	}); err != nil {
		t.Fatalf("RemoveTagsFromResource: %v", err)
	}
	if got := list(); !maps.Equal(got, map[string]string{"team": "platform"}) {
		t.Errorf("tags = %v, want team=platform", got)
	}
	_, err := c.AddTagsToResource(t.Context(), &ssm.AddTagsToResourceInput{
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(prefix + "/missing"),
		Tags: []ssmtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	})
	wantErr[*ssmtypes.InvalidResourceId](t, "tagging an unknown parameter", err)
}
