package testbed_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/valine/valine-check/internal/testbed"
)

func smTags(m map[string]string) []smtypes.Tag {
	var out []smtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, smtypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func tagMap(tags []smtypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestSecretsManagerTagResource(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := secretsmanager.NewFromConfig(w.AWS)

	type step struct {
		name  string
		tag   map[string]string
		untag []string
		byARN bool
		want  map[string]string
	}
	created := map[string]string{"team": "auth", "env": "dev"}
	steps := []step{
		{name: "CreateSecret's tags", want: created},
		{name: "tag adds and overrides", tag: map[string]string{"env": "prod", "valine-check:phase": "grace"},
			want: map[string]string{"team": "auth", "env": "prod", "valine-check:phase": "grace"}},
		{name: "overwrite", tag: map[string]string{"valine-check:phase": "completed"},
			want: map[string]string{"team": "auth", "env": "prod", "valine-check:phase": "completed"}},
		{name: "untag a stored and a created tag", untag: []string{"valine-check:phase", "team", "absent"},
			want: map[string]string{"env": "prod"}},
		{name: "tag by ARN", tag: map[string]string{"team": "platform", "note": "a b_c.d:e/f=g+h-i@j"}, byARN: true,
			want: map[string]string{"env": "prod", "team": "platform", "note": "a b_c.d:e/f=g+h-i@j"}},
		{name: "untag by ARN", untag: []string{"note"}, byARN: true,
			want: map[string]string{"env": "prod", "team": "platform"}},
	}
	name := uniqueName("tb-tags")
	out, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String("v1"), Tags: smTags(created),
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	for _, s := range steps { // in order: each step starts where the last left
		id := name
		if s.byARN {
			id = aws.ToString(out.ARN)
		}
		if s.tag != nil {
			if _, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{SecretId: aws.String(id), Tags: smTags(s.tag)}); err != nil {
				t.Fatalf("%s: TagResource: %v", s.name, err)
			}
		}
		if s.untag != nil {
			if _, err := c.UntagResource(t.Context(), &secretsmanager.UntagResourceInput{SecretId: aws.String(id), TagKeys: s.untag}); err != nil {
				t.Fatalf("%s: UntagResource: %v", s.name, err)
			}
		}
		d, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			t.Fatalf("%s: DescribeSecret: %v", s.name, err)
		}
		if got := tagMap(d.Tags); !maps.Equal(got, s.want) {
			t.Errorf("%s: DescribeSecret tags = %v, want %v", s.name, got, s.want)
		}
		var listed map[string]string
		pages := secretsmanager.NewListSecretsPaginator(c, &secretsmanager.ListSecretsInput{})
		for pages.HasMorePages() && listed == nil {
			page, err := pages.NextPage(t.Context())
			if err != nil {
				t.Fatalf("%s: ListSecrets: %v", s.name, err)
			}
			for _, e := range page.SecretList {
				if aws.ToString(e.Name) == name {
					listed = tagMap(e.Tags)
				}
			}
		}
		if !maps.Equal(listed, s.want) {
			t.Errorf("%s: ListSecrets tags = %v, want %v", s.name, listed, s.want)
		}
	}
}

func TestSecretsManagerTaggingErrors(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := secretsmanager.NewFromConfig(w.AWS)
	name := uniqueName("tb-tag-errors")
	if _, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v1")}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	missing := uniqueName("tb-missing")
	cases := []struct {
		name string
		call func() error
		want any
	}{
		{"tag unknown secret", func() error {
			_, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{SecretId: aws.String(missing), Tags: smTags(map[string]string{"a": "b"})})
			return err
		}, new(*smtypes.ResourceNotFoundException)},
		{"untag unknown secret", func() error {
			_, err := c.UntagResource(t.Context(), &secretsmanager.UntagResourceInput{SecretId: aws.String(missing), TagKeys: []string{"a"}})
			return err
		}, new(*smtypes.ResourceNotFoundException)},
		{"tag unknown ARN", func() error {
			_, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{
				SecretId: aws.String("arn:aws:secretsmanager:us-east-1:000000000000:secret:" + missing + "-abcdef"), Tags: smTags(map[string]string{"a": "b"})})
			return err
		}, new(*smtypes.ResourceNotFoundException)},
		{"value with a forbidden character", func() error {
			_, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: smTags(map[string]string{"a": "rotate (see #ops)"})})
			return err
		}, new(*smtypes.InvalidParameterException)},
		{"value longer than 256", func() error {
			_, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: smTags(map[string]string{"a": strings.Repeat("x", 257)})})
			return err
		}, new(*smtypes.InvalidParameterException)},
		{"aws: prefix", func() error {
			_, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: smTags(map[string]string{"aws:x": "b"})})
			return err
		}, new(*smtypes.InvalidParameterException)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !errors.As(err, tc.want) {
				t.Fatalf("error = %v, want %T", err, tc.want)
			}
		})
	}
	d, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if len(d.Tags) != 0 {
		t.Errorf("refused TagResource calls left tags %v", tagMap(d.Tags))
	}
}

