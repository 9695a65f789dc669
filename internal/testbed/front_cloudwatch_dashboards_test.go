package testbed_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/valine/valine-check/internal/testbed"
)

// validDashboard has one widget of each kind the project writes, in the
// shapes CloudWatch documents.
const validDashboard = `{"start":"-PT6H","widgets":[
 {"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"region":"us-east-1","view":"timeSeries","stat":"Average","period":300,
  "metrics":[["Valine/Probe","SuccessPercent","Deployment","d","Check","all",{"label":"all"}],[".","Duration",".",".",".","."],[{"expression":"m1*100","id":"e1"}]]}},
 {"type":"text","x":12,"y":0,"width":12,"height":6,"properties":{"markdown":"# on call"}},
 {"type":"log","x":0,"y":6,"width":12,"height":6,"properties":{"region":"us-east-1","view":"table","query":"SOURCE '/aws/lambda/f' | stats count(*) by @log"}},
 {"type":"alarm","x":12,"y":6,"width":12,"height":6,"properties":{"alarms":["arn:aws:cloudwatch:us-east-1:000000000000:alarm:a"]}}]}`

func TestDashboardsPutGetListDelete(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	cw := cloudwatch.NewFromConfig(w.AWS)
	prefix := uniqueName("tb-dash") + "-"
	a, b := prefix+"a", prefix+"b"
	for _, name := range []string{b, a} {
		out, err := cw.PutDashboard(t.Context(), &cloudwatch.PutDashboardInput{DashboardName: aws.String(name), DashboardBody: aws.String(validDashboard)})
		if err != nil || len(out.DashboardValidationMessages) != 0 {
			t.Fatalf("PutDashboard %s: %v, messages %v", name, err, out)
		}
	}
	got, err := cw.GetDashboard(t.Context(), &cloudwatch.GetDashboardInput{DashboardName: aws.String(a)})
	if err != nil || aws.ToString(got.DashboardBody) != validDashboard || aws.ToString(got.DashboardName) != a ||
		aws.ToString(got.DashboardArn) != "arn:aws:cloudwatch::000000000000:dashboard/"+a {
		t.Fatalf("GetDashboard: %v, %+v", err, got)
	}

	// A second put replaces the body.
	small := `{"widgets":[]}`
	if _, err := cw.PutDashboard(t.Context(), &cloudwatch.PutDashboardInput{DashboardName: aws.String(a), DashboardBody: aws.String(small)}); err != nil {
		t.Fatal(err)
	}
	if got, err := cw.GetDashboard(t.Context(), &cloudwatch.GetDashboardInput{DashboardName: aws.String(a)}); err != nil || aws.ToString(got.DashboardBody) != small {
		t.Fatalf("GetDashboard after a second put: %v, %q", err, aws.ToString(got.DashboardBody))
	}
	list, err := cw.ListDashboards(t.Context(), &cloudwatch.ListDashboardsInput{DashboardNamePrefix: aws.String(prefix)})
	if err != nil || len(list.DashboardEntries) != 2 {
		t.Fatalf("ListDashboards: %v, %+v", err, list)
	}
	if e := list.DashboardEntries[0]; aws.ToString(e.DashboardName) != a || aws.ToInt64(e.Size) != int64(len(small)) || e.LastModified == nil ||
		aws.ToString(list.DashboardEntries[1].DashboardName) != b {
		t.Errorf("entries not in name order with their size: %+v", list.DashboardEntries)
	}

	_, err = cw.GetDashboard(t.Context(), &cloudwatch.GetDashboardInput{DashboardName: aws.String(prefix + "missing")})
	var nf *cwtypes.DashboardNotFoundError
	if !errors.As(err, &nf) || nf.ErrorCode() != "ResourceNotFound" {
		t.Fatalf("GetDashboard of an unknown name: %v, want DashboardNotFoundError with AWS's query code ResourceNotFound", err)
	}
	// Deleting a missing dashboard with an existing one deletes neither.
	if _, err := cw.DeleteDashboards(t.Context(), &cloudwatch.DeleteDashboardsInput{DashboardNames: []string{a, prefix + "missing"}}); !errors.As(err, &nf) {
		t.Fatalf("DeleteDashboards with a missing name: %v", err)
	}
	if _, err := cw.GetDashboard(t.Context(), &cloudwatch.GetDashboardInput{DashboardName: aws.String(a)}); err != nil {
		t.Fatalf("a failed DeleteDashboards deleted %s: %v", a, err)
	}
	if _, err := cw.DeleteDashboards(t.Context(), &cloudwatch.DeleteDashboardsInput{DashboardNames: []string{a, b}}); err != nil {
		t.Fatal(err)
	}
	if list, err := cw.ListDashboards(t.Context(), &cloudwatch.ListDashboardsInput{DashboardNamePrefix: aws.String(prefix)}); err != nil || len(list.DashboardEntries) != 0 {
		t.Fatalf("after DeleteDashboards: %v, %+v", err, list)
	}
	if n := w.AWSFront.Calls("monitoring:PutDashboard"); n < 3 {
		t.Errorf("Calls(monitoring:PutDashboard) = %d, want the 3 puts counted", n)
	}
}

