package rotate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
)

// SourceSecretsAPI is the Secrets Manager calls a Secrets Manager source
// makes, with the SDK's exact signatures.
type SourceSecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

// Secrets Manager's staging labels.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	stagePending  = "AWSPENDING"
)

// SecretsManagerStore is a Secrets Manager secret that the deploy reads
// (the runbook's valine/prod/jwt-secret, {{resolve:secretsmanager:…}}),
// its SecretString the JWT secret. It follows Secrets Manager's own
// rotation protocol: the new secret is written as AWSPENDING first
// (Stage), then promoted to AWSCURRENT by moving the label. The primary is
// AWSCURRENT and the secondary AWSPREVIOUS: a phase with no secondary
// takes AWSPREVIOUS off the version it is on, so a function that verifies
// with AWSPREVIOUS too (runtime delivery) refuses the retired secret as
// the phase says. Versions it writes carry ClientRequestToken
// "valine-check-<rotation id>-new" (or -old), so a retried write is
// ignored rather than applied twice.
type SecretsManagerStore struct {
	API  SourceSecretsAPI
	Name string
}

// Source is "secretsmanager:<Name>".
func (s SecretsManagerStore) Source() journal.Source {
	return journal.Source{Kind: journal.SourceSecretsManager, Name: s.Name}
}

// Read returns AWSCURRENT and, when some version carries it, AWSPREVIOUS.
func (s SecretsManagerStore) Read(ctx context.Context) (primary, secondary secret.Secret, err error) {
	primary, found, err := s.stage(ctx, stageCurrent)
	if err != nil {
		return primary, secondary, err
	}
	if !found {
		return primary, secondary, fmt.Errorf("%w: secret %s has no AWSCURRENT value", ErrStoreMismatch, s.Name)
	}
	secondary, _, err = s.stage(ctx, stagePrevious)
	return primary, secondary, err
}

// stage reads the value staged as label; found is false when no version
// carries it.
func (s SecretsManagerStore) stage(ctx context.Context, label string) (v secret.Secret, found bool, err error) {
	out, err := s.API.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.Name), VersionStage: aws.String(label)})
	var missing *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &missing) && label != stageCurrent:
		return v, false, nil
	case errors.As(err, &missing):
		return v, false, fmt.Errorf("%w: secret %s has no AWSCURRENT value (%v); create it holding the fleet's secret and make the deploy read it, then rotate", ErrNoStore, s.Name, err)
	case err != nil:
		return v, false, fmt.Errorf("reading %s of secret %s: %w", label, s.Name, err)
	}
	return secret.NewSecret(aws.ToString(out.SecretString)), true, nil
}

// versions is the secret's staged versions: id → its labels, and id → its
// value (read by version id).
type versions struct {
	stages map[string][]string
	values map[string]secret.Secret
}

// holding returns the id of the version holding v ("" for none).
func (vs versions) holding(v secret.Secret) string {
	for _, id := range slices.Sorted(maps.Keys(vs.values)) {
		if vs.values[id].Equal(v) {
			return id
		}
	}
	return ""
}

// labelled returns the id of the version carrying label ("" for none).
func (vs versions) labelled(label string) string {
	for id, stages := range vs.stages {
		if slices.Contains(stages, label) {
			return id
		}
	}
	return ""
}

// versions reads the staged versions and their values.
func (s SecretsManagerStore) versions(ctx context.Context) (versions, error) {
	d, err := s.API.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Name)})
	if err != nil {
		return versions{}, fmt.Errorf("describing secret %s: %w", s.Name, err)
	}
	vs := versions{stages: d.VersionIdsToStages, values: map[string]secret.Secret{}}
	for id := range d.VersionIdsToStages {
		out, err := s.API.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.Name), VersionId: aws.String(id)})
		if err != nil {
			return versions{}, fmt.Errorf("reading version %s of secret %s: %w", id, s.Name, err)
		}
		vs.values[id] = secret.NewSecret(aws.ToString(out.SecretString))
	}
	return vs, nil
}

