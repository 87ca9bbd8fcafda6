package export

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
)

// OCSF mapping of a record to the "HTTP Activity" class (class_uid 4002,
// category 4 "Network Activity") of OCSF 1.1.0, checked against that
// version's JSON schema:
//
//	activity_id      HTTP method: 1 Connect, 2 Delete, 3 Get, 4 Head, 5 Options,
//	                 6 Post, 7 Put, 8 Trace, 99 Other (PATCH is 99 before 1.7)
//	type_uid         class_uid * 100 + activity_id
//	time             record time, Unix milliseconds
//	action_id        1 Allowed, 2 Denied, 0 Unknown (errors)
//	disposition_id   1 Allowed, 2 Blocked, 15 Detected, 99 Other ("Error")
//	severity_id      1 Informational (allowed), 2 Low (error), 3 Medium
//	                 (detected), 4 High (blocked)
//	src_endpoint     {ip, port, location.country, autonomous_system}
//	dst_endpoint     {hostname}: the requested host
//	http_request     {http_method, url {hostname, path, query_string,
//	                 url_string (absolute-form targets only)}, user_agent,
//	                 version, uid: request id}
//	http_response    {code}
//	duration         total in milliseconds
//	metadata         {product {name Portcullis, vendor_name Portcullis,
//	                 version}, version 1.1.0, uid: record id, log_name audit}
//	enrichments      one per matched rule: name "waf_rule", value the id,
//	                 type "rule", data {message, severity, tags, variable,
//	                 matched_data, data, paranoia_level, phase}
//	unmapped         Portcullis fields OCSF has no place for: stage,
//	                 reason, waf_mode, fail_open, anomaly scores, site,
//	                 route, upstream, peer, allow_listed, sampled
//
// The cloud profile's cloud object is left out: Portcullis runs anywhere.

// OCSFVersion is the schema version the events declare.
const OCSFVersion = "1.1.0"

// OCSF constants of the HTTP Activity class.
const (
	OCSFClassUID    = 4002
	OCSFCategoryUID = 4
)

var ocsfActivities = map[string]int{"CONNECT": 1, "DELETE": 2, "GET": 3, "HEAD": 4, "OPTIONS": 5, "POST": 6, "PUT": 7, "TRACE": 8}

// OCSFEvent is one HTTP Activity event.
type OCSFEvent struct {
	ActivityID    int              `json:"activity_id"`
	ActivityName  string           `json:"activity_name"`
	CategoryUID   int              `json:"category_uid"`
	CategoryName  string           `json:"category_name"`
	ClassUID      int              `json:"class_uid"`
	ClassName     string           `json:"class_name"`
	TypeUID       int              `json:"type_uid"`
	TypeName      string           `json:"type_name"`
	Time          int64            `json:"time"`
	SeverityID    int              `json:"severity_id"`
	Severity      string           `json:"severity"`
	ActionID      int              `json:"action_id"`
	Action        string           `json:"action"`
	DispositionID int              `json:"disposition_id"`
	Disposition   string           `json:"disposition"`
	Message       string           `json:"message,omitempty"`
	Duration      int64            `json:"duration"`
	SrcEndpoint   OCSFEndpoint     `json:"src_endpoint"`
	DstEndpoint   OCSFEndpoint     `json:"dst_endpoint"`
	HTTPRequest   OCSFHTTPRequest  `json:"http_request"`
	HTTPResponse  OCSFHTTPResponse `json:"http_response"`
	Metadata      OCSFMetadata     `json:"metadata"`
	Enrichments   []OCSFEnrichment `json:"enrichments,omitempty"`
	Unmapped      map[string]any   `json:"unmapped,omitempty"`
	Observables   []OCSFObservable `json:"observables,omitempty"`
}

// OCSFEndpoint is a network_endpoint object.
type OCSFEndpoint struct {
	IP               string          `json:"ip,omitempty"`
	Port             int             `json:"port,omitempty"`
	Hostname         string          `json:"hostname,omitempty"`
	Location         *OCSFLocation   `json:"location,omitempty"`
	AutonomousSystem *OCSFAutonomous `json:"autonomous_system,omitempty"`
}

// OCSFLocation is a location object.
type OCSFLocation struct {
	Country string `json:"country"`
}

// OCSFAutonomous is an autonomous_system object.
type OCSFAutonomous struct {
	Number int    `json:"number"`
	Name   string `json:"name,omitempty"`
}

// OCSFHTTPRequest is an http_request object.
type OCSFHTTPRequest struct {
	HTTPMethod string  `json:"http_method,omitempty"`
	URL        OCSFURL `json:"url"`
	UserAgent  string  `json:"user_agent,omitempty"`
	Version    string  `json:"version,omitempty"`
	UID        string  `json:"uid,omitempty"`
}

// OCSFURL is a url object.
type OCSFURL struct {
	Hostname    string `json:"hostname,omitempty"`
	Path        string `json:"path,omitempty"`
	QueryString string `json:"query_string,omitempty"`
	URLString   string `json:"url_string,omitempty"`
}

// OCSFHTTPResponse is an http_response object.
type OCSFHTTPResponse struct {
	Code int `json:"code"`
}

// OCSFMetadata is a metadata object.
type OCSFMetadata struct {
	Product OCSFProduct `json:"product"`
	Version string      `json:"version"`
	UID     string      `json:"uid,omitempty"`
	LogName string      `json:"log_name,omitempty"`
}

// OCSFProduct is a product object.
type OCSFProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

// OCSFEnrichment is an enrichment object.
type OCSFEnrichment struct {
	Name     string         `json:"name"`
	Value    string         `json:"value"`
	Type     string         `json:"type,omitempty"`
	Provider string         `json:"provider,omitempty"`
	Data     map[string]any `json:"data"`
}

