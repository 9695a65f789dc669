// Command build builds the scheduled probe's deployable code: for each
// architecture it cross-compiles cmd/valine-probe for Lambda's
// provided.al2023 runtime (GOOS=linux, CGO_ENABLED=0, -tags lambda.norpc,
// -trimpath, -ldflags "-s -w") into an executable named bootstrap, and
// zips it (mode 0755) into deploy/dist/valine-probe-<arch>.zip, the
// CodeUri of deploy/template.yaml. It needs only Go: no zip binary.
//
//	go run ./deploy/build                 # arm64 and amd64
//	go run ./deploy/build -arch arm64     # one
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Arches are the architectures Lambda runs, by their GOARCH names.
var Arches = []string{"arm64", "amd64"}

// Options are a build's inputs.
type Options struct {
	// Root is the module's root directory; "" finds it with `go env GOMOD`.
	Root string
	// OutDir receives the zips; "" means <Root>/deploy/dist.
	OutDir string
	// Arches to build; nil means Arches.
	Arches []string
	// Log receives one line per zip; nil discards.
	Log io.Writer
}

// Artifact is one built zip.
type Artifact struct {
	Arch string
	// Path is the zip's path.
	Path string
	// ZipBytes and BinaryBytes are the zip's and the bootstrap's sizes.
	ZipBytes, BinaryBytes int64
}

// zipTime is every entry's modification time, so the same binary gives
// the same zip (and CloudFormation sees no change in code that did not
// change).
var zipTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	arches := flag.String("arch", strings.Join(Arches, ","), "architectures to build, comma-separated: arm64, amd64")
	out := flag.String("out", "", "directory for the zips (default deploy/dist in the module)")
	flag.Parse()
	_, err := Build(context.Background(), Options{OutDir: *out, Arches: strings.Split(*arches, ","), Log: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n", err)
		os.Exit(1)
	}
}

// Build builds one zip per architecture.
func Build(ctx context.Context, opt Options) ([]Artifact, error) {
	if opt.Root == "" {
		root, err := moduleRoot(ctx)
		if err != nil {
			return nil, err
		}
		opt.Root = root
	}
	if opt.OutDir == "" {
		opt.OutDir = filepath.Join(opt.Root, "deploy", "dist")
	}
	if len(opt.Arches) == 0 {
		opt.Arches = Arches
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return nil, err
	}
	var out []Artifact
	for _, arch := range opt.Arches {
		arch = strings.TrimSpace(arch)
		if arch != "arm64" && arch != "amd64" {
			return out, fmt.Errorf("architecture %q: Lambda runs arm64 and amd64", arch)
		}
		a, err := buildArch(ctx, opt, arch)
		if err != nil {
			return out, err
		}
		fmt.Fprintf(opt.Log, "%s: %.1f MB (bootstrap %.1f MB, linux/%s)\n", a.Path, mb(a.ZipBytes), mb(a.BinaryBytes), arch)
		out = append(out, a)
	}
	return out, nil
}

func buildArch(ctx context.Context, opt Options, arch string) (Artifact, error) {
	tmp, err := os.MkdirTemp("", "valine-probe-build-")
	if err != nil {
		return Artifact{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w",
		"-o", bin, "./cmd/valine-probe")
	cmd.Dir = opt.Root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return Artifact{}, fmt.Errorf("go build for linux/%s: %w\n%s", arch, err, stderr.String())
	}
	path := filepath.Join(opt.OutDir, "valine-probe-"+arch+".zip")
	zipped, binSize, err := zipBootstrap(bin, path)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Arch: arch, Path: path, ZipBytes: zipped, BinaryBytes: binSize}, nil
}

// zipBootstrap writes a zip holding bin as "bootstrap", mode 0755, to
// path (through a temporary file, so a failed build leaves the old zip).
func zipBootstrap(bin, path string) (zipBytes, binBytes int64, err error) {
	in, err := os.Open(bin)
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".valine-probe-*.zip")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	zw := zip.NewWriter(tmp)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: zipTime}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err == nil {
		binBytes, err = io.Copy(w, in)
	}
	if err == nil {
		err = zw.Close()
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = tmp.Stat(); err == nil {
			size = st.Size()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644) // CreateTemp made it 0600
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return size, binBytes, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the valine-check module: run from its directory")
	}
	return filepath.Dir(gomod), nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }
