package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/valine/valine-check/internal/secret"
)

// SecretsReader is the two Secrets Manager calls reading a journal and its
// backup make, with the SDK's exact signatures: a reader can be given a
// role that may do nothing else.
type SecretsReader interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Reader reads a rotation's journal (the tags of its backup secret) and
// the secrets that backup holds, changing nothing.
type Reader struct {
	API  SecretsReader
	Name string // the backup secret's name or ARN
}

// Secrets Manager's staging labels: the backup keeps the secret in force as
// AWSCURRENT and the one before as AWSPREVIOUS.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
)

// ErrNoBackup: the backup secret, or the requested stage of it, does not exist.
var ErrNoBackup = errors.New("no backup")

// Read returns the journal recorded on the backup secret; false
// when the secret does not exist or carries no journal tags. A journal
// that cannot be read back is an error wrapping ErrBadJournal.
func (r Reader) Read(ctx context.Context) (Journal, bool, error) {
	tags, exists, err := r.RawTags(ctx)
	if err != nil || !exists || len(tags) == 0 {
		return Journal{}, false, err
	}
	bad := func(format string, args ...any) (Journal, bool, error) {
		return Journal{}, false, fmt.Errorf("%w on %s: %s", ErrBadJournal, r.Name, fmt.Sprintf(format, args...))
	}
	j := Journal{
		ID:             tags[tagID],
		OldFingerprint: tags[tagOld],
		NewFingerprint: tags[tagNew],
		Reason:         tags[tagReason],
	}
	if j.ID == "" {
		return bad("no %s tag", Prefix+tagID)
	}
	if j.Mode, err = ParseMode(tags[tagMode]); err != nil {
		return bad("%s: %v", Prefix+tagMode, err)
	}
	if j.Phase, err = ParsePhase(tags[tagPhase]); err != nil {
		return bad("%s: %v", Prefix+tagPhase, err)
	}
	if j.Baseline, err = decodeBaseline(tags[tagBaseline]); err != nil {
		return bad("%s: %v", Prefix+tagBaseline, err)
	}
	// Absent tags leave the zero values (the functions' environment),
	// which is what a journal written before sources existed means.
	if v := tags[tagSource]; v != "" {
		if j.Source, err = ParseSource(v); err != nil || !j.Source.IsStore() {
			return bad("%s: %q is not a store (ssm:/name or secretsmanager:name)", Prefix+tagSource, v)
		}
	}
	if v := tags[tagDelivery]; v != "" {
		if j.Delivery, err = ParseDelivery(v); err != nil {
			return bad("%s: %v", Prefix+tagDelivery, err)
		}
	}
	if v := tags[tagCacheTTL]; v != "" {
		if j.CacheTTL, err = time.ParseDuration(v); err != nil || j.CacheTTL <= 0 {
			return bad("%s: %q is not a positive duration", Prefix+tagCacheTTL, v)
		}
	}
	switch j.Verification = tags[tagVerification]; j.Verification {
	case "", VerificationPending, VerificationFailed:
	default:
		return bad("%s: unknown value %q", Prefix+tagVerification, j.Verification)
	}
	for k, t := range map[string]*time.Time{tagGraceDeadline: &j.GraceDeadline, tagStartedAt: &j.StartedAt, tagUpdatedAt: &j.UpdatedAt} {
		if tags[k] == "" {
			continue
		}
		if *t, err = time.Parse(time.RFC3339Nano, tags[k]); err != nil {
			return bad("%s: %v", Prefix+k, err)
		}
	}
	return j, true, nil
}

// RawTags returns the backup's journal tags by key without Prefix, and
// whether the secret exists.
func (r Reader) RawTags(ctx context.Context) (map[string]string, bool, error) {
	out, err := r.API.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.Name)})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading the journal on %s: %w", r.Name, err)
	}
	tags := map[string]string{}
	for _, t := range out.Tags {
		if k, ok := strings.CutPrefix(aws.ToString(t.Key), Prefix); ok {
			tags[k] = aws.ToString(t.Value)
		}
	}
	return tags, true, nil
}

// Exists reports whether the backup secret exists (perhaps with no value
// and no journal).
func (r Reader) Exists(ctx context.Context) (bool, error) {
	_, err := r.API.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.Name)})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("describing backup %s: %w", r.Name, err)
	}
	return true, nil
}

// Stage returns the value held in stage (StageCurrent, StagePrevious)
// whatever its length, and its version id; ErrNoBackup when the secret or
// the stage does not exist. A reader compares it by fingerprint; a writer
// checks its length first.
func (r Reader) Stage(ctx context.Context, stage string) (secret.Secret, string, error) {
	out, err := r.API.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(r.Name), VersionStage: aws.String(stage),
	})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		return secret.Secret{}, "", fmt.Errorf("%w in %s (%s): %w", ErrNoBackup, r.Name, stage, notFound)
	case err != nil:
		return secret.Secret{}, "", fmt.Errorf("reading %s of backup %s: %w", stage, r.Name, err)
	}
	value := aws.ToString(out.SecretString)
	if out.SecretString == nil {
		value = string(out.SecretBinary)
	}
	return secret.NewSecret(value), aws.ToString(out.VersionId), nil
}
