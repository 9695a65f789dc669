package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// buildVersion is what the binary knows of its build: the module version
// (vX.Y.Z when installed with go install …@vX.Y.Z; "(devel)" from a build
// without version control information), the commit and whether the tree
// had uncommitted changes (from a build in a checkout), and the Go
// release that built it.
type buildVersion struct {
	Schema   string `json:"schema"`
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go,omitempty"`
}

// versionOf reads info, runtime/debug.ReadBuildInfo's answer (nil when the
// binary carries none).
func versionOf(info *debug.BuildInfo) buildVersion {
	v := buildVersion{Schema: schemaVersion, Version: "unknown"}
	if info == nil {
		return v
	}
	v.Go = info.GoVersion
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// readBuildInfo is this binary's build information, nil when it has none.
func readBuildInfo() *debug.BuildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return info
}

// String is the version in one line: "v1.2.0 (go1.26.8)", or
// "(devel) (commit 89b50dd1c2e3, modified, go1.26.8)" from a checkout.
func (v buildVersion) String() string {
	var parts []string
	if v.Commit != "" {
		parts = append(parts, "commit "+shortCommit(v.Commit))
	}
	if v.Modified {
		parts = append(parts, "modified")
	}
	if v.Go != "" {
		parts = append(parts, v.Go)
	}
	if v.Go == "" && v.Commit == "" {
		parts = append(parts, "no build information")
	}
	return v.Version + " (" + strings.Join(parts, ", ") + ")"
}

// shortCommit is a revision as git abbreviates it in Go's pseudo-versions.
func shortCommit(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// versionCommand prints v: the same line as --version, or its JSON.
func versionCommand(v buildVersion) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the commit and the Go release this binary was built from (as --version does)",
		Flags: []cli.Flag{outputFlag("text", "json")},
		Action: func(cCtx *cli.Context) error {
			if cCtx.NArg() > 0 {
				return usageError(cCtx, "version takes no arguments")
			}
			output, err := outputFormat(cCtx, "text", "json")
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cCtx.App.Writer, v)
			}
			fmt.Fprintf(cCtx.App.Writer, "%s version %s\n", cCtx.App.Name, v)
			return nil
		},
	}
}
