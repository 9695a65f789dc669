package main

import (
	"debug/buildinfo"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionOf formats the build information Go stamps in a binary: a
// module version from go install …@vX, a devel build of a checkout with
// uncommitted changes, and no build information at all.
func TestVersionOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		line string
		want buildVersion
	}{
		{"tagged module version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/valine/valine-check", Version: "v1.4.0"}},
			"v1.4.0 (go1.26.8)", buildVersion{Schema: schemaVersion, Version: "v1.4.0", Go: "go1.26.8"}},
		{"devel build, dirty", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/valine/valine-check", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}, {Key: "vcs", Value: "git"},
				{Key: "vcs.revision", Value: "89b50dd1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) (commit 89b50dd1c2e3, modified, go1.26.8)",
			buildVersion{Schema: schemaVersion, Version: "(devel)", Commit: "89b50dd1c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7", Modified: true, Go: "go1.26.8"}},
		{"clean checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.1-0.20261129031500-89b50dd1c2e3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "89b50dd1c2e3f4a5"}, {Key: "vcs.modified", Value: "false"}}},
			"v1.4.1-0.20261129031500-89b50dd1c2e3 (commit 89b50dd1c2e3, go1.26.8)",
			buildVersion{Schema: schemaVersion, Version: "v1.4.1-0.20261129031500-89b50dd1c2e3", Commit: "89b50dd1c2e3f4a5", Go: "go1.26.8"}},
		{"no build information", nil, "unknown (no build information)", buildVersion{Schema: schemaVersion, Version: "unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := versionOf(tc.info)
			if got != tc.want {
				t.Errorf("versionOf: %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.line {
				t.Errorf("String: %q, want %q", s, tc.line)
			}
		})
	}
}

// TestVersionFlagAndCommand: --version and the version command print the
// binary's own build information, the same line; -o json its fields.
func TestVersionFlagAndCommand(t *testing.T) {
	t.Parallel()
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	want := "valine-check version " + versionOf(info).String() + "\n"
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		got := runCLI(t, nil, "", args...)
		if got.code != exitOK || got.stdout != want {
			t.Errorf("%v: want %q:\n%s", args, want, got)
		}
	}
	js := runCLI(t, []string{"VALINE_OUTPUT=json"}, "", "version")
	var v buildVersion
	if js.code != exitOK || json.Unmarshal([]byte(js.stdout), &v) != nil || v != versionOf(info) || !strings.HasPrefix(v.Go, "go1.") {
		t.Errorf("version with VALINE_OUTPUT=json: %+v:\n%s", v, js)
	}
	if bad := runCLI(t, nil, "", "version", "-o", "junit"); bad.code != exitUsage {
		t.Errorf("version -o junit:\n%s", bad)
	}
}
