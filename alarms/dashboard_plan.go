package alarms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
)

// The dashboard's side of Plan and Apply: reading it, comparing bodies as
// JSON, writing it.

// planDashboard compares the desired dashboard with the one CloudWatch
// holds under its name.
func planDashboard(ctx context.Context, cw CloudWatchAPI, want Dashboard) (Change, error) {
	out, err := cw.GetDashboard(ctx, &cloudwatch.GetDashboardInput{DashboardName: aws.String(want.Name)})
	if isDashboardNotFound(err) {
		return Change{Kind: Create, Resource: ResourceDashboard, Name: want.Name, Dashboard: &want}, nil
	}
	if err != nil {
		return Change{}, fmt.Errorf("reading dashboard %s: %w", want.Name, err)
	}
	have := aws.ToString(out.DashboardBody)
	if fields := dashboardDiff(want.Body, have); len(fields) > 0 {
		return Change{Kind: Update, Resource: ResourceDashboard, Name: want.Name, Fields: fields, Dashboard: &want, Current: dashboardDigest(have)}, nil
	}
	return Change{Kind: Unchanged, Resource: ResourceDashboard, Name: want.Name, Current: dashboardDigest(have)}, nil
}

// isDashboardNotFound reports CloudWatch's "no such dashboard".
func isDashboardNotFound(err error) bool {
	var nf *cwtypes.DashboardNotFoundError
	var api smithy.APIError
	return errors.As(err, &nf) || errors.As(err, &api) && (api.ErrorCode() == "ResourceNotFound" || api.ErrorCode() == "DashboardNotFoundError")
}

// putDashboard writes a dashboard. CloudWatch refuses a body it cannot use
// (DashboardInvalidInputError, whose messages say where) and stores, with
// warnings, one it may not fully render: both are errors here, the second
// after the dashboard was written.
func putDashboard(ctx context.Context, cw CloudWatchAPI, d Dashboard) (written bool, err error) {
	out, err := cw.PutDashboard(ctx, &cloudwatch.PutDashboardInput{DashboardName: aws.String(d.Name), DashboardBody: aws.String(d.Body)})
	var bad *cwtypes.DashboardInvalidInputError
	if errors.As(err, &bad) {
		return false, fmt.Errorf("putting dashboard %s: %w (%s)", d.Name, err, validationMessages(bad.DashboardValidationMessages))
	}
	if err != nil {
		return false, fmt.Errorf("putting dashboard %s: %w", d.Name, err)
	}
	if len(out.DashboardValidationMessages) > 0 {
		return true, fmt.Errorf("dashboard %s was written but CloudWatch warns that parts may not render: %s", d.Name, validationMessages(out.DashboardValidationMessages))
	}
	return true, nil
}

func validationMessages(ms []cwtypes.DashboardValidationMessage) string {
	var out []string
	for _, m := range ms {
		out = append(out, strings.TrimSpace(aws.ToString(m.DataPath)+" "+aws.ToString(m.Message)))
	}
	return strings.Join(out, "; ")
}

// dashboardDiff names what differs between two bodies, compared as JSON
// (so CloudWatch's spacing and key order do not count): a top-level field
// by its name, a widget by its type and title ("+widget …" added, "-widget …"
// removed, "widget … (properties.metrics, y)" changed). A body that is not
// JSON is "DashboardBody".
func dashboardDiff(want, have string) []string {
	var w, h map[string]any
	if json.Unmarshal([]byte(want), &w) != nil || json.Unmarshal([]byte(have), &h) != nil || h == nil {
		return []string{"DashboardBody"}
	}
	var fields []string
	keys := map[string]bool{}
	for k := range w {
		keys[k] = true
	}
	for k := range h {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		if k != "widgets" && !jsonEqual(w[k], h[k]) {
			fields = append(fields, k)
		}
	}
	wantW, haveW := keyedWidgets(w["widgets"]), keyedWidgets(h["widgets"])
	if _, ok := h["widgets"].([]any); !ok {
		return append(fields, "widgets")
	}
	for _, kw := range wantW {
		i := slices.IndexFunc(haveW, func(x keyedWidget) bool { return x.key == kw.key })
		if i < 0 {
			fields = append(fields, "+widget "+kw.key)
			continue
		}
		if diff := widgetDiff(kw.w, haveW[i].w); len(diff) > 0 {
			fields = append(fields, "widget "+kw.key+" ("+strings.Join(diff, ", ")+")")
		}
	}
	for _, kh := range haveW {
		if !slices.ContainsFunc(wantW, func(x keyedWidget) bool { return x.key == kh.key }) {
			fields = append(fields, "-widget "+kh.key)
		}
	}
	return fields
}

type keyedWidget struct {
	key string
	w   map[string]any
}

// keyedWidgets names each widget by its type and title (a second widget of
// the same name gets "#2").
func keyedWidgets(v any) []keyedWidget {
	list, _ := v.([]any)
	seen := map[string]int{}
	var out []keyedWidget
	for _, item := range list {
		m, _ := item.(map[string]any)
		props, _ := m["properties"].(map[string]any)
		typ, _ := m["type"].(string)
		title, _ := props["title"].(string)
		key := typ
		if title != "" {
			key += " " + fmt.Sprintf("%q", title)
		}
		seen[key]++
		if n := seen[key]; n > 1 {
			key += fmt.Sprintf(" #%d", n)
		}
		out = append(out, keyedWidget{key: key, w: m})
	}
	return out
}

// widgetDiff names the widget fields, and the properties by
// "properties.NAME", that differ.
func widgetDiff(want, have map[string]any) []string {
	var out []string
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range have {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		if k == "properties" {
			wp, _ := want[k].(map[string]any)
			hp, _ := have[k].(map[string]any)
			pk := map[string]bool{}
			for p := range wp {
				pk[p] = true
			}
			for p := range hp {
				pk[p] = true
			}
			for _, p := range sortedKeys(pk) {
				if !jsonEqual(wp[p], hp[p]) {
					out = append(out, "properties."+p)
				}
			}
			continue
		}
		if !jsonEqual(want[k], have[k]) {
			out = append(out, k)
		}
	}
	return out
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}
