package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/valine/valine-check/internal/journal"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// tmpDir holds what the tests build; TestMain removes it.
var tmpDir string

func TestMain(m *testing.M) {
	var err error
	if tmpDir, err = os.MkdirTemp("", "valine-probe-build-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmpDir)
	os.Exit(code)
}

// hostBuild is the zip for this machine's architecture, built once, and
// its bootstrap extracted.
var hostBuild = sync.OnceValues(func() (hostArtifact, error) {
	arts, err := Build(context.Background(), Options{OutDir: filepath.Join(tmpDir, "dist"), Arches: []string{runtime.GOARCH}})
	if err != nil {
		return hostArtifact{}, err
	}
	bin := filepath.Join(tmpDir, "bootstrap")
	if err := extractBootstrap(arts[0].Path, bin); err != nil {
		return hostArtifact{}, err
	}
	return hostArtifact{Artifact: arts[0], bootstrap: bin}, nil
})

type hostArtifact struct {
	Artifact
	bootstrap string
}

// buildForHost returns the host build, skipping where Lambda's binaries
// cannot run.
func buildForHost(tb testing.TB) hostArtifact {
	tb.Helper()
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		tb.Skipf("the bootstrap runs on linux/amd64 or linux/arm64, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	a, err := hostBuild()
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// extractBootstrap checks that the zip holds exactly one entry, an
// executable regular file named bootstrap with mode 0755, and writes it
// to path.
func extractBootstrap(zipPath, path string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	if len(zr.File) != 1 {
		return fmt.Errorf("%s has %d entries, want 1", zipPath, len(zr.File))
	}
	f := zr.File[0]
	if f.Name != "bootstrap" || !f.Mode().IsRegular() || f.Mode().Perm() != 0o755 {
		return fmt.Errorf("entry %s mode %v, want bootstrap -rwxr-xr-x", f.Name, f.Mode())
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// fakeRuntime is the Lambda Runtime API
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), enough
// for one process: it hands out the events it is given, one per
// GET .../invocation/next, and records when the process asked and what it
// answered.
type fakeRuntime struct {
	srv    *httptest.Server
	events chan []byte
	// asked receives the time of each GET .../next: the first one is the
	// process being ready (its init done).
	asked chan time.Time
	// served receives the time each event was handed out.
	served chan time.Time
	// answers receives each response or error the process posted.
	answers chan runtimeAnswer
}

type runtimeAnswer struct {
	at   time.Time
	kind string // response, error or init-error
	body string
}

func newFakeRuntime(tb testing.TB) *fakeRuntime {
	tb.Helper()
	fr := &fakeRuntime{events: make(chan []byte, 1), asked: make(chan time.Time, 8), served: make(chan time.Time, 8), answers: make(chan runtimeAnswer, 8)}
	n := 0
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		fr.asked <- time.Now()
		select {
		case ev := <-fr.events:
			mu.Lock()
			n++
			id := fmt.Sprintf("req-%d", n)
			mu.Unlock()
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(60*time.Second).UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:valine-probe")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
			fr.served <- time.Now()
			_, _ = w.Write(ev)
		case <-r.Context().Done():
		}
	})
	answer := func(kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fr.answers <- runtimeAnswer{at: time.Now(), kind: kind, body: string(b)}
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", answer("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", answer("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", answer("init-error"))
	fr.srv = httptest.NewServer(mux)
	tb.Cleanup(fr.srv.Close)
	return fr
}

// address is AWS_LAMBDA_RUNTIME_API: host and port.
func (fr *fakeRuntime) address() string { return strings.TrimPrefix(fr.srv.URL, "http://") }

// scheduledEvent is what EventBridge sends on a schedule.
var scheduledEvent = []byte(`{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events","account":"000000000000","time":"2026-11-29T03:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:000000000000:rule/valine-probe"],"detail":{}}`)

// probeWorld is a testbed world as a deployed probe finds it, during a
// grace period, and the function's environment pointing at it.
type probeWorld struct {
	w       *testbed.World
	env     []string
	secrets []string
}

func startProbeWorld(tb testing.TB) probeWorld {
	tb.Helper()
	ctx := context.Background()
	w, err := testbed.Start(ctx, testbed.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Close)
	sm := secretsmanager.NewFromConfig(w.AWS)
	credsID, backupName := "valine-probe/"+w.Function, "valine-check/"+w.Function
	b, _ := json.Marshal(map[string]string{"email": w.ProbeEmail, "password": w.ProbePassword})
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(credsID), SecretString: aws.String(string(b))}); err != nil {
		tb.Fatal(err)
	}
	old := secret.NewSecret(w.InitialSecret())
	next, err := rotate.GenerateSecret()
	if err != nil {
		tb.Fatal(err)
	}
	backup := rotate.Backup{API: sm, Name: backupName}
	if err := backup.Store(ctx, old, next); err != nil {
		tb.Fatal(err)
	}
	if err := w.SetSecrets(ctx, string(next.Reveal()), string(old.Reveal())); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	if err := backup.WriteJournal(ctx, journal.Journal{ID: journal.NewRotationID(now), Mode: journal.ModeZeroDowntime, Phase: journal.PhaseGrace,
		OldFingerprint: old.Fingerprint(), NewFingerprint: next.Fingerprint(), GraceDeadline: now.Add(7 * 24 * time.Hour), StartedAt: now, UpdatedAt: now}); err != nil {
		tb.Fatal(err)
	}
	return probeWorld{
		w: w,
		env: []string{
			"VALINE_API_URL=" + w.APIURL, "VALINE_PROFILE=" + w.Profile.Name, "VALINE_DEPLOYMENT=testbed",
			"VALINE_PROBE_SECRET_ID=" + credsID, "VALINE_BACKUP_SECRET=" + backupName,
			"AWS_ENDPOINT_URL=" + w.AWSURL, "AWS_REGION=" + w.Region, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_LAMBDA_FUNCTION_NAME=valine-probe", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		},
		secrets: []string{w.ProbePassword, w.InitialSecret(), string(next.Reveal())},
	}
}

// coldStart is one process's life: start, init, one invocation.
type coldStart struct {
	init, invoke time.Duration
	maxRSSKB     int64
	answer       runtimeAnswer
	stdout       string
	stderr       string
}

// runColdStart starts the bootstrap against a fresh fake Runtime API,
// serves it one scheduled event, then stops it. init is process start to
// its first GET .../next; invoke is the event handed out to the answer
// posted; maxRSSKB is the process's peak resident memory.
func runColdStart(tb testing.TB, bootstrap string, env []string) coldStart {
	tb.Helper()
	fr := newFakeRuntime(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bootstrap)
	cmd.Env = append([]string{"HOME=" + tb.TempDir(), "AWS_LAMBDA_RUNTIME_API=" + fr.address()}, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var cs coldStart
	select {
	case ready := <-fr.asked:
		cs.init = ready.Sub(start)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tb.Fatalf("the bootstrap never asked for an event\n%s", stderr.String())
	}
	fr.events <- scheduledEvent
	served := <-fr.served
	select {
	case cs.answer = <-fr.answers:
		cs.invoke = cs.answer.at.Sub(served)
	case <-time.After(90 * time.Second):
		tb.Errorf("no answer to the event")
	}
	// The process asks for the next event once it has answered; stop it
	// there, as Lambda freezes it.
	select {
	case <-fr.asked:
	case <-time.After(10 * time.Second):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cs.maxRSSKB = int64(ru.Maxrss) // kilobytes on Linux
	}
	cs.stdout, cs.stderr = stdout.String(), stderr.String()
	return cs
}
