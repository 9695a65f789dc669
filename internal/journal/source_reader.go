package journal

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/valine/valine-check/internal/secret"
)

// ParameterGetter is the one SSM call a SourceReader makes.
type ParameterGetter interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// SecretValueGetter is the one Secrets Manager call a SourceReader makes.
type SecretValueGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SourceReader reads what a source of truth holds as its primary, the
// value the next deploy writes onto the fleet, with read-only calls: the
// scheduled probe compares it with the journal without linking anything
// that writes. A nil client for a kind is an error when that kind is read.
type SourceReader struct {
	SSM     ParameterGetter
	Secrets SecretValueGetter
}

// ErrNoSourceReader is returned when no client can read the source.
var ErrNoSourceReader = errors.New("no client to read the source of truth")

// Primary returns the SSM parameter's value (decrypted) or the Secrets
// Manager secret's AWSCURRENT value.
func (r SourceReader) Primary(ctx context.Context, src Source) (secret.Secret, error) {
	switch src.Kind {
	case SourceSSM:
		if r.SSM == nil {
			return secret.Secret{}, fmt.Errorf("%w %s", ErrNoSourceReader, src)
		}
		out, err := r.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(src.Name), WithDecryption: aws.Bool(true)})
		if err != nil {
			return secret.Secret{}, fmt.Errorf("reading %s: %w", src, err)
		}
		if out.Parameter == nil {
			return secret.Secret{}, fmt.Errorf("reading %s: no parameter in the answer", src)
		}
		return secret.NewSecret(aws.ToString(out.Parameter.Value)), nil
	case SourceSecretsManager:
		if r.Secrets == nil {
			return secret.Secret{}, fmt.Errorf("%w %s", ErrNoSourceReader, src)
		}
		out, err := r.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(src.Name), VersionStage: aws.String("AWSCURRENT")})
		if err != nil {
			return secret.Secret{}, fmt.Errorf("reading %s: %w", src, err)
		}
		return secret.NewSecret(aws.ToString(out.SecretString)), nil
	}
	return secret.Secret{}, fmt.Errorf("%s is not a store", src)
}