func TestPutDashboardRefusesWhatAWSRefuses(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	cw := cloudwatch.NewFromConfig(w.AWS)
	metric := func(props string) string {
		return `{"widgets":[{"type":"metric","x":0,"y":0,"width":6,"height":6,"properties":` + props + `}]}`
	}
	for _, tc := range []struct {
		name, dashboard, body, path string
	}{
		{"not JSON", "ok", `{"widgets":[`, ""},
		{"no widgets", "ok", `{"start":"-PT3H"}`, ""},
		{"widgets not an array", "ok", `{"widgets":{}}`, ""},
		{"unknown type", "ok", `{"widgets":[{"type":"graph","properties":{}}]}`, "/widgets/0/type"},
		{"no properties", "ok", `{"widgets":[{"type":"text"}]}`, "/widgets/0"},
		{"x without y", "ok", `{"widgets":[{"type":"text","x":1,"properties":{"markdown":"m"}}]}`, "/widgets/0"},
		{"too wide", "ok", `{"widgets":[{"type":"text","width":25,"properties":{"markdown":"m"}}]}`, "/widgets/0/width"},
		{"text without markdown", "ok", `{"widgets":[{"type":"text","properties":{}}]}`, "/widgets/0/properties"},
		{"metric without region", "ok", metric(`{"metrics":[["AWS/ApiGateway","Count"]]}`), "/widgets/0/properties"},
		{"metric entry with a dangling dimension", "ok", metric(`{"region":"us-east-1","metrics":[["AWS/ApiGateway","Count","ApiName"]]}`), "/widgets/0/properties/metrics/0"},
		{"metric entry not an array", "ok", metric(`{"region":"us-east-1","metrics":["AWS/ApiGateway","Count"]}`), "/widgets/0/properties/metrics/0"},
		{"period not a multiple of 60", "ok", metric(`{"region":"us-east-1","period":90,"metrics":[["A","B"]]}`), "/widgets/0/properties/period"},
		{"log query without SOURCE", "ok", `{"widgets":[{"type":"log","properties":{"region":"us-east-1","query":"stats count(*)"}}]}`, "/widgets/0/properties/query"},
		{"alarm widget with a name, not an ARN", "ok", `{"widgets":[{"type":"alarm","properties":{"alarms":["my-alarm"]}}]}`, "/widgets/0/properties/alarms/0"},
		{"bad name", "has a space", `{"widgets":[]}`, "DashboardName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := uniqueName("tb-dash-bad")
			if tc.dashboard != "ok" {
				name += " " + tc.dashboard
			}
			_, err := cw.PutDashboard(t.Context(), &cloudwatch.PutDashboardInput{DashboardName: aws.String(name), DashboardBody: aws.String(tc.body)})
			var bad *cwtypes.DashboardInvalidInputError
			if !errors.As(err, &bad) || bad.ErrorCode() != "InvalidParameterInput" {
				t.Fatalf("PutDashboard: %v, want DashboardInvalidInputError (InvalidParameterInput)", err)
			}
			var paths []string
			for _, m := range bad.DashboardValidationMessages {
				paths = append(paths, aws.ToString(m.DataPath)+": "+aws.ToString(m.Message))
			}
			if len(paths) == 0 || !strings.HasPrefix(paths[0], tc.path+": ") {
				t.Errorf("validation messages %q, want the first at %q", paths, tc.path)
			}
			var nf *cwtypes.DashboardNotFoundError
			if _, err := cw.GetDashboard(t.Context(), &cloudwatch.GetDashboardInput{DashboardName: aws.String(name)}); !errors.As(err, &nf) {
				t.Errorf("a refused dashboard was stored: %v", err)
			}
		})
	}
}

func TestListDashboardsPages(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	cw := cloudwatch.NewFromConfig(w.AWS)
	prefix := uniqueName("tb-dash-page") + "-"
	const n = 1005 // AWS lists 1,000 a page
	for i := range n {
		if _, err := cw.PutDashboard(t.Context(), &cloudwatch.PutDashboardInput{DashboardName: aws.String(fmt.Sprintf("%s%04d", prefix, i)),
			DashboardBody: aws.String(`{"widgets":[]}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	pages := cloudwatch.NewListDashboardsPaginator(cw, &cloudwatch.ListDashboardsInput{DashboardNamePrefix: aws.String(prefix)})
	for p := 0; pages.HasMorePages(); p++ {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if p == 0 && len(page.DashboardEntries) != 1000 {
			t.Errorf("first page holds %d dashboards, want 1000", len(page.DashboardEntries))
		}
		for _, e := range page.DashboardEntries {
			names = append(names, aws.ToString(e.DashboardName))
		}
	}
	if len(names) != n {
		t.Fatalf("listed %d dashboards, want %d", len(names), n)
	}
	for i, got := range names {
		if want := fmt.Sprintf("%s%04d", prefix, i); got != want {
			t.Fatalf("dashboard %d is %s, want %s (name order, each once)", i, got, want)
		}
	}
}
