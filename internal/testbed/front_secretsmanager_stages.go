package testbed

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Staging labels. kumo's labels cannot carry Secrets Manager's rotation
// protocol (measured against kumo v0.33.1): every write with a value
// relabels AWSCURRENT as AWSPREVIOUS whatever VersionStages says, so
// PutSecretValue(VersionStages ["AWSPENDING"]) leaves the secret with no
// AWSCURRENT at all (GetSecretValue without a stage answers
// ResourceNotFoundException) and the previous current version both
// AWSPREVIOUS; AWSPREVIOUS is never taken off older versions, so several
// carry it; a stage given to a new version is not taken off the version
// that had it; and UpdateSecretVersionStage is "InvalidAction".
//
// Front therefore keeps the labels of every version itself
// (secretOverlay.stages, read from kumo the first time it sees the
// secret) and uses kumo only to store the versions' values, reading them
// by VersionId. As on AWS:
//
//   - PutSecretValue attaches VersionStages (default [AWSCURRENT]) to the
//     new version, taking each label off the version that had it; only
//     when AWSCURRENT is among them does the version it leaves become
//     AWSPREVIOUS (taken off the one that had it). A write without
//     AWSCURRENT ([AWSPENDING]) moves neither AWSCURRENT nor AWSPREVIOUS,
//     unless it is the secret's first value, which gets AWSCURRENT too.
//     UpdateSecret with a value is PutSecretValue with [AWSCURRENT].
//   - UpdateSecretVersionStage (SecretId, VersionStage, MoveToVersionId,
//     RemoveFromVersionId): moving a label that another version holds
//     requires RemoveFromVersionId to name that version, else
//     InvalidParameterException (so does a RemoveFromVersionId that does
//     not hold a label held elsewhere or by MoveToVersionId); a label held
//     by no version just moves, one MoveToVersionId holds stays. Moving AWSCURRENT
//     puts AWSPREVIOUS on the version it came from (taking it off the one
//     that had it, MoveToVersionId included). Without MoveToVersionId the
//     label is removed from RemoveFromVersionId, which must hold it
//     (InvalidParameterException); AWSCURRENT cannot be removed that way
//     (InvalidParameterException), only moved. An unknown MoveToVersionId
//     is ResourceNotFoundException, a secret scheduled for deletion
//     InvalidRequestException.
//   - GetSecretValue reads the version holding VersionStage (default
//     AWSCURRENT; none is ResourceNotFoundException), or VersionId (with
//     VersionStage too, the version must hold it, else
//     ResourceNotFoundException), and reports that version's labels.
//   - DescribeSecret's VersionIdsToStages and ListSecrets'
//     SecretVersionsToStages list the versions that hold a label; a
//     version left with none is deprecated and not listed, though
//     GetSecretValue by VersionId still reads it.
//   - A write whose ClientRequestToken names an existing version is
//     ignored when the value is the same and ResourceExistsException when
//     it differs; nothing moves.
//
// Not modelled: the limits of 20 labels a version and about 100 versions
// a secret (deprecated versions are never removed), ListSecretVersionIds
// (kumo lacks it), RotateSecret and rotation Lambdas.

// sync makes the overlay's labels authoritative: the first time, they are
// kumo's (right while only Front has written); a version Front has not seen
// since (written past Front) joins with no label.
func (o *secretOverlay) sync(kumo map[string][]string) {
	if o.stages == nil {
		o.stages = map[string][]string{}
		for id, st := range kumo {
			o.stages[id] = slices.Clone(st)
		}
	}
	for id := range kumo {
		if _, ok := o.stages[id]; !ok {
			o.stages[id] = []string{}
		}
	}
}

// holder returns the version holding label, or "".
func (o *secretOverlay) holder(label string) string {
	for id, st := range o.stages {
		if slices.Contains(st, label) {
			return id
		}
	}
	return ""
}

// detach takes label off every version.
func (o *secretOverlay) detach(label string) {
	for id, st := range o.stages {
		o.stages[id] = slices.DeleteFunc(st, func(s string) bool { return s == label })
	}
}

// attach puts label on version id, taking it off any other; moving
// AWSCURRENT makes the version it left AWSPREVIOUS.
func (o *secretOverlay) attach(id, label string) {
	from := o.holder(label)
	if from == id {
		return
	}
	o.detach(label)
	o.stages[id] = append(o.stages[id], label)
	if label == smCurrent && from != "" {
		o.detach(smPrevious)
		o.stages[from] = append(o.stages[from], smPrevious)
	}
}

