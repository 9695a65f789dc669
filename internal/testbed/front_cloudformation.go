package testbed

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// serveCloudFormation fills the gaps of kumo's CloudFormation (the Query
// protocol: a form body with Action=<Op>, XML answers) that a stack-managed
// fleet depends on. Each was measured against kumo v0.33.1:
//
//   - Parameters. kumo's CreateStack and UpdateStack cannot parse a request
//     carrying Parameters (its Query-to-JSON step makes a list where it
//     expects a map) and answer ValidationError "Failed to parse request
//     body", so a template with parameters cannot be deployed at all. Front
//     takes the parameters off the request before kumo sees it and keeps
//     them itself, checked as AWS checks them against the template's
//     Parameters section (a declared parameter with neither a value nor a
//     Default: "Parameters: [X] must have values"; an undeclared one:
//     "Parameters: [X] do not exist in the template"; UsePreviousValue on
//     UpdateStack keeps the stored value). DescribeStacks lists them, a
//     NoEcho parameter's value as "****", as AWS does.
//   - UsePreviousTemplate on UpdateStack, which kumo refuses
//     ("TemplateBody is required for update"): Front sends kumo the stack's
//     template.
//   - An update that changes nothing (the same template and parameter
//     values): kumo applies it; AWS refuses it with ValidationError "No
//     updates are to be performed.", which Front answers.
//   - A stack named by its id. kumo looks stacks up by name only and answers
//     StackNotFoundException for a stack id: Front turns a stack id it saw
//     created into the stack's name in DescribeStacks, GetTemplate,
//     DescribeStackResources, UpdateStack and DeleteStack.
//   - A missing stack. kumo answers StackNotFoundException, which AWS's
//     CloudFormation API never returns there: Front answers ValidationError
//     "Stack with id X does not exist" as AWS does, and DeleteStack of a
//     missing stack succeeds, as on AWS.
//   - LastUpdatedTime. kumo sets it at creation; AWS shows it only once the
//     stack has been updated. Front leaves it out of DescribeStacks until an
//     UpdateStack of the stack succeeded.
//   - Physical ids. kumo gives every resource a made-up PhysicalResourceId
//     ("<LogicalId>-<random>"); for an AWS::Lambda::Function whose template
//     names its FunctionName, AWS's is that name, which Front puts in
//     DescribeStackResources.
//
// Not filled: kumo creates none of the resources a template names (the
// World creates the functions itself, see world_deploy.go); stack ids say
// account 123456789012 where every other ARN says 000000000000; only JSON
// templates are understood (a YAML template's parameters go unchecked and
// its physical ids stay kumo's); ListStacks is kumo's as it is (its
// LastUpdatedTime included); a deleted stack cannot be described by its id;
// stack tags, outputs and events are not modelled. The stacks Front knows
// are process-wide, as kumo's storage is, and every CloudFormation request
// it handles is served under one process-wide lock.
func serveCloudFormation(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) bool {
	if signingName(r.Header.Get("Authorization")) != "cloudformation" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return false
	}
	action := form.Get("Action")
	switch action {
	case "CreateStack", "UpdateStack", "DescribeStacks", "GetTemplate", "DescribeStackResources", "DeleteStack":
	default:
		return false
	}
	cfnMu.Lock()
	defer cfnMu.Unlock()
	named := form.Get("StackName")
	if id := form.Get("StackName"); id != "" && action != "CreateStack" {
		if s, ok := cfnStacks[id]; ok {
			form.Set("StackName", s.name)
		}
	}
	switch action {
	case "CreateStack":
		cfnCreate(w, r, form, next)
	case "UpdateStack":
		cfnUpdate(w, r, form, named, next)
	case "DescribeStacks":
		cfnDescribe(w, r, form, named, next)
	case "DescribeStackResources":
		cfnResources(w, r, form, named, next)
	case "DeleteStack":
		cfnDelete(w, r, form, next)
	default: // GetTemplate
		rec := cfnCall(r, form, next)
		if !cfnMissing(w, r, rec, named) {
			relay(w, rec)
		}
	}
	return true
}

// cfnStack is what Front knows about one stack beyond kumo.
type cfnStack struct {
	id, name  string
	template  string
	params    map[string]string
	noEcho    map[string]bool
	functions map[string]string // logical id -> FunctionName, for AWS::Lambda::Function resources
	updated   bool              // an UpdateStack succeeded
}

