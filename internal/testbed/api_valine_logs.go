package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// valineCall is one invocation of the valine backend's function: it
// gathers the invocation's log lines in Lambda's plain text format (START,
// the handler's lines, END, REPORT) and ships them before the answer is
// written, so they are in the log group by the time the client sees it.
type valineCall struct {
	ctx   context.Context
	w     http.ResponseWriter
	logs  *logWriter
	id    string // the Lambda request id
	start time.Time
	lines []string
}

// newValineCall starts an invocation with its START line.
func newValineCall(w http.ResponseWriter, r *http.Request, logs *logWriter) *valineCall {
	c := &valineCall{ctx: r.Context(), w: w, logs: logs, id: randomUUID(), start: time.Now()}
	c.lines = append(c.lines, "START RequestId: "+c.id+" Version: $LATEST")
	return c
}

// event adds a handler line, `<time>\t<request id>\t<LEVEL>\t<JSON>`, as
// Node's console methods print it on Lambda. fields must never hold a token,
// a secret or a request header.
func (c *valineCall) event(level string, fields map[string]any) {
	c.lines = append(c.lines, lambdaLine(c.id, level, fields))
}

// lambdaLine formats one console line of request id.
func lambdaLine(id, level string, fields map[string]any) string {
	b, err := json.Marshal(fields) // keys sorted: a stable line
	if err != nil {
		b = []byte(`{"event":"log_encoding_failed"}`)
	}
	return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + "\t" + id + "\t" + level + "\t" + string(b)
}

// reply ends the invocation: END and REPORT, the lines shipped, then the
// JSON answer written (headers set before it, such as cookies, go with it).
func (c *valineCall) reply(status int, body any) {
	ms := float64(time.Since(c.start).Microseconds()) / 1000
	c.lines = append(c.lines,
		"END RequestId: "+c.id,
		fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: 1024 MB\tMax Memory Used: 80 MB",
			c.id, ms, max(1, int(math.Ceil(ms)))))
	c.logs.writeEvents(c.ctx, c.lines)
	writeJSON(c.w, status, body)
}

// writeEvents ships lines as separate events in one PutLogEvents call,
// synchronously, each stamped now; like write it survives the client
// hanging up and only logs a failure.
func (l *logWriter) writeEvents(ctx context.Context, lines []string) {
	if len(lines) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := aws.Int64(time.Now().UnixMilli())
	events := make([]cwltypes.InputLogEvent, len(lines))
	for i, line := range lines {
		events[i] = cwltypes.InputLogEvent{Message: aws.String(line), Timestamp: now}
	}
	_, err := l.client.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{
		LogGroupName: aws.String(l.group), LogStreamName: aws.String(l.stream), LogEvents: events,
	})
	if err != nil {
		l.log.Warn("writing the valine function's log lines failed", "group", l.group, "err", err)
	}
}
