package rotate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
)

// SecretsAPI is the Secrets Manager calls the backup and the journal make,
// with the SDK's exact signatures, so the real client and a small fake both
// satisfy it.
type SecretsAPI interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *secretsmanager.UntagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error)
	DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
}

// MinSecretBytes is the shortest secret rotation writes or trusts: 32
// bytes, as `openssl rand -base64 32` gives (44 characters).
const MinSecretBytes = 32

// tooShort reports whether a secret is shorter than MinSecretBytes: the
// one test of length every writer and reader of secrets makes.
func tooShort(s secret.Secret) bool { return len(s.Reveal()) < MinSecretBytes }

// Errors of the backup; each is wrapped with the secret's name, the stage
// and fingerprints, never a value.
var (
	// ErrNoBackup: the backup secret, or the requested stage of it, does
	// not exist (journal.ErrNoBackup, which readers get too).
	ErrNoBackup = journal.ErrNoBackup
	// ErrBadBackup: a stored value is empty or shorter than MinSecretBytes.
	ErrBadBackup = errors.New("the backup holds an empty or short secret")
)

// Backup is the Secrets Manager secret (one per fleet) that holds the old
// and the new JWT secret of a rotation, before any function changes, and
// the rotation's journal in its tags (see Journal).
type Backup struct {
	API  SecretsAPI
	Name string // the secret's name (an ARN reads an existing one, but Store cannot create by ARN)
}

// Store makes the backup hold new as AWSCURRENT and old as AWSPREVIOUS. It
// refuses, before any call, an empty or short old or new secret
// (ErrShortSecret) and old equal to new (ErrReusedSecret).
//
// Store converges from whatever it finds, so calling it again after a crash
// or a failed call finishes the job. No secret: it is created with old,
// then given new. A current new over a previous old: left alone. A current
// old: given new. Anything else (another secret, no value, a short one):
// given old, then new. It then reads both
// stages back and fails unless they hold what it stored.
//
// Each write carries a ClientRequestToken derived from a constant, the
// fingerprint of the value written and the version it replaces, so the
// SDK's retry of a write that did reach AWS is ignored rather than applied
// twice, while the same value written again later (a rollback followed by
// a new rotation) gets a new token: on AWS a token naming an existing
// version is ignored, which would leave the labels where they were.
func (b Backup) Store(ctx context.Context, old, next secret.Secret) error {
	// A short old secret is still backed up: rotating away from a legacy
	// short secret must be possible (Previous refuses to hand it back for a
	// rollback). The new one must be full length.
	if old.IsEmpty() {
		return fmt.Errorf("backing up the old secret: %w", ErrEmptySecret)
	}
	if tooShort(next) {
		return fmt.Errorf("backing up the new secret %s: %w", next, ErrShortSecret)
	}
	if old.Equal(next) {
		return fmt.Errorf("backing up: old and new are both %s: %w", old, ErrReusedSecret)
	}
	if b.Name == "" {
		return errors.New("backing up: no backup secret name")
	}

	current, currentVersion, err := b.currentOrCreate(ctx, old)
	if err != nil {
		return err
	}
	if current.Equal(next) {
		previous, _, err := b.get(ctx, journal.StagePrevious)
		if err != nil && !errors.Is(err, ErrNoBackup) {
			return err
		}
		if previous.Equal(old) {
			return nil
		}
	}
	if !current.Equal(old) {
		if currentVersion, err = b.put(ctx, old, currentVersion); err != nil {
			return err
		}
	}
	if _, err := b.put(ctx, next, currentVersion); err != nil {
		return err
	}
	return b.check(ctx, old, next)
}

// currentOrCreate returns the backup's AWSCURRENT value and version,
// creating the secret with old when it does not exist. A secret that
// exists with no value has nothing current.
func (b Backup) currentOrCreate(ctx context.Context, old secret.Secret) (secret.Secret, string, error) {
	current, version, err := b.get(ctx, journal.StageCurrent)
	if !errors.Is(err, ErrNoBackup) {
		return current, version, err
	}
	if exists, err := b.exists(ctx); err != nil || exists {
		return secret.Secret{}, "", err
	}
	version, err = b.create(ctx, old)
	var taken *types.ResourceExistsException
	switch {
	case errors.As(err, &taken):
		// A retried or concurrent create got there first: go on from
		// what it left.
		current, version, err = b.get(ctx, journal.StageCurrent)
		if errors.Is(err, ErrNoBackup) {
			return secret.Secret{}, "", nil
		}
		return current, version, err
	case err != nil:
		return secret.Secret{}, "", err
	}
	return old, version, nil
}

