package rotate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/valine/valine-check/internal/journal"
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

// TagAPI is the Lambda tag calls the fleet identity makes. Tags are read
// from GetFunction's answer (FleetAPI), which carries them when the caller
// may lambda:ListTags, so reading them costs no control-plane request.
type TagAPI interface {
	TagResource(ctx context.Context, in *lambda.TagResourceInput, optFns ...func(*lambda.Options)) (*lambda.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *lambda.UntagResourceInput, optFns ...func(*lambda.Options)) (*lambda.UntagResourceOutput, error)
}

// checkFleetOwners reads the fleet and refuses it when another backup owns
// one of its functions.
func (e *Engine) checkFleetOwners(ctx context.Context) error {
	fs, err := e.inspect(ctx, e.Fleet)
	if err != nil {
		return fmt.Errorf("inspecting the fleet: %w", err)
	}
	return e.checkOwners(fs)
}

// checkOwners refuses a fleet holding a function another backup owns.
func (e *Engine) checkOwners(fs FleetState) error {
	var others []string
	for _, f := range fs.Functions {
		if f.Owner != "" && f.Owner != e.Backup.Name {
			others = append(others, fmt.Sprintf("%s belongs to %s", f.Name, f.Owner))
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("%w: %s, not to %s (this run's backup): select the fleet as its owner does (--backup-secret names it), or finish that rotation first; nothing was changed",
			ErrFleetOwned, strings.Join(others, "; "), e.Backup.Name)
	}
	return nil
}

// claim tags every function of the fleet that is not yet this backup's as
// owned by it (an AWS write, audited), then reads those back: another
// operator claiming an overlapping fleet at the same moment makes one of
// them see the other's tag and stop before any environment changes. A
// fleet an earlier run claimed costs no request.
func (e *Engine) claim(ctx context.Context, j journal.Journal, fs FleetState) error {
	if err := e.checkOwners(fs); err != nil {
		return err
	}
	if !slices.ContainsFunc(fs.Functions, func(f FunctionState) bool { return f.Owner != e.Backup.Name }) {
		return nil // claimed by an earlier run: nobody else claims a function that names an owner
	}
	// fs was read before the baseline; the owners must be read again just
	// before tagging, or another operator's claim since would be missed.
	fs, err := e.inspect(ctx, e.Fleet)
	if err != nil {
		return fmt.Errorf("reading the owner tags: %w", err)
	}
	if err := e.checkOwners(fs); err != nil {
		return err
	}
	var claimed []string
	for _, f := range fs.Functions {
		if f.Owner == e.Backup.Name {
			continue
		}
		if _, err := e.lambda().TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(f.ARN), Tags: map[string]string{OwnerTag: e.Backup.Name}}); err != nil {
			return fmt.Errorf("tagging %s as owned by %s: %w", f.Name, e.Backup.Name, err)
		}
		claimed = append(claimed, f.Name)
	}
	if len(claimed) == 0 {
		return nil
	}
	e.audit(j, "claim", "ok", fmt.Sprintf("tagged %s=%s on %s", OwnerTag, e.Backup.Name, strings.Join(claimed, ", ")), nil)
	back, err := e.inspect(ctx, claimed)
	if err != nil {
		return fmt.Errorf("reading the owner tags back: %w", err)
	}
	var unseen []string
	for _, f := range back.Functions {
		if f.Owner == "" {
			unseen = append(unseen, f.Name)
		}
	}
	if err := e.checkOwners(back); err != nil {
		e.release(ctx, j, back)
		return err
	}
	if len(unseen) > 0 {
		// Another operator's lost claim released the tag at this moment,
		// or GetFunction shows this caller no tags at all.
		e.release(ctx, j, back)
		return fmt.Errorf("%w: GetFunction shows no %s tag on %s just after it was set: another operator claiming an overlapping fleet at this moment released it (run again once they are done), or this caller may not lambda:ListTags, without which GetFunction shows no tags; nothing was changed",
			ErrFleetOwned, OwnerTag, strings.Join(unseen, ", "))
	}
	return nil
}

// release removes this backup's owner tag from the functions of fs that
// still carry it (after a lost claim).
func (e *Engine) release(ctx context.Context, j journal.Journal, fs FleetState) {
	for _, f := range fs.Functions {
		if f.Owner != e.Backup.Name {
			continue
		}
		if _, err := e.lambda().UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(f.ARN), TagKeys: []string{OwnerTag}}); err == nil {
			e.audit(j, "claim", "released", fmt.Sprintf("removed %s from %s (another backup claimed the fleet)", OwnerTag, f.Name), nil)
		}
	}
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
