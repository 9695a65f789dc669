package testbed

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// secretsFront fills the gaps of kumo's Secrets Manager (JSON 1.1,
// X-Amz-Target "secretsmanager.<Op>") that rotation's backup and journal
// depend on. Each was measured against kumo v0.33.1:
//
//   - Tags after creation. kumo keeps the Tags given to CreateSecret but
//     has no TagResource or UntagResource ("InvalidAction"). Front serves
//     both from its own store, keyed by the secret's ARN (so a secret
//     deleted and created again under the same name starts untagged),
//     after checking through a DescribeSecret to kumo that the secret
//     exists: an unknown SecretId (name or ARN) gets kumo's
//     ResourceNotFoundException. Tag keys and values are checked as AWS
//     checks them (key 1 to 128 characters, value at most 256; letters,
//     digits, spaces and _ . : / = + - @; no "aws:" prefix), else
//     InvalidParameterException. DescribeSecret and ListSecrets report
//     CreateSecret's tags with the stored ones applied on top: a stored
//     key overrides the same key, an untagged key disappears. ListSecrets'
//     Filters are not applied (kumo ignores them altogether).
//
//   - Staging labels (front_secretsmanager_stages.go). kumo relabels
//     AWSCURRENT as AWSPREVIOUS on every write, whatever VersionStages
//     says, and never takes AWSPREVIOUS off older versions: after the
//     second write several versions carry it and GetSecretValue
//     (AWSPREVIOUS) returns one of them at random; after
//     PutSecretValue(VersionStages ["AWSPENDING"]) no version is
//     AWSCURRENT. It lacks UpdateSecretVersionStage ("InvalidAction").
//     Front keeps every version's labels itself, moves them as AWS does
//     on PutSecretValue, UpdateSecret and UpdateSecretVersionStage (which
//     it serves), reads values from kumo by VersionId, and reports its
//     labels in GetSecretValue, DescribeSecret (VersionIdsToStages, where
//     a version left without labels is deprecated and not listed, as on
//     AWS) and ListSecrets (SecretVersionsToStages).
//
//   - ClientRequestToken idempotency. On AWS a write whose
//     ClientRequestToken names an existing version is ignored when the
//     value is the same and refused (ResourceExistsException) when it
//     differs; kumo instead replaces that version and makes it AWSCURRENT
//     again. Front answers such a write itself, as AWS does, so a retried
//     write cannot move the labels.
//
//   - Consistency. kumo's Secrets Manager races with itself:
//     GetSecretValue writes LastAccessedDate under a read lock, and
//     DescribeSecret and ListSecrets serialise a secret outside the lock.
//     Front serves every Secrets Manager request under one process-wide
//     lock (kumo's storage is process-wide), which also makes a write's
//     look-up of the current version and the write itself one step.
//
// Not modelled: CreateSecret's ClientRequestToken (kumo ignores it and
// picks a random VersionId, and answers a retried CreateSecret with
// ResourceExistsException where AWS ignores it); ListSecretVersionIds and
// RotateSecret (kumo lacks both); the 50-tag limit; see
// front_secretsmanager_stages.go for the labels' limits.
type secretsFront struct {
	secrets map[string]*secretOverlay // by ARN; guarded by secretsMu
}

// secretsMu serialises every Secrets Manager request, in every World.
var secretsMu sync.Mutex

// secretOverlay is what Front knows about one secret beyond kumo.
type secretOverlay struct {
	tags    map[string]string   // set by TagResource
	removed map[string]bool     // removed by UntagResource, CreateSecret's tags included
	stages  map[string][]string // every version's labels, authoritative; nil until synced from kumo (front_secretsmanager_stages.go)
}

// smTag is a Secrets Manager tag on the wire.
type smTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

const (
	smCurrent  = "AWSCURRENT"
	smPrevious = "AWSPREVIOUS"
)

// serve answers r when it is a Secrets Manager operation this front
// handles, reaching kumo through next, and reports whether it did.
func (s *secretsFront) serve(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) bool {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	if !ok {
		return false
	}
	secretsMu.Lock()
	defer secretsMu.Unlock()
	switch op {
	case "TagResource", "UntagResource":
		s.tagging(w, r, op, body, next)
	case "DescribeSecret", "ListSecrets":
		s.describing(w, r, op, body, next)
	case "GetSecretValue":
		s.getSecretValue(w, r, body, next)
	case "PutSecretValue", "UpdateSecret":
		s.writeValue(w, r, op, body, next)
	case "UpdateSecretVersionStage":
		s.updateVersionStage(w, r, body, next)
	default:
		next.ServeHTTP(w, r)
	}
	return true
}

// overlay returns the secret's overlay, creating it.
func (s *secretsFront) overlay(arn string) *secretOverlay {
	if s.secrets == nil {
		s.secrets = map[string]*secretOverlay{}
	}
	o, ok := s.secrets[arn]
	if !ok {
		o = &secretOverlay{tags: map[string]string{}, removed: map[string]bool{}}
		s.secrets[arn] = o
	}
	return o
}

// smDescribed is the part of kumo's DescribeSecret answer the front uses.
type smDescribed struct {
	ARN         string              `json:"ARN"`
	Name        string              `json:"Name"`
	Stages      map[string][]string `json:"VersionIdsToStages"`
	DeletedDate *float64            `json:"DeletedDate"`
}

