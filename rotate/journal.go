package rotate

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/valine/valine-check/internal/journal"
)

// WriteJournal records j as tags on the backup secret: empty fields are
// untagged, the rest tagged. It creates nothing: when the backup secret
// does not exist yet it returns ErrNoBackup (Store first). Stale tags are
// removed before the new ones are written, so a crash in between leaves
// the previous phase, never the new phase with another rotation's fields.
func (b Backup) WriteJournal(ctx context.Context, j journal.Journal) error {
	values, err := j.Tags()
	if err != nil {
		return err
	}
	have, exists, err := b.reader().RawTags(ctx)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("writing the journal of %s: %w: secret %s does not exist", j.ID, ErrNoBackup, b.Name)
	}
	var remove []string
	var set []types.Tag
	for _, k := range slices.Sorted(maps.Keys(values)) {
		switch _, present := have[k]; {
		case values[k] == "" && present:
			remove = append(remove, journal.Prefix+k)
		case values[k] != "":
			set = append(set, types.Tag{Key: aws.String(journal.Prefix + k), Value: aws.String(values[k])})
		}
	}
	if len(remove) > 0 {
		if _, err := b.API.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(b.Name), TagKeys: remove}); err != nil {
			return fmt.Errorf("writing the journal of %s on %s: %w", j.ID, b.Name, err)
		}
	}
	if _, err := b.API.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(b.Name), Tags: set}); err != nil {
		return fmt.Errorf("writing the journal of %s on %s: %w", j.ID, b.Name, err)
	}
	return nil
}

// ReadJournal returns the journal recorded on the backup secret (see
// journal.Reader.Read).
func (b Backup) ReadJournal(ctx context.Context) (journal.Journal, bool, error) {
	return b.reader().Read(ctx)
}

// reader reads the backup's journal and stages.
func (b Backup) reader() journal.Reader { return journal.Reader{API: b.API, Name: b.Name} }
