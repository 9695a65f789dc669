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

// smStaging is a secret under test: its client and name, and its versions'
// values by VersionId.
type smStaging struct {
	t      *testing.T
	c      *secretsmanager.Client
	name   string
	values map[string]string
}

// newStaging starts a World and creates a secret, with value first unless
// it is "".
func newStaging(t *testing.T, first string) *smStaging {
	t.Helper()
	w := startWorld(t, testbed.Options{})
	s := &smStaging{t: t, c: secretsmanager.NewFromConfig(w.AWS), name: uniqueName("tb-stages"), values: map[string]string{}}
	in := &secretsmanager.CreateSecretInput{Name: aws.String(s.name)}
	if first != "" {
		in.SecretString = aws.String(first)
	}
	out, err := s.c.CreateSecret(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if first != "" {
		s.values[aws.ToString(out.VersionId)] = first
	}
	return s
}

// put writes value with the given stages (none: the default) and returns
// the new version's id and labels.
func (s *smStaging) put(value string, stages ...string) (string, []string) {
	s.t.Helper()
	out, err := s.c.PutSecretValue(s.t.Context(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(s.name), SecretString: aws.String(value), VersionStages: stages,
	})
	if err != nil {
		s.t.Fatalf("PutSecretValue %s %v: %v", value, stages, err)
	}
	id := aws.ToString(out.VersionId)
	s.values[id] = value
	return id, out.VersionStages
}

// listed returns DescribeSecret's VersionIdsToStages as value -> sorted
// labels.
func (s *smStaging) listed() map[string]string {
	s.t.Helper()
	d, err := s.c.DescribeSecret(s.t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.name)})
	if err != nil {
		s.t.Fatalf("DescribeSecret: %v", err)
	}
	out := map[string]string{}
	for id, st := range d.VersionIdsToStages {
		out[s.values[id]] = strings.Join(slices.Sorted(slices.Values(st)), ",")
	}
	return out
}

// at reads the value holding stage ("" for GetSecretValue's default) and
// its labels; ok is false for ResourceNotFoundException.
func (s *smStaging) at(stage string) (value string, labels string, ok bool) {
	s.t.Helper()
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.name)}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := s.c.GetSecretValue(s.t.Context(), in)
	var nf *smtypes.ResourceNotFoundException
	if err != nil {
		if !errors.As(err, &nf) {
			s.t.Fatalf("GetSecretValue(%q): %v", stage, err)
		}
		return "", "", false
	}
	return aws.ToString(out.SecretString), strings.Join(slices.Sorted(slices.Values(out.VersionStages)), ","), true
}

// check asserts the listed labels and what each stage reads.
func (s *smStaging) check(what string, want map[string]string) {
	s.t.Helper()
	if got := s.listed(); !maps.Equal(got, want) {
		s.t.Errorf("%s: VersionIdsToStages = %v, want %v", what, got, want)
	}
	for _, stage := range []string{"", "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"} {
		wantValue := ""
		for v, labels := range want {
			if slices.Contains(strings.Split(labels, ","), readStage(stage)) {
				wantValue = v
			}
		}
		value, labels, ok := s.at(stage)
		switch {
		case wantValue == "" && ok:
			s.t.Errorf("%s: GetSecretValue(%q) = %s, want ResourceNotFoundException", what, stage, value)
		case wantValue != "" && (value != wantValue || labels != want[wantValue]):
			s.t.Errorf("%s: GetSecretValue(%q) = %s [%s] (found %v), want %s [%s]", what, stage, value, labels, ok, wantValue, want[wantValue])
		}
	}
}

// readStage is the stage GetSecretValue reads: AWSCURRENT by default.
func readStage(stage string) string {
	if stage == "" {
		return "AWSCURRENT"
	}
	return stage
}

func TestSecretsManagerPutPendingKeepsCurrent(t *testing.T) {
	t.Parallel()
	s := newStaging(t, "v1")
	s.put("v2")
	_, stages := s.put("v3", "AWSPENDING")
	if !slices.Equal(stages, []string{"AWSPENDING"}) {
		t.Errorf("PutSecretValue(AWSPENDING) VersionStages = %v", stages)
	}
	s.check("after a pending write", map[string]string{"v1": "AWSPREVIOUS", "v2": "AWSCURRENT", "v3": "AWSPENDING"})
	s.put("v4", "AWSPENDING")
	s.check("a second pending write moves AWSPENDING only", map[string]string{"v1": "AWSPREVIOUS", "v2": "AWSCURRENT", "v4": "AWSPENDING"})
	s.put("v5", "AWSCURRENT", "custom")
	s.check("a current write moves AWSCURRENT, AWSPREVIOUS follows", map[string]string{"v2": "AWSPREVIOUS", "v4": "AWSPENDING", "v5": "AWSCURRENT,custom"})
}

func TestSecretsManagerFirstValueIsCurrent(t *testing.T) {
	t.Parallel()
	s := newStaging(t, "")
	_, stages := s.put("v1", "AWSPENDING")
	if slices.Sort(stages); !slices.Equal(stages, []string{"AWSCURRENT", "AWSPENDING"}) {
		t.Errorf("first PutSecretValue(AWSPENDING) VersionStages = %v, want AWSCURRENT added", stages)
	}
	s.check("first value", map[string]string{"v1": "AWSCURRENT,AWSPENDING"})
}