// smDescribe asks kumo to describe secretID; on failure it returns kumo's
// answer, to be relayed as it is.
func smDescribe(r *http.Request, secretID string, next http.Handler) (smDescribed, *httptest.ResponseRecorder, bool) {
	req, _ := json.Marshal(map[string]string{"SecretId": secretID})
	rec := smCall(r, "DescribeSecret", req, next)
	var d smDescribed
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &d) != nil || d.ARN == "" {
		return d, rec, false
	}
	return d, rec, true
}

// tagging serves TagResource and UntagResource.
func (s *secretsFront) tagging(w http.ResponseWriter, r *http.Request, op string, body []byte, next http.Handler) {
	var req struct {
		SecretId string
		Tags     []smTag
		TagKeys  []string
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "Failed to parse request body")
		return
	}
	if req.SecretId == "" {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", "You must provide a value for the SecretId parameter.")
		return
	}
	if op == "TagResource" {
		for _, t := range req.Tags {
			if msg := checkTag(t); msg != "" {
				writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", msg)
				return
			}
		}
	}
	d, rec, ok := smDescribe(r, req.SecretId, next)
	if !ok {
		smRelay(w, rec)
		return
	}
	o := s.overlay(d.ARN)
	for _, t := range req.Tags {
		o.tags[t.Key] = t.Value
		delete(o.removed, t.Key)
	}
	for _, k := range req.TagKeys {
		delete(o.tags, k)
		o.removed[k] = true
	}
	smWrite(w, http.StatusOK, nil, []byte("{}"))
}

// checkTag returns why AWS would refuse t, or "".
func checkTag(t smTag) string {
	n := len([]rune(t.Key))
	switch {
	case n < 1 || n > 128:
		return "Tag keys must be 1 to 128 characters."
	case len([]rune(t.Value)) > 256:
		return "Tag values must be at most 256 characters."
	case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
		return "Tag keys must not start with aws:."
	case !tagSafe(t.Key) || !tagSafe(t.Value):
		return "Tags may contain only letters, numbers, spaces and _ . : / = + - @."
	}
	return ""
}

// tagSafe reports whether s uses only the characters AWS allows in tags.
func tagSafe(s string) bool {
	for _, c := range s {
		if !unicode.IsLetter(c) && !unicode.IsNumber(c) && !unicode.Is(unicode.Z, c) && !strings.ContainsRune("_.:/=+-@", c) {
			return false
		}
	}
	return true
}

// describing serves DescribeSecret and ListSecrets: kumo's answer with the
// stored tags applied and AWSPREVIOUS corrected.
func (s *secretsFront) describing(w http.ResponseWriter, r *http.Request, op string, body []byte, next http.Handler) {
	rec := smCall(r, op, body, next)
	var doc map[string]json.RawMessage
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		smRelay(w, rec)
		return
	}
	if op == "DescribeSecret" {
		s.fixSecret(doc, "VersionIdsToStages")
	} else {
		var list []map[string]json.RawMessage
		if json.Unmarshal(doc["SecretList"], &list) == nil {
			for _, entry := range list {
				s.fixSecret(entry, "SecretVersionsToStages")
			}
			doc["SecretList"] = smJSON(list)
		}
	}
	smWrite(w, rec.Code, rec.Result().Header, smJSON(doc))
}

// fixSecret applies the overlay to one secret's description, whose stages
// are under stagesKey.
func (s *secretsFront) fixSecret(doc map[string]json.RawMessage, stagesKey string) {
	var arn string
	_ = json.Unmarshal(doc["ARN"], &arn)
	o, ok := s.secrets[arn]
	if !ok {
		return
	}
	var kumoTags []smTag
	_ = json.Unmarshal(doc["Tags"], &kumoTags)
	var tags []smTag
	for _, t := range kumoTags {
		if _, over := o.tags[t.Key]; !over && !o.removed[t.Key] {
			tags = append(tags, t)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.tags)) {
		tags = append(tags, smTag{Key: k, Value: o.tags[k]})
	}
	if len(tags) == 0 {
		delete(doc, "Tags")
	} else {
		doc["Tags"] = smJSON(tags)
	}
	var stages map[string][]string
	if json.Unmarshal(doc[stagesKey], &stages) == nil && stages != nil {
		o.sync(stages)
		doc[stagesKey] = smJSON(o.listed())
	}
}

// sameString reports whether two optional strings are equal, nil and ""
// alike (kumo stores a missing SecretString as "").
func sameString(a, b *string) bool {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return deref(a) == deref(b)
}

// smCall sends the Secrets Manager operation op with a JSON body to kumo
// through next, with r's headers (kumo does not check signatures), and
// returns kumo's answer. It bypasses Front's counting and faults: it is
// part of serving r, not a call of its own.
func smCall(r *http.Request, op string, body []byte, next http.Handler) *httptest.ResponseRecorder {
	in := r.Clone(r.Context())
	in.Header.Set("X-Amz-Target", "secretsmanager."+op)
	in.Header.Del("Content-Length")
	setBody(in, body)
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, in)
	return rec
}

// smRelay writes kumo's recorded answer to the client as it is.
func smRelay(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	smWrite(w, rec.Code, rec.Result().Header, rec.Body.Bytes())
}

// smWrite answers with status, kumo's headers (when given) and body.
func smWrite(w http.ResponseWriter, status int, header http.Header, body []byte) {
	h := w.Header()
	for k, v := range header {
		h[k] = v
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/x-amz-json-1.1")
	}
	if h.Get("X-Amzn-RequestId") == "" {
		h.Set("X-Amzn-RequestId", randomUUID())
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// smJSON encodes v: maps and slices of strings and of JSON that was just
// decoded, which always encode.
func smJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
