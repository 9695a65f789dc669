package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// decodeOne decodes stdout, which must be exactly one JSON document, into v.
func decodeOne(t *testing.T, what string, r cliRun, v any) {
	t.Helper()
	if !isJSON(r.stdout) {
		t.Fatalf("%s: stdout is not one JSON document:\n%s", what, r)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("%s: stdout does not decode into the documented shape: %v\n%s", what, err, r)
	}
}

// withEnv is env with more variables (later ones win).
func withEnv(env []string, more ...string) []string {
	return append(append([]string{}, env...), more...)
}

// statusDoc is the documented shape of status's JSON (valine-check/status/v1), in part.
type statusDoc struct {
	Schema    string `json:"schema"`
	Functions []struct {
		Name    string `json:"name"`
		Primary string `json:"primary"`
	} `json:"functions"`
	Consistent bool `json:"consistent"`
	Unfinished bool `json:"unfinished"`
	Backup     struct {
		Name string `json:"name"`
	} `json:"backup"`
	Rotation *struct {
		ID    string `json:"id"`
		Phase string `json:"phase"`
	} `json:"rotation"`
}

// TestJSONOutputOfFleetCommands: every fleet command prints one JSON
// document of its documented schema with --output json or VALINE_OUTPUT=json,
// exits as its text form does, and keeps its progress (the steps, the
// waits) on stderr.
func TestJSONOutputOfFleetCommands(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{UpdateDuration: 1500 * time.Millisecond})
	next, err := rotate.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	known := []string{f.w.InitialSecret(), string(next.Reveal()), f.w.ProbePassword, "db-pass-"}
	leaks := func(what string, r cliRun) {
		t.Helper()
		assertNoLeak(t, what, r.stdout+r.stderr, known...)
	}
	api := "valine-json-" + strings.TrimSuffix(strings.TrimPrefix(f.w.Functions[0], "pv-cli-"), "-auth")
	f.env = withEnv(f.env, "VALINE_API_NAME="+api, "VALINE_API_STAGE=prod", "VALINE_ALARM_PREFIX=vc-"+api+"-")
	jsonEnv := withEnv(f.env, "VALINE_OUTPUT=json")

	// The same exit code as text, for the commands that change nothing.
	for _, args := range [][]string{{"preflight", "--read-only"}, {"status"}, {"probe"}, {"insights", "run", "errors"}, {"insights", "list"},
		{"alarms", "plan"}, {"alarms", "status"}} {
		text, js := runCLI(t, f.env, "", args...), runCLI(t, jsonEnv, "", args...)
		leaks(strings.Join(args, " "), js)
		if js.code != text.code || !isJSON(js.stdout) {
			t.Errorf("%v: JSON exit %d, text exit %d, or stdout not one document:\n%s", args, js.code, text.code, js)
		}
	}
	var rep probes.Report
	decodeOne(t, "preflight", runCLI(t, f.env, "", "preflight", "--read-only", "-o", "json"), &rep)
	if rep.Schema != probes.ReportSchema || len(rep.Results) == 0 {
		t.Errorf("preflight JSON: schema %q, %d results", rep.Schema, len(rep.Results))
	}
	var st statusDoc
	decodeOne(t, "status", runCLI(t, jsonEnv, "", "status"), &st)
	if st.Schema != rotate.StatusSchema || len(st.Functions) != 3 || !st.Consistent || st.Backup.Name == "" || st.Rotation != nil {
		t.Errorf("status JSON before any rotation: %+v", st)
	}
	var list insightsListJSON
	decodeOne(t, "insights list", runCLI(t, jsonEnv, "", "insights", "list"), &list)
	if list.Schema != schemaInsightsList || len(list.Queries) == 0 || !list.ProbeRejectionsExcluded {
		t.Errorf("insights list JSON: %+v", list)
	}
	var run insightsRunJSON
	decodeOne(t, "insights run", runCLI(t, f.env, "", "insights", "run", "errors", "-o", "json"), &run)
	if run.Schema != schemaInsightsRun || run.Query.Name != "errors" || run.Result.Status != "Complete" {
		t.Errorf("insights run JSON: %+v", run)
	}

	for _, sub := range []string{"plan", "status"} {
		var doc struct{ Schema string }
		decodeOne(t, "alarms "+sub, runCLI(t, jsonEnv, "", "alarms", sub), &doc)
		if doc.Schema != "valine-check/alarms-"+sub+"/v1" {
			t.Errorf("alarms %s JSON: schema %q", sub, doc.Schema)
		}
	}

	var dry rotationJSON
	decodeOne(t, "rotate --dry-run", runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "--dry-run", "-o", "json"), &dry)
	if dry.Schema != schemaRotation || dry.Command != "rotate" || !dry.DryRun || len(dry.Plan) == 0 || dry.ExitCode != exitOK {
		t.Errorf("rotate --dry-run JSON: %+v", dry)
	}
	if bad := runCLI(t, f.env, "", "rotate", "--mode", "maintenance", "-o", "junit"); bad.code != exitUsage || bad.stdout != "" {
		t.Fatalf("rotate -o junit: want exit 2 before anything:\n%s", bad)
	}

	rot := runCLI(t, withEnv(f.env, "VALINE_NEW_SECRET="+string(next.Reveal())), "", "rotate", "--mode", "zero-downtime", "-o", "json")
	leaks("rotate", rot)
	var zd rotationJSON
	decodeOne(t, "rotate", rot, &zd)
	if rot.code != exitOK || zd.ExitCode != rot.code || zd.Schema != schemaRotation || zd.Rotation == nil || zd.Rotation.Phase != "grace" ||
		zd.Rotation.GraceDeadline == nil || zd.Rotation.New != next.Fingerprint() || zd.Audit != f.audit || len(zd.Reports) == 0 || len(zd.Splits) == 0 || zd.Comparison == nil {
		t.Fatalf("rotate --mode zero-downtime -o json: %+v\n%s", zd, rot)
	}
	for _, r := range zd.Reports {
		if r.Schema != probes.ReportSchema || r.Status() != probes.Pass {
			t.Errorf("a verification report in the rotation's JSON: schema %q, status %s", r.Schema, r.Status())
		}
	}
	for _, want := range []string{"grace: ", "valine-check: waiting for Lambda to finish updating 3 function(s) (until "} {
		if !strings.Contains(rot.stderr, want) {
			t.Errorf("rotate -o json: stderr lacks %q (the steps and waits go there):\n%s", want, rot.stderr)
		}
	}

	// A change verified in grace mode, as after-rotation sees it.
	grace := withEnv(f.env, "VALINE_OLD_SECRET="+f.w.InitialSecret(), "VALINE_SECRET="+string(next.Reveal()))
	text, js := runCLI(t, grace, "", "after-rotation", "--expect", "grace"), runCLI(t, withEnv(grace, "VALINE_OUTPUT=json"), "", "after-rotation", "--expect", "grace")
	decodeOne(t, "after-rotation", js, &rep)
	if js.code != text.code || rep.Schema != probes.ReportSchema || rep.Expect != probes.Grace {
		t.Errorf("after-rotation with VALINE_OUTPUT=json: exit %d (text %d), %+v", js.code, text.code, rep.Summary)
	}

	// A refusal: the document still comes, with the error and exit 2.
	early, earlyJSON := runCLI(t, f.env, "", "finalize"), runCLI(t, jsonEnv, "", "finalize")
	var refused rotationJSON
	decodeOne(t, "finalize before the deadline", earlyJSON, &refused)
	if early.code != exitUsage || earlyJSON.code != early.code || refused.ExitCode != exitUsage || !strings.Contains(refused.Error, "grace period is not over") {
		t.Errorf("finalize before the deadline: text exit %d, JSON exit %d, %+v", early.code, earlyJSON.code, refused)
	}

	fin := runCLI(t, jsonEnv, "", "finalize", "--force")
	var done rotationJSON
	decodeOne(t, "finalize", fin, &done)
	if fin.code != exitOK || done.Command != "finalize" || done.Rotation == nil || done.Rotation.Phase != "completed" || done.Error != "" {
		t.Errorf("finalize --force with VALINE_OUTPUT=json: %+v\n%s", done, fin)
	}
	rb := runCLI(t, f.env, "", "--output", "json", "rollback")
	var back rotationJSON
	decodeOne(t, "rollback", rb, &back)
	if rb.code != exitOK || back.Command != "rollback" || back.Rotation == nil || back.Rotation.Phase != "rolled-back" {
		t.Errorf("--output json rollback: %+v\n%s", back, rb)
	}
	decodeOne(t, "status after", runCLI(t, f.env, "", "status", "-o", "json"), &st)
	if st.Rotation == nil || st.Rotation.Phase != "rolled-back" || st.Rotation.ID != zd.Rotation.ID {
		t.Errorf("status JSON after the rollback: %+v", st.Rotation)
	}
	leaks("finalize", fin)
	leaks("rollback", rb)
}