// Stage writes next as AWSPENDING (createSecret in Secrets Manager's
// protocol), unless a version holds it already, after checking that
// AWSCURRENT holds old.
func (s SecretsManagerStore) Stage(ctx context.Context, j journal.Journal, old, next secret.Secret) error {
	vs, err := s.versions(ctx)
	if err != nil {
		return err
	}
	cur := vs.labelled(stageCurrent)
	if cur == "" || !vs.values[cur].Equal(old) {
		return fmt.Errorf("%w: AWSCURRENT of secret %s holds %s, not the old secret %s", ErrStoreMismatch, s.Name, fpOrNone(vs.values[cur]), old)
	}
	if id := vs.holding(next); id != "" {
		if !slices.Contains(vs.stages[id], stagePending) {
			return s.move(ctx, stagePending, id, vs.labelled(stagePending))
		}
		return nil
	}
	_, err = s.write(ctx, j, next)
	return err
}

// write puts v as a new version staged AWSPENDING and returns its id.
func (s SecretsManagerStore) write(ctx context.Context, j journal.Journal, v secret.Secret) (string, error) {
	out, err := s.API.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(s.Name), SecretString: aws.String(string(v.Reveal())),
		ClientRequestToken: aws.String("valine-check-" + versionLabel(j, v)),
		VersionStages:      []string{stagePending},
	})
	if err != nil {
		return "", fmt.Errorf("staging %s as AWSPENDING of secret %s: %w", v, s.Name, err)
	}
	return aws.ToString(out.VersionId), nil
}

// move puts label on version to, taking it from version from ("" when no
// version carries it). to "" removes it from from.
func (s SecretsManagerStore) move(ctx context.Context, label, to, from string) error {
	if to == from {
		return nil
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(s.Name), VersionStage: aws.String(label)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	if _, err := s.API.UpdateSecretVersionStage(ctx, in); err != nil {
		return fmt.Errorf("moving %s of secret %s: %w", label, s.Name, err)
	}
	return nil
}

// Put makes AWSCURRENT hold primary and AWSPREVIOUS hold secondary (or no
// version carry it), writing a version only for a value no staged version
// holds, then reads both stages back. A promoted AWSPENDING version loses
// AWSPENDING, as finishSecret leaves it.
func (s SecretsManagerStore) Put(ctx context.Context, j journal.Journal, primary, secondary secret.Secret) (changed bool, err error) {
	if primary.IsEmpty() {
		return false, ErrEmptySecret
	}
	vs, err := s.versions(ctx)
	if err != nil {
		return false, err
	}
	idOf := func(v secret.Secret) (string, error) {
		if id := vs.holding(v); id != "" {
			return id, nil
		}
		id, err := s.write(ctx, j, v)
		if err != nil {
			return "", err
		}
		changed = true
		vs, err = s.versions(ctx) // labels moved
		return id, err
	}
	p, err := idOf(primary)
	if err != nil {
		return changed, err
	}
	if cur := vs.labelled(stageCurrent); cur != p {
		// Moving AWSCURRENT puts AWSPREVIOUS on the version it leaves.
		if err := s.move(ctx, stageCurrent, p, cur); err != nil {
			return changed, err
		}
		changed = true
		if vs, err = s.versions(ctx); err != nil {
			return changed, err
		}
	}
	if slices.Contains(vs.stages[p], stagePending) {
		if err := s.move(ctx, stagePending, "", p); err != nil {
			return changed, err
		}
		changed = true
	}
	prev, want := vs.labelled(stagePrevious), ""
	if !secondary.IsEmpty() {
		if want, err = idOf(secondary); err != nil {
			return changed, err
		}
		prev = vs.labelled(stagePrevious)
	}
	if prev != want {
		if err := s.move(ctx, stagePrevious, want, prev); err != nil {
			return changed, err
		}
		changed = true
	}
	gotPrimary, gotSecondary, err := s.Read(ctx)
	if err != nil {
		return changed, err
	}
	return changed, checkReadBack(s.Source(), gotPrimary, gotSecondary, primary, secondary)
}
