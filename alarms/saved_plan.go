package alarms

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// SavedPlanSchema names the format of a saved plan.
const SavedPlanSchema = "valine-check/alarms-saved-plan/v1"

// ErrBadSavedPlan is wrapped by ReadSavedPlan's errors: the file is not a
// plan this version can apply.
var ErrBadSavedPlan = errors.New("not a saved alarms plan")

// SavedPlan is a plan written to a file by `alarms plan --out`, to be
// applied as it is by `alarms apply FILE` once CheckFresh finds that
// CloudWatch still holds what it was computed from. It holds the changes
// with their desired values (alarms, metric filters, the dashboard body:
// names, metrics, thresholds and topic ARNs, nothing secret), the state's
// fingerprint and the region it was made for.
type SavedPlan struct {
	Schema    string    `json:"schema"`
	CreatedAt time.Time `json:"createdAt"`
	// Region is the AWS region the plan read; applying it elsewhere is refused.
	Region  string         `json:"region"`
	Summary map[string]int `json:"summary"`
	Changes
}

// NewSavedPlan wraps plan for a file.
func NewSavedPlan(plan Changes, region string, now time.Time) SavedPlan {
	return SavedPlan{Schema: SavedPlanSchema, CreatedAt: now.UTC(), Region: region, Summary: PlanSummary(plan), Changes: plan}
}

// WriteSavedPlan writes s as indented JSON.
func WriteSavedPlan(w io.Writer, s SavedPlan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("writing the plan: %w", err)
	}
	return nil
}

// ReadSavedPlan reads a plan WriteSavedPlan wrote: the schema must be
// SavedPlanSchema, no field unknown, a prefix, a region and a fingerprint
// present, and every create or update must carry its desired value.
func ReadSavedPlan(r io.Reader) (SavedPlan, error) {
	var s SavedPlan
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: %v", ErrBadSavedPlan, err)
	}
	switch {
	case s.Schema != SavedPlanSchema:
		return s, fmt.Errorf("%w: schema %q, want %q", ErrBadSavedPlan, s.Schema, SavedPlanSchema)
	case s.Prefix == "" || s.Region == "" || s.State == "":
		return s, fmt.Errorf("%w: the prefix, the region or the state fingerprint is missing", ErrBadSavedPlan)
	}
	for _, c := range s.Changes.Changes {
		if _, known := resourceOrder[c.Resource]; !known || c.Name == "" ||
			c.Kind != Create && c.Kind != Update && c.Kind != Delete && c.Kind != Unchanged {
			return s, fmt.Errorf("%w: a change %q of %q %q", ErrBadSavedPlan, c.Kind, c.Resource, c.Name)
		}
	}
	for _, c := range s.Pending() {
		if c.Kind == Delete {
			continue
		}
		if c.Resource == ResourceAlarm && c.Alarm == nil || c.Resource == ResourceFilter && c.Filter == nil ||
			c.Resource == ResourceDashboard && c.Dashboard == nil {
			return s, fmt.Errorf("%w: the %s of %s %s carries no desired value", ErrBadSavedPlan, c.Kind, c.Resource, c.Name)
		}
	}
	return s, nil
}