// TestJSONOutputOfTokenCommands: token inspect, which and forge print one
// document each, by fingerprint, with the text form's exit codes.
func TestJSONOutputOfTokenCommands(t *testing.T) {
	t.Parallel()
	tok, key := testToken(t)
	_, other := testToken(t)
	env := []string{"VALINE_TOKEN=" + tok, "VALINE_SECRET=" + key}
	leaks := func(what string, r cliRun) {
		t.Helper()
		assertNoLeak(t, what, r.stdout+r.stderr, tok, key, other)
	}

	var in tokenInspectJSON
	got := runCLI(t, withEnv(env, "VALINE_OUTPUT=json"), "", "token", "inspect")
	leaks("inspect", got)
	decodeOne(t, "token inspect", got, &in)
	if in.Schema != schemaTokenInspect || in.Algorithm != "HS256" || in.Claims["sub"] != "u1" || in.ExpiresAt == nil || in.Expired ||
		!strings.HasPrefix(in.Fingerprint, "sha256:") {
		t.Errorf("token inspect JSON: %+v", in)
	}

	for _, tc := range []struct {
		name     string
		env      []string
		wantCode int
		signedBy string
	}{
		{"signed with the current secret", env, exitOK, "current"},
		{"signed with none", []string{"VALINE_TOKEN=" + tok, "VALINE_SECRET=" + other, "VALINE_OLD_SECRET=" + other + "x"}, exitFailed, ""},
	} {
		text := runCLI(t, tc.env, "", "token", "which")
		js := runCLI(t, tc.env, "", "token", "which", "-o", "json")
		leaks("which", js)
		var w tokenWhichJSON
		decodeOne(t, "token which", js, &w)
		if text.code != tc.wantCode || js.code != tc.wantCode || w.Schema != schemaTokenWhich || len(w.Candidates) == 0 ||
			(tc.signedBy == "") != (w.SignedBy == nil) || (w.SignedBy != nil && w.SignedBy.Label != tc.signedBy) {
			t.Errorf("%s: text exit %d, JSON exit %d, want %d; %+v", tc.name, text.code, js.code, tc.wantCode, w)
		}
	}

	out := filepath.Join(t.TempDir(), "forged.jwt")
	forged := runCLI(t, env, "", "-o", "json", "token", "forge", "--out", out)
	leaks("forge", forged)
	var fd tokenForgeJSON
	decodeOne(t, "token forge", forged, &fd)
	raw, err := os.ReadFile(out)
	if err != nil || fd.Schema != schemaTokenForge || fd.Out != out || fd.SignedWith != envSecret || fd.Algorithm != "HS256" || !strings.HasPrefix(fd.Token, "token:sha256:") {
		t.Errorf("token forge JSON: %+v (%v)", fd, err)
	}
	if len(raw) == 0 {
		t.Error("token forge -o json wrote no token to --out")
	}
}

// TestJSONOutputOfSandbox: the sandbox's reports are one document.
func TestJSONOutputOfSandbox(t *testing.T) {
	t.Parallel()
	got := runCLI(t, []string{"VALINE_OUTPUT=json"}, "", "sandbox", "--propagation", "100ms", "--update-duration", "100ms")
	var doc sandboxJSON
	decodeOne(t, "sandbox", got, &doc)
	if got.code != exitOK || doc.Schema != schemaSandbox || len(doc.Reports) != 2 || doc.Reports[0].Expect != probes.Grace || doc.Reports[1].Expect != probes.Strict {
		t.Errorf("sandbox with VALINE_OUTPUT=json: %d reports\n%s", len(doc.Reports), got)
	}
}