func TestSecretsManagerRecreatedSecretStartsUntagged(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := secretsmanager.NewFromConfig(w.AWS)
	name := uniqueName("tb-recreate")
	for i, tag := range []bool{true, false} {
		if _, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v1")}); err != nil {
			t.Fatalf("CreateSecret %d: %v", i, err)
		}
		d, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeSecret: %v", err)
		}
		if len(d.Tags) != 0 {
			t.Fatalf("secret %d starts with tags %v", i, tagMap(d.Tags))
		}
		if tag {
			if _, err := c.TagResource(t.Context(), &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: smTags(map[string]string{"k": "v"})}); err != nil {
				t.Fatalf("TagResource: %v", err)
			}
			if _, err := c.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
				t.Fatalf("DeleteSecret: %v", err)
			}
		}
	}
}

// TestSecretsManagerPreviousMoves checks that only the version AWSCURRENT
// was last taken from is AWSPREVIOUS (kumo leaves it on every older one).
func TestSecretsManagerPreviousMoves(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := secretsmanager.NewFromConfig(w.AWS)
	name := uniqueName("tb-previous")
	first, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v1")})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	for _, v := range []string{"v2", "v3", "v4"} {
		if _, err := c.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(v)}); err != nil {
			t.Fatalf("PutSecretValue %s: %v", v, err)
		}
	}
	if _, err := c.UpdateSecret(t.Context(), &secretsmanager.UpdateSecretInput{SecretId: aws.String(name), SecretString: aws.String("v5")}); err != nil {
		t.Fatalf("UpdateSecret: %v", err)
	}
	for range 20 { // kumo alone answers one of v1..v4 at random
		got, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("AWSPREVIOUS")})
		if err != nil {
			t.Fatalf("GetSecretValue(AWSPREVIOUS): %v", err)
		}
		if v := aws.ToString(got.SecretString); v != "v4" || !slices.Equal(got.VersionStages, []string{"AWSPREVIOUS"}) {
			t.Fatalf("AWSPREVIOUS = %s %v, want v4 [AWSPREVIOUS]", v, got.VersionStages)
		}
	}
	d, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	count := map[string]int{}
	for _, stages := range d.VersionIdsToStages {
		for _, s := range stages {
			count[s]++
		}
	}
	if want := map[string]int{"AWSCURRENT": 1, "AWSPREVIOUS": 1}; !maps.Equal(count, want) || len(d.VersionIdsToStages) != 2 {
		t.Errorf("VersionIdsToStages = %v, want one AWSCURRENT, one AWSPREVIOUS, deprecated versions unlisted", d.VersionIdsToStages)
	}
	old, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionId: first.VersionId})
	if err != nil {
		t.Fatalf("GetSecretValue(first version): %v", err)
	}
	if aws.ToString(old.SecretString) != "v1" || len(old.VersionStages) != 0 {
		t.Errorf("first version = %s %v, want v1 with no stages", aws.ToString(old.SecretString), old.VersionStages)
	}
}

// TestSecretsManagerClientRequestToken checks AWS's idempotency: a write
// naming an existing version is ignored (same value) or refused (another).
func TestSecretsManagerClientRequestToken(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	c := secretsmanager.NewFromConfig(w.AWS)
	name := uniqueName("tb-token")
	tok := func(c byte) *string { return aws.String(strings.Repeat(string(c), 32)) }
	if _, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v1")}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	put := func(value string, token *string) error {
		_, err := c.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value), ClientRequestToken: token})
		return err
	}
	stages := func() (string, string) {
		t.Helper()
		var out [2]string
		for i, st := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
			got, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String(st)})
			if err != nil {
				t.Fatalf("GetSecretValue(%s): %v", st, err)
			}
			out[i] = aws.ToString(got.SecretString)
		}
		return out[0], out[1]
	}
	for _, v := range []struct {
		value string
		token byte
	}{{"v2", 'b'}, {"v3", 'c'}} {
		if err := put(v.value, tok(v.token)); err != nil {
			t.Fatalf("PutSecretValue %s: %v", v.value, err)
		}
	}
	cases := []struct {
		name      string
		value     string
		token     byte
		wantErr   any
		cur, prev string
	}{
		{name: "retry of the last write", value: "v3", token: 'c', cur: "v3", prev: "v2"},
		{name: "same value as an older version", value: "v2", token: 'b', cur: "v3", prev: "v2"},
		{name: "another value under an existing token", value: "v9", token: 'b', wantErr: new(*smtypes.ResourceExistsException), cur: "v3", prev: "v2"},
		{name: "new token", value: "v4", token: 'd', cur: "v4", prev: "v3"},
	}
	for _, tc := range cases { // in order: each case starts where the last left
		err := put(tc.value, tok(tc.token))
		switch {
		case tc.wantErr == nil && err != nil:
			t.Fatalf("%s: PutSecretValue: %v", tc.name, err)
		case tc.wantErr != nil && !errors.As(err, tc.wantErr):
			t.Fatalf("%s: PutSecretValue error = %v, want %T", tc.name, err, tc.wantErr)
		}
		if cur, prev := stages(); cur != tc.cur || prev != tc.prev {
			t.Errorf("%s: current, previous = %s, %s; want %s, %s", tc.name, cur, prev, tc.cur, tc.prev)
		}
	}
}