// listed returns the labels as DescribeSecret lists them: deprecated
// versions left out.
func (o *secretOverlay) listed() map[string][]string {
	out := map[string][]string{}
	for id, st := range o.stages {
		if len(st) > 0 {
			out[id] = slices.Clone(st)
		}
	}
	return out
}

// versionStages returns version id's labels, never nil.
func (o *secretOverlay) versionStages(id string) []string {
	return append([]string{}, o.stages[id]...)
}

// secretFor describes the secret r names and returns its synced overlay.
// ok is false when kumo's answer (relayed as it is) is an error, or when
// the secret is scheduled for deletion, which kumo refuses itself: then
// the request goes to kumo.
func (s *secretsFront) secretFor(w http.ResponseWriter, r *http.Request, secretID string, body []byte, next http.Handler) (smDescribed, *secretOverlay, bool) {
	d, rec, ok := smDescribe(r, secretID, next)
	switch {
	case !ok:
		smRelay(w, rec)
		return d, nil, false
	case d.DeletedDate != nil:
		smRelay(w, smCall(r, opOf(r), body, next))
		return d, nil, false
	}
	o := s.overlay(d.ARN)
	o.sync(d.Stages)
	return d, o, true
}

// opOf is the Secrets Manager operation r calls.
func opOf(r *http.Request) string {
	_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	return op
}

// getSecretValue serves GetSecretValue: the version is chosen by Front's
// labels and read from kumo by VersionId.
func (s *secretsFront) getSecretValue(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) {
	var req struct{ SecretId, VersionId, VersionStage string }
	if json.Unmarshal(body, &req) != nil || req.SecretId == "" {
		smRelay(w, smCall(r, "GetSecretValue", body, next))
		return
	}
	d, o, ok := s.secretFor(w, r, req.SecretId, body, next)
	if !ok {
		return
	}
	id := req.VersionId
	switch {
	case id == "":
		stage := req.VersionStage
		if stage == "" {
			stage = smCurrent
		}
		if id = o.holder(stage); id == "" {
			writeAWSError(w, r, http.StatusBadRequest, "ResourceNotFoundException",
				"Secrets Manager can't find the specified secret value for staging label: "+stage)
			return
		}
	case req.VersionStage != "" && !slices.Contains(o.stages[id], req.VersionStage):
		writeAWSError(w, r, http.StatusBadRequest, "ResourceNotFoundException",
			"Secrets Manager can't find the specified secret value for VersionId: "+id+" and staging label: "+req.VersionStage)
		return
	}
	rec := smCall(r, "GetSecretValue", smJSON(map[string]string{"SecretId": d.ARN, "VersionId": id}), next)
	var doc map[string]json.RawMessage
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		smRelay(w, rec)
		return
	}
	doc["VersionStages"] = smJSON(o.versionStages(id))
	smWrite(w, rec.Code, rec.Result().Header, smJSON(doc))
}

// writeValue serves PutSecretValue and UpdateSecret: a write naming an
// existing version is answered as AWS answers it; any other is forwarded
// to kumo, and its labels attached to the new version as AWS attaches
// them.
func (s *secretsFront) writeValue(w http.ResponseWriter, r *http.Request, op string, body []byte, next http.Handler) {
	var req struct {
		SecretId, ClientRequestToken string
		SecretString                 *string
		SecretBinary                 []byte
		VersionStages                []string
	}
	_ = json.Unmarshal(body, &req)
	if req.SecretString == nil && req.SecretBinary == nil || req.SecretId == "" {
		// kumo answers a write without a value (or a secret) itself.
		smRelay(w, smCall(r, op, body, next))
		return
	}
	d, o, ok := s.secretFor(w, r, req.SecretId, body, next)
	if !ok {
		return
	}
	if _, exists := o.stages[req.ClientRequestToken]; exists && req.ClientRequestToken != "" {
		s.existingVersion(w, r, op, d, req.ClientRequestToken, o.versionStages(req.ClientRequestToken), req.SecretString, req.SecretBinary, next)
		return
	}
	labels := []string{smCurrent}
	if op == "PutSecretValue" && len(req.VersionStages) > 0 {
		labels = req.VersionStages
	}
	if o.holder(smCurrent) == "" && !slices.Contains(labels, smCurrent) {
		labels = append(slices.Clone(labels), smCurrent) // the first value is current
	}
	rec := smCall(r, op, body, next)
	var doc map[string]json.RawMessage
	var out struct{ VersionId string }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil ||
		json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.VersionId == "" {
		smRelay(w, rec)
		return
	}
	if _, ok := o.stages[out.VersionId]; !ok {
		o.stages[out.VersionId] = []string{}
	}
	for _, l := range labels {
		o.attach(out.VersionId, l)
	}
	if op == "PutSecretValue" {
		doc["VersionStages"] = smJSON(o.versionStages(out.VersionId))
	}
	smWrite(w, rec.Code, rec.Result().Header, smJSON(doc))
}

