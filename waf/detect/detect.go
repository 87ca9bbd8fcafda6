// Package detect holds what every attack-class detector shares: the value
// it judges, where that value came from, and the finding it reports.
//
// Place in the request path: inside the waf stage, after the request's
// values have been extracted and decoded (waf/decode) and before the
// verdict combines the evidence. One sub-package per attack class
// (detect/sqli, detect/xss, detect/shell, …) answers one question: placed
// where an application would use it, does this value change the structure
// of the code it lands in? Each parses with a real grammar, in linear time
// and bounded memory, and reports the class, a confidence, a short reason
// and the evidence span, so that the audit record, explain, replay and
// exclusions can name the detector, class, variable and decoding chain.
package detect

// Class is an attack class. Its string is what audit records, exclusions
// and metrics use, so it never changes once released.
type Class string

// The attack classes Portcullis detects.
const (
	SQLi            Class = "sqli"            // SQL injection
	XSS             Class = "xss"             // HTML/JavaScript injection
	Shell           Class = "shell"           // OS command injection
	Traversal       Class = "traversal"       // path traversal and file access
	SSTI            Class = "ssti"            // server-side template injection
	SSRF            Class = "ssrf"            // URLs to internal addresses
	LDAP            Class = "ldap"            // LDAP filter injection
	NoSQL           Class = "nosql"           // NoSQL operator and $where injection
	XXE             Class = "xxe"             // XML external entities
	HeaderInjection Class = "crlf"            // CRLF, HTTP header and mail header injection
	JNDI            Class = "jndi"            // ${jndi:…}-style lookups
	Deserialization Class = "deserialization" // serialized-object markers
	SSI             Class = "ssi"             // server-side include directives
)

// Where is the part of the request a value was taken from. Detectors may
// use it to weigh evidence (a header value is not a SQL literal as often as
// a query argument), never to skip a class outright.
type Where uint8

// Placements of a value.
const (
	WhereUnknown  Where = iota
	WhereQuery          // a query-string argument value
	WhereArgName        // the name of an argument (query, form, JSON key path)
	WherePath           // a path segment
	WhereCookie         // a cookie value
	WhereHeader         // a request header value
	WhereForm           // a urlencoded or multipart form field value
	WhereJSON           // a JSON string or number value
	WhereXML            // an XML text or attribute value
	WhereBody           // a raw body (unknown or text content types)
	WhereFileName       // a multipart file name
)

var whereNames = [...]string{
	WhereUnknown:  "unknown",
	WhereQuery:    "query",
	WhereArgName:  "arg_name",
	WherePath:     "path",
	WhereCookie:   "cookie",
	WhereHeader:   "header",
	WhereForm:     "form",
	WhereJSON:     "json",
	WhereXML:      "xml",
	WhereBody:     "body",
	WhereFileName: "file_name",
}

func (w Where) String() string {
	if int(w) < len(whereNames) {
		return whereNames[w]
	}
	return "unknown"
}

// Input is one value to judge, already decoded.
type Input struct {
	// Value is the text to judge (one decoding of the raw value).
	Value string
	// Where is the part of the request it came from.
	Where Where
	// Name is the variable in the engine's naming, e.g. "ARGS:q",
	// "REQUEST_HEADERS:User-Agent", "REQUEST_COOKIES:session",
	// "JSON:user.name".
	Name string
}

// Finding is a detector's evidence that a value changes the structure of
// the code it would land in.
type Finding struct {
	Class Class
	// Detector names the detector within its class ("sqli",
	// "xss/html", "xss/js"), for exclusions and explain.
	Detector string
	// Confidence is 1..100: how sure the detector is that the structure
	// change is real and intended. The verdict compares it with the
	// route's threshold.
	Confidence int
	// Reason is short operator-facing text: "string literal closed, then
	// UNION SELECT". It never goes to the client.
	Reason string
	// Start and End are byte offsets of the evidence in Input.Value,
	// End exclusive.
	Start, End int
}

// Detector judges values for one attack class. Implementations are
// immutable after construction and safe for concurrent use; Detect runs
// in time linear in len(in.Value) with memory bounded independently of it
// (beyond the input itself).
type Detector interface {
	Class() Class
	// Detect reports the strongest finding for in, or ok == false.
	Detect(in Input) (f Finding, ok bool)
}

// Evidence returns the evidence span of f in value, cut to at most max
// bytes (attackers control it; records keep it bounded).
func Evidence(value string, f Finding, max int) string {
	start, end := f.Start, f.End
	if start < 0 || start > len(value) {
		start = 0
	}
	if end < start || end > len(value) {
		end = len(value)
	}
	if end-start > max {
		end = start + max
	}
	return value[start:end]
}