func TestSecretsManagerUpdateSecretVersionStage(t *testing.T) {
	t.Parallel()
	s := newStaging(t, "v1")
	ids := map[string]string{}
	for id, v := range s.values {
		ids[v] = id
	}
	ids["v2"], _ = s.put("v2", "AWSPENDING")
	move := func(stage, to, from string) error {
		in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(s.name), VersionStage: aws.String(stage)}
		if to != "" {
			in.MoveToVersionId = aws.String(ids[to])
			if ids[to] == "" {
				in.MoveToVersionId = aws.String(to)
			}
		}
		if from != "" {
			in.RemoveFromVersionId = aws.String(ids[from])
		}
		_, err := s.c.UpdateSecretVersionStage(t.Context(), in)
		return err
	}
	steps := []struct {
		what, stage, to, from string
		want                  map[string]string
	}{
		{"finish a rotation: AWSCURRENT to the pending version", "AWSCURRENT", "v2", "v1",
			map[string]string{"v1": "AWSPREVIOUS", "v2": "AWSCURRENT,AWSPENDING"}},
		{"remove AWSPENDING", "AWSPENDING", "", "v2",
			map[string]string{"v1": "AWSPREVIOUS", "v2": "AWSCURRENT"}},
		{"roll back: AWSCURRENT to the previous version", "AWSCURRENT", "v1", "v2",
			map[string]string{"v1": "AWSCURRENT", "v2": "AWSPREVIOUS"}},
		{"move AWSPREVIOUS explicitly", "AWSPREVIOUS", "v1", "v2",
			map[string]string{"v1": "AWSCURRENT,AWSPREVIOUS"}},
		{"a label no version holds", "blue", "v2", "",
			map[string]string{"v1": "AWSCURRENT,AWSPREVIOUS", "v2": "blue"}},
		{"a label the target holds already", "blue", "v2", "",
			map[string]string{"v1": "AWSCURRENT,AWSPREVIOUS", "v2": "blue"}},
		{"remove AWSPREVIOUS", "AWSPREVIOUS", "", "v1",
			map[string]string{"v1": "AWSCURRENT", "v2": "blue"}},
	}
	for _, st := range steps { // in order: each step starts where the last left
		if err := move(st.stage, st.to, st.from); err != nil {
			t.Fatalf("%s: UpdateSecretVersionStage: %v", st.what, err)
		}
		s.check(st.what, st.want)
	}

	refused := []struct {
		what, stage, to, from string
		want                  any
	}{
		{"moving a held label without RemoveFromVersionId", "AWSCURRENT", "v2", "", new(*smtypes.InvalidParameterException)},
		{"moving a held label from the wrong version", "blue", "v1", "v1", new(*smtypes.InvalidParameterException)},
		{"removing AWSCURRENT", "AWSCURRENT", "", "v1", new(*smtypes.InvalidParameterException)},
		{"removing a label the version lacks", "blue", "", "v1", new(*smtypes.InvalidParameterException)},
		{"moving to an unknown version", "blue", "00000000-0000-4000-8000-000000000000", "v2", new(*smtypes.ResourceNotFoundException)},
	}
	for _, tc := range refused {
		if err := move(tc.stage, tc.to, tc.from); !errors.As(err, tc.want) {
			t.Errorf("%s: error = %v, want %T", tc.what, err, tc.want)
		}
	}
	s.check("after refused moves", map[string]string{"v1": "AWSCURRENT", "v2": "blue"})
	_, err := s.c.UpdateSecretVersionStage(t.Context(), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(uniqueName("tb-missing")), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(ids["v1"]),
	})
	if !errors.As(err, new(*smtypes.ResourceNotFoundException)) {
		t.Errorf("unknown secret: error = %v, want ResourceNotFoundException", err)
	}
}

func TestSecretsManagerGetSecretValueByVersion(t *testing.T) {
	t.Parallel()
	s := newStaging(t, "v1")
	v2, _ := s.put("v2", "AWSPENDING")
	v3, _ := s.put("v3", "AWSPENDING") // v2 left with no label: deprecated
	get := func(id, stage string) (*secretsmanager.GetSecretValueOutput, error) {
		in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.name), VersionId: aws.String(id)}
		if stage != "" {
			in.VersionStage = aws.String(stage)
		}
		return s.c.GetSecretValue(t.Context(), in)
	}
	if out, err := get(v3, "AWSPENDING"); err != nil || aws.ToString(out.SecretString) != "v3" {
		t.Errorf("VersionId and its stage: %v, %v", out, err)
	}
	if _, err := get(v3, "AWSCURRENT"); !errors.As(err, new(*smtypes.ResourceNotFoundException)) {
		t.Errorf("VersionId with a stage it lacks: error = %v, want ResourceNotFoundException", err)
	}
	out, err := get(v2, "")
	if err != nil || aws.ToString(out.SecretString) != "v2" || len(out.VersionStages) != 0 {
		t.Errorf("deprecated version by VersionId = %v, %v; want v2 with no stages", out, err)
	}
	s.check("deprecated v2 unlisted", map[string]string{"v1": "AWSCURRENT", "v3": "AWSPENDING"})
}