// existingVersion answers a write whose ClientRequestToken names an
// existing version: ignored (success, nothing moves) when the value is the
// same, refused when it differs, as on AWS.
func (s *secretsFront) existingVersion(w http.ResponseWriter, r *http.Request, op string, d smDescribed, token string, stages []string, str *string, bin []byte, next http.Handler) {
	rec := smCall(r, "GetSecretValue", smJSON(map[string]string{"SecretId": d.ARN, "VersionId": token}), next)
	var have struct {
		SecretString *string
		SecretBinary []byte
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &have) != nil {
		smRelay(w, rec)
		return
	}
	if !sameString(have.SecretString, str) || !bytes.Equal(have.SecretBinary, bin) {
		writeAWSError(w, r, http.StatusBadRequest, "ResourceExistsException",
			"You can't modify an existing version, you can only create new versions.")
		return
	}
	resp := map[string]any{"ARN": d.ARN, "Name": d.Name, "VersionId": token}
	if op == "PutSecretValue" {
		resp["VersionStages"] = stages
	}
	smWrite(w, http.StatusOK, nil, smJSON(resp))
}

// updateVersionStage serves UpdateSecretVersionStage, which kumo lacks.
func (s *secretsFront) updateVersionStage(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) {
	var req struct{ SecretId, VersionStage, MoveToVersionId, RemoveFromVersionId string }
	invalid := func(msg string) {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidParameterException", msg)
	}
	switch {
	case json.Unmarshal(body, &req) != nil:
		invalid("Failed to parse request body")
		return
	case req.SecretId == "":
		invalid("You must provide a value for the SecretId parameter.")
		return
	case req.VersionStage == "" || len(req.VersionStage) > 256:
		invalid("VersionStage must be 1 to 256 characters.")
		return
	case req.MoveToVersionId == "" && req.RemoveFromVersionId == "":
		invalid("You must specify MoveToVersionId, RemoveFromVersionId or both.")
		return
	}
	d, rec, ok := smDescribe(r, req.SecretId, next)
	if !ok {
		smRelay(w, rec)
		return
	}
	if d.DeletedDate != nil {
		writeAWSError(w, r, http.StatusBadRequest, "InvalidRequestException",
			"You can't perform this operation on the secret because it was marked for deletion.")
		return
	}
	o := s.overlay(d.ARN)
	o.sync(d.Stages)
	label, to, from := req.VersionStage, req.MoveToVersionId, req.RemoveFromVersionId
	holder := o.holder(label)
	switch _, known := o.stages[to]; {
	case to != "" && !known:
		writeAWSError(w, r, http.StatusBadRequest, "ResourceNotFoundException",
			"Secrets Manager can't find the specified secret version: "+to)
		return
	case to == "" && holder != from:
		invalid("The staging label " + label + " isn't attached to version " + from + ".")
		return
	case to == "" && label == smCurrent:
		invalid("You can't remove the staging label AWSCURRENT from a version; move it to another version with MoveToVersionId.")
		return
	case to == "":
		o.detach(label)
	case holder != "" && holder != to && from == "":
		invalid("The parameter RemoveFromVersionId can't be empty. Staging label " + label + " is currently attached to version " +
			holder + ", so you must explicitly reference that version in RemoveFromVersionId.")
		return
	case holder != "" && from != "" && from != holder:
		invalid("When you move staging label " + label + ", RemoveFromVersionId must be the version that currently has it, " + holder + ".")
		return
	default:
		o.attach(to, label)
	}
	smWrite(w, http.StatusOK, nil, smJSON(map[string]string{"ARN": d.ARN, "Name": d.Name}))
}