// Current returns the backup's AWSCURRENT secret: the new one of the last
// rotation stored. ErrNoBackup when there is none, ErrBadBackup when it is
// empty or short.
func (b Backup) Current(ctx context.Context) (secret.Secret, error) {
	return b.read(ctx, journal.StageCurrent)
}

// Previous returns the backup's AWSPREVIOUS secret: the old one of the
// last rotation stored, the one a rollback restores. ErrNoBackup when
// there is none, ErrBadBackup when it is empty or short.
func (b Backup) Previous(ctx context.Context) (secret.Secret, error) {
	return b.read(ctx, journal.StagePrevious)
}

// read returns the value at stage, refusing a short one.
// Stored returns the value held in a stage (journal.StageCurrent, journal.StagePrevious)
// whatever its length, for readers that only compare it (by fingerprint)
// and never write it: the scheduled probe checks a legacy short secret's
// grace period with it. Missing: ErrNoBackup. Current and Previous, which
// feed writes, refuse short values.
func (b Backup) Stored(ctx context.Context, stage string) (secret.Secret, error) {
	s, _, err := b.get(ctx, stage)
	return s, err
}

func (b Backup) read(ctx context.Context, stage string) (secret.Secret, error) {
	s, _, err := b.get(ctx, stage)
	if err != nil {
		return secret.Secret{}, err
	}
	if tooShort(s) {
		return secret.Secret{}, fmt.Errorf("backup %s %s is %s (%d bytes, at least %d needed): %w",
			b.Name, stage, s, len(s.Reveal()), MinSecretBytes, ErrBadBackup)
	}
	return s, nil
}

// get returns the value at stage and its version id, whatever its length.
func (b Backup) get(ctx context.Context, stage string) (secret.Secret, string, error) {
	return b.reader().Stage(ctx, stage)
}

// Exists reports whether the backup secret exists (perhaps with no value).
func (b Backup) Exists(ctx context.Context) (bool, error) { return b.reader().Exists(ctx) }

// exists reports whether the backup secret exists (perhaps with no value).
func (b Backup) exists(ctx context.Context) (bool, error) { return b.reader().Exists(ctx) }

// create creates the backup secret holding s as AWSCURRENT and returns the
// version id.
func (b Backup) create(ctx context.Context, s secret.Secret) (string, error) {
	out, err := b.API.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:               aws.String(b.Name),
		Description:        aws.String("valine-check: JWT secret backup (AWSCURRENT = new, AWSPREVIOUS = old) and rotation journal (tags)"),
		SecretString:       aws.String(string(s.Reveal())),
		ClientRequestToken: aws.String(requestToken(s, "")),
	})
	if err != nil {
		return "", fmt.Errorf("creating backup %s with %s: %w", b.Name, s, err)
	}
	return aws.ToString(out.VersionId), nil
}

// put makes s the backup's AWSCURRENT, replacing version after, and
// returns the new version id.
func (b Backup) put(ctx context.Context, s secret.Secret, after string) (string, error) {
	out, err := b.API.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(b.Name),
		SecretString:       aws.String(string(s.Reveal())),
		ClientRequestToken: aws.String(requestToken(s, after)),
	})
	if err != nil {
		return "", fmt.Errorf("storing %s in backup %s: %w", s, b.Name, err)
	}
	return aws.ToString(out.VersionId), nil
}

// check reads both stages back: Store succeeds only on what is there.
func (b Backup) check(ctx context.Context, old, next secret.Secret) error {
	current, _, err := b.get(ctx, journal.StageCurrent)
	if err != nil {
		return fmt.Errorf("reading the backup back: %w", err)
	}
	previous, _, err := b.get(ctx, journal.StagePrevious)
	if err != nil {
		return fmt.Errorf("reading the backup back: %w", err)
	}
	if !current.Equal(next) || !previous.Equal(old) {
		return fmt.Errorf("backup %s holds current %s, previous %s after storing new %s, old %s (another writer?)",
			b.Name, current, previous, next, old)
	}
	return nil
}

// requestToken is the ClientRequestToken (64 hex digits) of writing s over
// version after: derived from s's fingerprint, never its value.
func requestToken(s secret.Secret, after string) string {
	sum := sha256.Sum256([]byte("valine-check backup v1\x00" + s.Fingerprint() + "\x00" + after))
	return hex.EncodeToString(sum[:])
}