// OCSFObservable is an observable object (type_id 2 IP Address, 1
// Hostname).
type OCSFObservable struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	TypeID int    `json:"type_id"`
	Value  string `json:"value"`
}

// OCSF maps a record to an HTTP Activity event; version is Portcullis's.
func OCSF(e *audit.Entry, version string) OCSFEvent {
	ev := OCSFEvent{
		CategoryUID:  OCSFCategoryUID,
		CategoryName: "Network Activity",
		ClassUID:     OCSFClassUID,
		ClassName:    "HTTP Activity",
		Time:         e.Time.UnixMilli(),
		Message:      e.Reason,
		Duration:     e.Durations.Total / 1000,
		SrcEndpoint:  OCSFEndpoint{IP: e.ClientIP, Port: e.ClientPort},
		DstEndpoint:  OCSFEndpoint{Hostname: e.Host},
		HTTPResponse: OCSFHTTPResponse{Code: e.Status},
		Metadata: OCSFMetadata{
			Product: OCSFProduct{Name: "Portcullis", VendorName: "Portcullis", Version: version},
			Version: OCSFVersion,
			UID:     e.ID,
			LogName: "audit",
		},
	}
	method := strings.ToUpper(e.Method)
	if id, ok := ocsfActivities[method]; ok {
		ev.ActivityID, ev.ActivityName = id, titleCase(method)
	} else {
		ev.ActivityID, ev.ActivityName = 99, titleCase(method)
		if method == "" {
			ev.ActivityID, ev.ActivityName = 0, "Unknown"
		}
	}
	ev.TypeUID = OCSFClassUID*100 + ev.ActivityID
	ev.TypeName = "HTTP Activity: " + ev.ActivityName
	switch e.Action {
	case audit.ActionBlocked:
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 2, "Denied", 2, "Blocked"
		ev.SeverityID, ev.Severity = 4, "High"
	case audit.ActionDetected:
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 1, "Allowed", 15, "Detected"
		ev.SeverityID, ev.Severity = 3, "Medium"
	case audit.ActionError:
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 0, "Unknown", 99, "Error"
		ev.SeverityID, ev.Severity = 2, "Low"
	default:
		ev.ActionID, ev.Action, ev.DispositionID, ev.Disposition = 1, "Allowed", 1, "Allowed"
		ev.SeverityID, ev.Severity = 1, "Informational"
	}
	if e.Country != "" {
		ev.SrcEndpoint.Location = &OCSFLocation{Country: strings.ToUpper(e.Country)}
	}
	if e.ASN != 0 {
		ev.SrcEndpoint.AutonomousSystem = &OCSFAutonomous{Number: int(e.ASN), Name: e.ASOrg}
	}
	ev.HTTPRequest = OCSFHTTPRequest{
		HTTPMethod: e.Method,
		URL:        ocsfURL(e),
		UserAgent:  userAgent(e),
		Version:    strings.TrimPrefix(e.Protocol, "HTTP/"),
		UID:        e.ID,
	}
	for _, r := range e.Rules {
		data := map[string]any{"phase": r.Phase}
		putString(data, "message", r.Message)
		putString(data, "severity", r.Severity)
		putString(data, "variable", r.MatchedVariable)
		putString(data, "matched_data", r.MatchedData)
		putString(data, "data", r.Data)
		if len(r.Tags) > 0 {
			data["tags"] = r.Tags
		}
		if r.ParanoiaLevel > 0 {
			data["paranoia_level"] = r.ParanoiaLevel
		}
		ev.Enrichments = append(ev.Enrichments, OCSFEnrichment{
			Name: "waf_rule", Value: strconv.Itoa(r.ID), Type: "rule", Provider: "Portcullis", Data: data,
		})
	}
	un := map[string]any{
		"inbound_anomaly_score":  e.InboundScore,
		"outbound_anomaly_score": e.OutboundScore,
	}
	putString(un, "stage", e.Stage)
	putString(un, "reason", e.Reason)
	putString(un, "waf_mode", e.WAFMode)
	putString(un, "site", e.Site)
	putString(un, "route", e.Route)
	putString(un, "upstream", e.Upstream)
	putString(un, "peer", e.Peer)
	putString(un, "allow_listed", e.AllowListed)
	if e.FailOpen {
		un["fail_open"] = true
	}
	if e.Sampled {
		un["sampled"] = true
	}
	ev.Unmapped = un
	if e.ClientIP != "" {
		ev.Observables = append(ev.Observables, OCSFObservable{Name: "src_endpoint.ip", Type: "IP Address", TypeID: 2, Value: e.ClientIP})
	}
	if e.Host != "" {
		ev.Observables = append(ev.Observables, OCSFObservable{Name: "dst_endpoint.hostname", Type: "Hostname", TypeID: 1, Value: e.Host})
	}
	return ev
}

func putString(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return s[:1] + strings.ToLower(s[1:])
}

// ocsfURL splits the recorded request target. url_string is set only for
// an absolute-form target: the record does not say whether the client
// used TLS, so the scheme of an origin-form target is unknown.
func ocsfURL(e *audit.Entry) OCSFURL {
	u := OCSFURL{Hostname: e.Host}
	target, _, _ := strings.Cut(e.URI, "#")
	path, q, _ := strings.Cut(target, "?")
	if parsed, err := url.Parse(path); err == nil && parsed.Scheme != "" && parsed.Host != "" {
		u.Hostname, u.URLString = parsed.Host, target
		path = parsed.EscapedPath()
		if path == "" {
			path = "/"
		}
	}
	u.Path, u.QueryString = path, q
	return u
}