// cfnMu guards cfnStacks and cfnByName and serialises every CloudFormation
// request Front handles, in every World (kumo's storage is process-wide).
var (
	cfnMu     sync.Mutex
	cfnStacks = map[string]*cfnStack{} // by stack id
	cfnByName = map[string]string{}    // live stack name -> id
)

// cfnTemplateDecl is the part of a JSON template Front reads.
type cfnTemplateDecl struct {
	Parameters map[string]struct {
		Default any `json:"Default"`
		NoEcho  any `json:"NoEcho"`
	} `json:"Parameters"`
	Resources map[string]struct {
		Type       string         `json:"Type"`
		Properties map[string]any `json:"Properties"`
	} `json:"Resources"`
}

// cfnParam is one entry of a request's Parameters list.
type cfnParam struct {
	value       string
	hasValue    bool
	usePrevious bool
}

// cfnCreate serves CreateStack: the parameters checked and kept, the rest
// sent to kumo.
func cfnCreate(w http.ResponseWriter, r *http.Request, form url.Values, next http.Handler) {
	given := cfnTakeParams(form)
	for k, p := range given {
		if p.usePrevious {
			writeAWSError(w, r, http.StatusBadRequest, "ValidationError", "Invalid input for parameter key "+k+". Cannot specify usePreviousValue as true for a parameter key in a new stack")
			return
		}
	}
	tmpl := form.Get("TemplateBody")
	params, noEcho, err := cfnResolveParams(tmpl, given, nil)
	if err != nil {
		writeAWSError(w, r, http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	rec := cfnCall(r, form, next)
	if rec.Code != http.StatusOK {
		relay(w, rec)
		return
	}
	var out struct {
		StackID string `xml:"CreateStackResult>StackId"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &out); err == nil && out.StackID != "" {
		name := form.Get("StackName")
		cfnStacks[out.StackID] = &cfnStack{
			id: out.StackID, name: name, template: tmpl, params: params, noEcho: noEcho,
			functions: cfnFunctions(tmpl),
		}
		cfnByName[name] = out.StackID
	}
	relay(w, rec)
}

// cfnUpdate serves UpdateStack: UsePreviousTemplate, the parameters
// (UsePreviousValue), and the refusal of an update that changes nothing.
func cfnUpdate(w http.ResponseWriter, r *http.Request, form url.Values, named string, next http.Handler) {
	s := cfnStacks[cfnByName[form.Get("StackName")]]
	if s == nil {
		// Not created through a Front: kumo's answer, errors translated.
		rec := cfnCall(r, form, next)
		if !cfnMissing(w, r, rec, named) {
			relay(w, rec)
		}
		return
	}
	given := cfnTakeParams(form)
	if form.Get("UsePreviousTemplate") == "true" {
		if form.Get("TemplateBody") != "" {
			writeAWSError(w, r, http.StatusBadRequest, "ValidationError", "You cannot specify both usePreviousTemplate and Template Body")
			return
		}
		form.Set("TemplateBody", s.template)
	}
	form.Del("UsePreviousTemplate")
	tmpl := form.Get("TemplateBody")
	params, noEcho, err := cfnResolveParams(tmpl, given, s.params)
	if err != nil {
		writeAWSError(w, r, http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	if tmpl == s.template && maps.Equal(params, s.params) {
		writeAWSError(w, r, http.StatusBadRequest, "ValidationError", "No updates are to be performed.")
		return
	}
	rec := cfnCall(r, form, next)
	if rec.Code == http.StatusOK {
		s.template, s.params, s.noEcho, s.updated = tmpl, params, noEcho, true
		s.functions = cfnFunctions(tmpl)
	}
	relay(w, rec)
}

// cfnDescribe serves DescribeStacks: kumo's answer with the parameters
// Front keeps (NoEcho masked) and no LastUpdatedTime before an update.
func cfnDescribe(w http.ResponseWriter, r *http.Request, form url.Values, named string, next http.Handler) {
	rec := cfnCall(r, form, next)
	if cfnMissing(w, r, rec, named) {
		return
	}
	var doc cfnDescribeStacksResponse
	if rec.Code != http.StatusOK || xml.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		relay(w, rec)
		return
	}
	for i := range doc.Result.Stacks {
		st := &doc.Result.Stacks[i]
		s, ok := cfnStacks[st.StackID]
		if !ok {
			continue
		}
		if !s.updated {
			st.LastUpdatedTime = ""
		}
		st.Parameters = nil
		for _, k := range slices.Sorted(maps.Keys(s.params)) {
			v := s.params[k]
			if s.noEcho[k] {
				v = "****"
			}
			st.Parameters = append(st.Parameters, cfnXMLParameter{Key: k, Value: v})
		}
	}
	doc.Xmlns = cfnXMLNS
	cfnWriteXML(w, r, doc)
}

// cfnResources serves DescribeStackResources with each Lambda function's
// name as its physical id.
func cfnResources(w http.ResponseWriter, r *http.Request, form url.Values, named string, next http.Handler) {
	rec := cfnCall(r, form, next)
	if cfnMissing(w, r, rec, named) {
		return
	}
	var doc cfnDescribeStackResourcesResponse
	if rec.Code != http.StatusOK || xml.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		relay(w, rec)
		return
	}
	for i := range doc.Result.Resources {
		res := &doc.Result.Resources[i]
		if s, ok := cfnStacks[res.StackID]; ok {
			if fn := s.functions[res.LogicalID]; fn != "" {
				res.PhysicalID = fn
			}
		}
	}
	doc.Xmlns = cfnXMLNS
	cfnWriteXML(w, r, doc)
}

// cfnDelete serves DeleteStack: a missing stack is no error, and Front
// forgets a deleted one.
func cfnDelete(w http.ResponseWriter, r *http.Request, form url.Values, next http.Handler) {
	rec := cfnCall(r, form, next)
	if rec.Code == http.StatusBadRequest && bytes.Contains(rec.Body.Bytes(), []byte("<Code>StackNotFoundException</Code>")) {
		cfnWriteXML(w, r, struct {
			XMLName   xml.Name `xml:"DeleteStackResponse"`
			Xmlns     string   `xml:"xmlns,attr"`
			RequestID string   `xml:"ResponseMetadata>RequestId"`
		}{Xmlns: cfnXMLNS, RequestID: randomUUID()})
		return
	}
	if rec.Code == http.StatusOK {
		name := form.Get("StackName")
		delete(cfnStacks, cfnByName[name])
		delete(cfnByName, name)
	}
	relay(w, rec)
}

// cfnMissing answers kumo's StackNotFoundException as AWS answers a missing
// stack, and reports whether it did.
func cfnMissing(w http.ResponseWriter, r *http.Request, rec *httptest.ResponseRecorder, named string) bool {
	if rec.Code != http.StatusBadRequest || !bytes.Contains(rec.Body.Bytes(), []byte("<Code>StackNotFoundException</Code>")) {
		return false
	}
	writeAWSError(w, r, http.StatusBadRequest, "ValidationError", "Stack with id "+named+" does not exist")
	return true
}

// cfnTakeParams removes the Parameters.member.N.* fields from form and
// returns them by key.
func cfnTakeParams(form url.Values) map[string]cfnParam {
	type entry struct {
		key string
		p   cfnParam
	}
	byIndex := map[int]*entry{}
	for k, vs := range form {
		rest, ok := strings.CutPrefix(k, "Parameters.member.")
		if !ok {
			continue
		}
		delete(form, k)
		idx, field, ok := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || len(vs) == 0 {
			continue
		}
		e := byIndex[n]
		if e == nil {
			e = &entry{}
			byIndex[n] = e
		}
		switch field {
		case "ParameterKey":
			e.key = vs[0]
		case "ParameterValue":
			e.p.value, e.p.hasValue = vs[0], true
		case "UsePreviousValue":
			e.p.usePrevious = vs[0] == "true"
		}
	}
	out := map[string]cfnParam{}
	for _, e := range byIndex {
		if e.key != "" {
			out[e.key] = e.p
		}
	}
	return out
}

// cfnResolveParams checks the given parameters against the template's
// declarations and returns every parameter's value and which are NoEcho.
// previous holds the stack's values for UsePreviousValue (nil on create).
// A template Front cannot read as JSON is not checked: the given values are
// kept as they are.
func cfnResolveParams(tmpl string, given map[string]cfnParam, previous map[string]string) (map[string]string, map[string]bool, error) {
	values, noEcho := map[string]string{}, map[string]bool{}
	var decl cfnTemplateDecl
	if json.Unmarshal([]byte(tmpl), &decl) != nil {
		for k, p := range given {
			values[k] = p.value
			if p.usePrevious {
				values[k] = previous[k]
			}
		}
		return values, noEcho, nil
	}
	var unknown, missing []string
	for k := range given {
		if _, ok := decl.Parameters[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, nil, fmt.Errorf("Parameters: [%s] do not exist in the template", strings.Join(unknown, ", "))
	}
	for k, d := range decl.Parameters {
		noEcho[k] = d.NoEcho == true || d.NoEcho == "true"
		p, ok := given[k]
		prev, hadPrev := previous[k]
		switch {
		case ok && p.usePrevious && hadPrev:
			values[k] = prev
		case ok && p.hasValue && !p.usePrevious:
			values[k] = p.value
		case d.Default != nil:
			values[k] = fmt.Sprint(d.Default)
		default:
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, nil, fmt.Errorf("Parameters: [%s] must have values", strings.Join(missing, ", "))
	}
	return values, noEcho, nil
}

// cfnFunctions maps the logical id of each AWS::Lambda::Function of a JSON
// template that names its FunctionName to that name.
func cfnFunctions(tmpl string) map[string]string {
	out := map[string]string{}
	var decl cfnTemplateDecl
	if json.Unmarshal([]byte(tmpl), &decl) != nil {
		return out
	}
	for id, res := range decl.Resources {
		if name, ok := res.Properties["FunctionName"].(string); ok && res.Type == "AWS::Lambda::Function" {
			out[id] = name
		}
	}
	return out
}

// cfnCall sends form to kumo through next and returns its answer, bypassing
// Front's counting and faults.
func cfnCall(r *http.Request, form url.Values, next http.Handler) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, withBody(r, []byte(form.Encode())))
	return rec
}

// cfnWriteXML answers 200 with an XML document.
func cfnWriteXML(w http.ResponseWriter, r *http.Request, doc any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(doc); err != nil {
		writeAWSError(w, r, http.StatusInternalServerError, "InternalFailure", "encoding the answer")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("X-Amzn-RequestId", randomUUID())
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// cfnXMLNS is CloudFormation's XML namespace.
const cfnXMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

// cfnDescribeStacksResponse mirrors every field kumo's DescribeStacks
// answer carries.
type cfnDescribeStacksResponse struct {
	XMLName xml.Name `xml:"DescribeStacksResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Stacks []struct {
			StackID           string            `xml:"StackId"`
			StackName         string            `xml:"StackName"`
			StackStatus       string            `xml:"StackStatus"`
			StackStatusReason string            `xml:"StackStatusReason,omitempty"`
			CreationTime      string            `xml:"CreationTime"`
			LastUpdatedTime   string            `xml:"LastUpdatedTime,omitempty"`
			DeletionTime      string            `xml:"DeletionTime,omitempty"`
			Parameters        []cfnXMLParameter `xml:"Parameters>member"`
		} `xml:"Stacks>member"`
	} `xml:"DescribeStacksResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// cfnXMLParameter is one stack parameter on the wire.
type cfnXMLParameter struct {
	Key   string `xml:"ParameterKey"`
	Value string `xml:"ParameterValue"`
}

// cfnDescribeStackResourcesResponse mirrors every field kumo's
// DescribeStackResources answer carries.
type cfnDescribeStackResourcesResponse struct {
	XMLName xml.Name `xml:"DescribeStackResourcesResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Resources []struct {
			LogicalID  string `xml:"LogicalResourceId"`
			PhysicalID string `xml:"PhysicalResourceId"`
			Type       string `xml:"ResourceType"`
			Status     string `xml:"ResourceStatus"`
			Timestamp  string `xml:"Timestamp"`
			StackID    string `xml:"StackId"`
			StackName  string `xml:"StackName"`
		} `xml:"StackResources>member"`
	} `xml:"DescribeStackResourcesResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}
