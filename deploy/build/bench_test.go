package main

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkColdStart measures the built bootstrap (this machine's
// architecture, built as for Lambda) as Lambda runs it: a new process per
// iteration against a fake Runtime API, serving one scheduled event that
// probes a testbed world in a grace period (all 11 checks, credentials and
// journal from the emulated Secrets Manager). It reports the medians over
// the iterations of:
//
//   - init-ms: process start to its first GET /runtime/invocation/next
//     (configuration, AWS configuration, clients; what Lambda bills as Init Duration);
//   - invoke-ms: the event handed out to the response posted (one probe run);
//   - peak-rss-MB: the process's peak resident memory (rusage maxrss);
//
// and zip-MB, the deployable zip's size.
//
//	go test -run '^$' -bench ColdStart -benchtime 10x -count 5 ./deploy/build
func BenchmarkColdStart(b *testing.B) {
	a := buildForHost(b)
	pw := startProbeWorld(b)
	var inits, invokes, rss []float64
	for b.Loop() {
		cs := runColdStart(b, a.bootstrap, pw.env)
		if cs.answer.kind != "response" {
			b.Fatalf("answer %s %s\n%s", cs.answer.kind, cs.answer.body, cs.stderr)
		}
		inits = append(inits, ms(cs.init))
		invokes = append(invokes, ms(cs.invoke))
		rss = append(rss, float64(cs.maxRSSKB)/1024)
	}
	b.ReportMetric(median(inits), "init-ms")
	b.ReportMetric(median(invokes), "invoke-ms")
	b.ReportMetric(median(rss), "peak-rss-MB")
	b.ReportMetric(float64(a.ZipBytes)/(1<<20), "zip-MB")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
