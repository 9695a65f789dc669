package rotate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/valine/valine-check/internal/journal"
	"golang.org/x/sync/errgroup"
)

// A fleet's identity does not depend on how it was selected: every function
// that takes part in a rotation carries the tag OwnerTag naming the backup
// secret (and so the journal and the lock) that owns it. A rotation whose
// fleet holds a function owned by another backup is refused before any
// write, so one set of functions has one journal and one lock however an
// operator typed it (--prefix, --functions, --tag).

// OwnerTag is the Lambda tag on each function naming its backup secret.
const OwnerTag = "valine-check:backup"

// ErrFleetOwned is returned, before any write, when a function of the fleet
// belongs to another backup (another journal and lock).
var ErrFleetOwned = errors.New("the fleet overlaps functions owned by another rotation backup")

// TagAPI is the Lambda tag calls the fleet identity makes.
type TagAPI interface {
	ListTags(ctx context.Context, in *lambda.ListTagsInput, optFns ...func(*lambda.Options)) (*lambda.ListTagsOutput, error)
	TagResource(ctx context.Context, in *lambda.TagResourceInput, optFns ...func(*lambda.Options)) (*lambda.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *lambda.UntagResourceInput, optFns ...func(*lambda.Options)) (*lambda.UntagResourceOutput, error)
}

// owners reads each function's owner tag ("" when untagged), by name.
func (e *Engine) owners(ctx context.Context, fs FleetState) (map[string]string, error) {
	out := make([]string, len(fs.Functions))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.concurrency())
	for i, f := range fs.Functions {
		g.Go(func() error {
			tags, err := e.Lambda.ListTags(gctx, &lambda.ListTagsInput{Resource: aws.String(f.ARN)})
			if err != nil {
				return fmt.Errorf("reading the tags of %s: %w", f.Name, err)
			}
			out[i] = tags.Tags[OwnerTag]
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(out))
	for i, f := range fs.Functions {
		m[f.Name] = out[i]
	}
	return m, nil
}

// checkFleetOwners reads the fleet and refuses it when another backup owns
// one of its functions.
func (e *Engine) checkFleetOwners(ctx context.Context) error {
	fs, err := Inspect(ctx, e.Lambda, e.Fleet, e.Profile, e.concurrency())
	if err != nil {
		return fmt.Errorf("inspecting the fleet: %w", err)
	}
	return e.checkOwners(ctx, fs)
}

// checkOwners refuses a fleet holding a function another backup owns.
func (e *Engine) checkOwners(ctx context.Context, fs FleetState) error {
	owners, err := e.owners(ctx, fs)
	if err != nil {
		return err
	}
	var others []string
	for _, f := range fs.Functions {
		if o := owners[f.Name]; o != "" && o != e.Backup.Name {
			others = append(others, fmt.Sprintf("%s belongs to %s", f.Name, o))
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("%w: %s, not to %s (this run's backup): select the fleet as its owner does (--backup-secret names it), or finish that rotation first; nothing was changed",
			ErrFleetOwned, strings.Join(others, "; "), e.Backup.Name)
	}
	return nil
}

// claim tags every function of the fleet as owned by this backup (an AWS
// write, audited), then reads the tags back: another operator claiming an
// overlapping fleet at the same moment makes one of them see the other's
// tag and stop before any environment changes. A function that already
// names this backup is left as it is.
func (e *Engine) claim(ctx context.Context, j journal.Journal, fs FleetState) error {
	owners, err := e.owners(ctx, fs)
	if err != nil {
		return err
	}
	var claimed []string
	for _, f := range fs.Functions {
		if owners[f.Name] == e.Backup.Name {
			continue
		}
		if owners[f.Name] != "" {
			return e.checkOwners(ctx, fs)
		}
		if _, err := e.Lambda.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(f.ARN), Tags: map[string]string{OwnerTag: e.Backup.Name}}); err != nil {
			return fmt.Errorf("tagging %s as owned by %s: %w", f.Name, e.Backup.Name, err)
		}
		claimed = append(claimed, f.Name)
	}
	if len(claimed) > 0 {
		e.audit(j, "claim", "ok", fmt.Sprintf("tagged %s=%s on %s", OwnerTag, e.Backup.Name, strings.Join(claimed, ", ")), nil)
	}
	if err := e.checkOwners(ctx, fs); err != nil {
		e.release(ctx, j, fs, claimed)
		return err
	}
	return nil
}

// release removes this backup's owner tag from the functions named, where
// it is still this backup's (after a lost claim).
func (e *Engine) release(ctx context.Context, j journal.Journal, fs FleetState, names []string) {
	owners, err := e.owners(ctx, fs)
	if err != nil {
		return
	}
	for _, f := range fs.Functions {
		if owners[f.Name] != e.Backup.Name || !containsName(names, f.Name) {
			continue
		}
		if _, err := e.Lambda.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(f.ARN), TagKeys: []string{OwnerTag}}); err == nil {
			e.audit(j, "claim", "released", fmt.Sprintf("removed %s from %s (another backup claimed the fleet)", OwnerTag, f.Name), nil)
		}
	}
}

func containsName(names []string, n string) bool {
	for _, m := range names {
		if m == n {
			return true
		}
	}
	return false
}

var unsafeSecretName = regexp.MustCompile(`[^A-Za-z0-9/_+=.@-]+`)

// DefaultBackupName is the backup secret of a fleet chosen by sel when none
// is given: "valine-check/" and the prefix as typed ("valine-check/pv-api-prod-"),
// "tag-" and the tag, or the first function's name; characters a secret
// name cannot hold become "-".
func DefaultBackupName(sel Selector, fleet []string) string {
	var key string
	switch {
	case sel.Prefix != "":
		key = sel.Prefix
	case sel.Tag != "":
		key = "tag-" + sel.Tag
	case len(fleet) > 0:
		key = fleet[0]
	}
	return "valine-check/" + strings.TrimLeft(unsafeSecretName.ReplaceAllString(key, "-"), "-")
}

// LegacyBackupName is the default name earlier versions gave a prefix's
// backup (the trailing "-" and "_" dropped); a fleet that has a backup
// there keeps using it.
func LegacyBackupName(sel Selector, fleet []string) string {
	if sel.Prefix == "" {
		return DefaultBackupName(sel, fleet)
	}
	return "valine-check/" + strings.Trim(unsafeSecretName.ReplaceAllString(strings.TrimRight(sel.Prefix, "-_"), "-"), "-")
}

// FindBackup is the backup of a fleet chosen by sel when no name is given:
// DefaultBackupName, unless only the legacy name (LegacyBackupName) exists,
// which an earlier version created; legacy says which was chosen.
func FindBackup(ctx context.Context, api SecretsAPI, sel Selector, fleet []string) (b Backup, legacy bool, err error) {
	b = Backup{API: api, Name: DefaultBackupName(sel, fleet)}
	old := Backup{API: api, Name: LegacyBackupName(sel, fleet)}
	if old.Name == b.Name {
		return b, false, nil
	}
	if exists, err := b.Exists(ctx); err != nil || exists {
		return b, false, err
	}
	if exists, err := old.Exists(ctx); err != nil || !exists {
		return b, false, err
	}
	return old, true, nil
}
