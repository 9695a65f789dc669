package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
)

// SSMAPI is the SSM Parameter Store calls an SSM source makes, with the
// SDK's exact signatures.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameter(ctx context.Context, in *ssm.DeleteParameterInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
	LabelParameterVersion(ctx context.Context, in *ssm.LabelParameterVersionInput, optFns ...func(*ssm.Options)) (*ssm.LabelParameterVersionOutput, error)
}

// SSMStore is an SSM Parameter Store SecureString that the deploy reads
// (for example ${ssm:/valine/prod/jwt-secret}). Each write is a new
// version of the parameter, labelled after the rotation ("<id>-new",
// "<id>-old"), so finalize, rollback and an operator can name versions
// (GetParameter "/name:<label>"). The secondary, where a phase has one,
// is its own parameter, Name with "-secondary" appended. A phase with no
// secondary gives that parameter, when it exists, the primary's value
// rather than deleting it: a template that references it
// ({{resolve:ssm-secure:/name-secondary}}) would fail to deploy without
// it, SSM holds no empty value, and a secondary equal to the primary
// verifies nothing more (Read reports it as none).
type SSMStore struct {
	API  SSMAPI
	Name string
}

// Source is "ssm:<Name>".
func (s SSMStore) Source() journal.Source {
	return journal.Source{Kind: journal.SourceSSM, Name: s.Name}
}

// Read returns the parameter's value and, when the secondary parameter
// exists, its value. A missing primary is ErrStoreMismatch: there is no
// secret to rotate from.
func (s SSMStore) Read(ctx context.Context) (primary, secondary secret.Secret, err error) {
	primary, found, err := s.get(ctx, s.Name)
	if err != nil {
		return primary, secondary, err
	}
	if !found {
		return primary, secondary, fmt.Errorf("%w: SSM parameter %s does not exist; create it holding the fleet's secret (a SecureString: aws ssm put-parameter --type SecureString --name %s --value file://…) and make the deploy read it, then rotate", ErrNoStore, s.Name, s.Name)
	}
	secondary, _, err = s.get(ctx, s.Source().SecondaryParameter())
	if secondary.Equal(primary) {
		secondary = secret.Secret{} // the form "no secondary" takes (see SSMStore)
	}
	return primary, secondary, err
}

// get reads one parameter, decrypted; found is false when it does not
// exist.
func (s SSMStore) get(ctx context.Context, name string) (v secret.Secret, found bool, err error) {
	out, err := s.API.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	var missing *ssmtypes.ParameterNotFound
	switch {
	case errors.As(err, &missing):
		return v, false, nil
	case err != nil:
		return v, false, fmt.Errorf("reading SSM parameter %s: %w", name, err)
	case out.Parameter == nil:
		return v, false, fmt.Errorf("reading SSM parameter %s: no parameter in the answer", name)
	}
	return secret.NewSecret(aws.ToString(out.Parameter.Value)), true, nil
}

// Stage labels the version holding the old secret "<id>-old", so a
// rollback can name it; the new secret is written by the first Put that
// needs it (a parameter has no stage between versions).
func (s SSMStore) Stage(ctx context.Context, j journal.Journal, old, _ secret.Secret) error {
	cur, found, err := s.get(ctx, s.Name)
	if err != nil {
		return err
	}
	if !found || !cur.Equal(old) {
		return fmt.Errorf("%w: SSM parameter %s holds %s, not the old secret %s", ErrStoreMismatch, s.Name, fpOrNone(cur), old)
	}
	return s.label(ctx, s.Name, 0, versionLabel(j, old))
}

// Put writes primary to the parameter and secondary to the secondary
// parameter (for none, the primary, when the secondary parameter exists),
// each only when it holds something else, then reads both back.
func (s SSMStore) Put(ctx context.Context, j journal.Journal, primary, secondary secret.Secret) (changed bool, err error) {
	if primary.IsEmpty() {
		return false, ErrEmptySecret
	}
	second := s.Source().SecondaryParameter()
	for _, p := range []struct {
		name  string
		value secret.Secret
	}{{s.Name, primary}, {second, secondary}} {
		cur, found, err := s.get(ctx, p.name)
		if err != nil {
			return changed, err
		}
		if p.value.IsEmpty() {
			if !found {
				continue // no secondary parameter: none is what it says
			}
			p.value = primary
		}
		if !found || !cur.Equal(p.value) {
			out, err := s.API.PutParameter(ctx, &ssm.PutParameterInput{
				Name: aws.String(p.name), Value: aws.String(string(p.value.Reveal())),
				Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(found),
				Description: aws.String("JWT signing secret, rotated by valine-check (" + j.ID + ")"),
			})
			if err != nil {
				return changed, fmt.Errorf("writing %s to SSM parameter %s: %w", p.value, p.name, err)
			}
			changed = true
			if err := s.label(ctx, p.name, out.Version, versionLabel(j, p.value)); err != nil {
				return changed, err
			}
		}
	}
	gotPrimary, gotSecondary, err := s.Read(ctx)
	if err != nil {
		return changed, err
	}
	return changed, checkReadBack(s.Source(), gotPrimary, gotSecondary, primary, secondary)
}

// label puts label on version (0: the latest) of the parameter. A label
// names one version at a time, so labelling moves it.
func (s SSMStore) label(ctx context.Context, name string, version int64, label string) error {
	in := &ssm.LabelParameterVersionInput{Name: aws.String(name), Labels: []string{label}}
	if version > 0 {
		in.ParameterVersion = aws.Int64(version)
	}
	out, err := s.API.LabelParameterVersion(ctx, in)
	if err != nil {
		return fmt.Errorf("labelling SSM parameter %s version %d %q: %w", name, version, label, err)
	}
	if len(out.InvalidLabels) > 0 {
		return fmt.Errorf("labelling SSM parameter %s: SSM refused the label %q", name, label)
	}
	return nil
}
