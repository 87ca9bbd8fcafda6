package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"net/url"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Benign request generators. Every kind is traffic that real applications
// receive every day; the text in it is real text from Debian packages
// (textsrc.go). Code that is quoted inside prose (a forum post asking
// about a SQL query, documentation pasted into a wiki) is benign: it is
// discussed, not executed.

type benignGen struct {
	kind  string
	count int
	gen   func(r *rand.Rand, t *Texts) Item
}

// benignKinds and their share of the corpus (counts at scale 1).
var benignKinds = []benignGen{
	// page loads and simple API reads: most of real traffic
	{"navigation", 8000, genNavigation},
	{"asset", 7000, genAsset},
	{"api_get", 5000, genAPIGet},
	{"search", 6000, genSearch},
	{"login_form", 2000, genLogin},
	// user-written text in forms, JSON and uploads
	{"comment_form", 4000, genCommentForm},
	{"forum_code", 4000, genForumCode},
	{"profile_form", 2500, genProfileForm},
	{"json_api", 5000, genJSONAPI},
	{"graphql", 2000, genGraphQL},
	{"markdown", 2000, genMarkdown},
	{"rich_text", 2000, genRichText},
	{"short_text", 2000, genShortText},
	{"upload", 2000, genUpload},
	// content types and framings that stock rule sets refuse
	{"ndjson", 1000, genNDJSON},
	{"protobuf", 1000, genProtobuf},
	{"grpc_web", 1000, genGRPCWeb},
	{"beacon", 1500, genBeacon},
	{"csp_report", 800, genCSPReport},
	{"reports_api", 800, genReportsAPI},
	{"amz_json", 800, genAmzJSON},
	{"chunked", 800, genChunked},
	{"gzip_json", 500, genGzipJSON},
}

var proseLangs = []string{"en", "en", "en", "en", "de", "fr", "es", "ja", "ru", "pl", "it", "pt_BR"}

func (t *Texts) prose(r *rand.Rand) string {
	lang := pick(r, proseLangs)
	ps := t.Prose[lang]
	if len(ps) == 0 {
		ps = t.Prose["en"]
	}
	return pick(r, ps)
}

// clip cuts s after a sentence end near max bytes (or at a space).
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := s[:max]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	if i := strings.LastIndexAny(cut, ".!?。"); i > max/3 {
		return cut[:i+1]
	}
	if i := strings.LastIndex(cut, " "); i > max/3 {
		return cut[:i]
	}
	return cut
}

func (t *Texts) sentence(r *rand.Rand) string {
	p := t.prose(r)
	parts := strings.SplitAfter(p, ". ")
	return strings.TrimSpace(clip(pick(r, parts), 240))
}

func (t *Texts) code(r *rand.Rand, kind string) string {
	cs := t.Code[kind]
	if len(cs) == 0 {
		cs = t.Code["shell"]
	}
	return pick(r, cs)
}

var lastNames = []string{"O'Brien", "O'Connor", "D'Angelo", "N'Diaye", "D'Souza", "O'Neil", "Dell'Acqua", "L'Esperance", "Smith", "Müller", "García", "Nguyen", "Kowalski", "Иванов", "Tanaka", "Silva", "Rossi", "Dubois", "Van der Berg", "Mac Lochlainn", "Al-Sayed", "Ó Súilleabháin", "Schröder", "Lefèvre", "Orr", "Norris", "Oriol", "Morales", "Andersson", "Selby", "Union", "Select"}
var mailDomains = []string{"example.com", "oracle.example", "orange.example.fr", "corp.example.org", "mail.example.net", "gmx.example.de", "orlando-fl.example.gov", "university.example.edu", "fastmail.example", "posteo.example.de"}

func (t *Texts) person(r *rand.Rand) (first, last, email string) {
	first = "Alex"
	if len(t.Names) > 0 {
		first = pick(r, t.Names)
	}
	last = pick(r, lastNames)
	local := strings.ToLower(first)
	switch r.IntN(4) {
	case 0:
		local += "." + strings.ToLower(strings.NewReplacer("'", "", " ", "").Replace(last))
	case 1:
		local += fmt.Sprint(r.IntN(99))
	case 2:
		local = strings.ToLower(first[:1]) + strings.ToLower(strings.NewReplacer("'", "", " ", "").Replace(last))
	case 3:
		local += "+" + pick(r, []string{"orders", "news", "or", "shop", "select"})
	}
	if !isASCII(local) {
		local = "user" + fmt.Sprint(r.IntN(9999))
	}
	return first, last, local + "@" + pick(r, mailDomains)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func formItem(r *rand.Rand, kind, target string, kv ...string) Item {
	host := pick(r, hosts)
	h, _ := headersFor(r, host, pick(r, []reqKind{formNav, formNav, fetchAPI}), false)
	h = append(h, [2]string{"Content-Type", "application/x-www-form-urlencoded"})
	return Item{Set: setBenign, Kind: kind, Method: "POST", Target: target, Headers: h, Body: formEncode(kv...)}
}

func jsonItem(r *rand.Rand, kind, method, target, body string) Item {
	host := pick(r, hosts)
	h, _ := headersFor(r, host, fetchAPI, false)
	h = append(h, [2]string{"Content-Type", pick(r, []string{"application/json", "application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"})})
	return Item{Set: setBenign, Kind: kind, Method: method, Target: target, Headers: h, Body: body}
}

func getItem(r *rand.Rand, kind, target string, k reqKind) Item {
	host := pick(r, hosts)
	h, _ := headersFor(r, host, k, false)
	return Item{Set: setBenign, Kind: kind, Method: "GET", Target: target, Headers: h}
}

func (t *Texts) query(r *rand.Rand) string {
	switch r.IntN(5) {
	case 0:
		return strings.ToLower(clip(pick(r, t.Titles), 60))
	case 1:
		lang := pick(r, proseLangs)
		ws := t.Words[lang]
		if len(ws) == 0 {
			ws = t.Words["en"]
		}
		n := 1 + r.IntN(4)
		var q []string
		for i := 0; i < n; i++ {
			q = append(q, pick(r, ws))
		}
		return strings.Join(q, " ")
	case 2:
		return clip(t.sentence(r), 80)
	case 3:
		return pick(r, []string{"how to ", "what is ", "why does ", "best ", "", "\""}) + strings.ToLower(clip(pick(r, t.Titles), 50)) + pick(r, []string{"", " example", " not working", " vs alternatives", "\"", " 2024"})
	}
	return pick(r, shortTexts)
}

func genSearch(r *rand.Rand, t *Texts) Item {
	q := t.query(r)
	param := pick(r, []string{"q", "q", "query", "search", "s", "keywords", "term"})
	target := pick(r, []string{"/search", "/search", "/", "/products", "/forum/search", "/docs/search", "/api/search"}) + "?" + param + "=" + url.QueryEscape(q)
	if r.IntN(2) == 0 {
		target += "&" + pick(r, []string{"page=2", "sort=relevance", "lang=de", "category=books", "type=all&date=week", "from=0&size=20"})
	}
	if r.IntN(5) == 0 {
		target = strings.ReplaceAll(target, "+", "%20")
	}
	return getItem(r, "search", target, pick(r, []reqKind{navigate, fetchAPI}))
}

func genCommentForm(r *rand.Rand, t *Texts) Item {
	first, last, email := t.person(r)
	body := clip(t.prose(r), 200+r.IntN(1500))
	if r.IntN(3) == 0 {
		body += "\r\n\r\n" + clip(t.prose(r), 600)
	}
	return formItem(r, "comment_form", pick(r, []string{"/comments", "/blog/post/" + fmt.Sprint(r.IntN(3000)) + "/comment", "/contact", "/feedback", "/guestbook"}),
		"author", first+" "+last, "email", email, "url", pick(r, []string{"", "https://" + strings.ToLower(first) + ".example.net/"}), "comment", body, "submit", "Post Comment")
}

var forumIntros = []string{
	"Hi all, I'm trying to get this working and I'm stuck:", "Can someone explain why this doesn't do what I expect?", "Here is what I ran:",
	"Quick question about the following snippet from the docs:", "This is the example from the manual, it works for me:", "I think the documentation is wrong here.",
	"Hallo zusammen, ich habe folgendes Problem:", "Bonjour, j'ai une question sur cet exemple :", "Hola, ¿alguien sabe por qué esto falla?", "For anyone finding this later, the fix was:",
	"The relevant part of my script:", "Reproducer:", "Steps to reproduce:",
}

func genForumCode(r *rand.Rand, t *Texts) Item {
	kind := pick(r, []string{"sql", "sql", "shell", "shell", "js", "js", "html", "c"})
	code := clip(t.code(r, kind), 1500)
	intro := pick(r, forumIntros)
	text := intro + "\n\n" + clip(t.prose(r), 500)
	switch r.IntN(3) {
	case 0: // markdown-style fenced block, as most forums take it
		text += "\n\n```" + map[string]string{"sql": "sql", "shell": "bash", "js": "js", "html": "html", "c": "c"}[kind] + "\n" + code + "\n```\n\n" + clip(t.sentence(r), 200)
	case 1: // indented, as a mailing list archive quotes it
		text += "\n\n    " + strings.ReplaceAll(code, "\n", "\n    ") + "\n\n" + pick(r, []string{"Any idea?", "Thanks in advance!", "What am I missing?", "Danke!", "Merci !"})
	default: // inline in prose
		text = intro + " I tried `" + clip(strings.ReplaceAll(code, "\n", " "), 200) + "` but " + clip(t.sentence(r), 200)
	}
	title := clip(pick(r, t.Titles), 90)
	switch r.IntN(3) {
	case 0:
		return formItem(r, "forum_code", "/forum/t/"+fmt.Sprint(r.IntN(99999))+"/reply", "title", title, "body", text, "tags", kind, "csrf_token", b64url(randStr(r, 18)))
	case 1:
		return jsonItem(r, "forum_code", "POST", "/api/v1/topics/"+fmt.Sprint(r.IntN(99999))+"/posts", jsonMarshal(map[string]any{"raw": text, "topic_id": r.IntN(99999), "category": r.IntN(40), "archetype": "regular"}))
	}
	ct, body := multipartBody(r, []mpart{{name: "subject", value: []byte(title)}, {name: "message", value: []byte(text)}, {name: "attachment", filename: "", ctype: "application/octet-stream", value: nil}, {name: "post", value: []byte("Submit")}})
	it := formItem(r, "forum_code", "/posting.php?mode=reply&t="+fmt.Sprint(r.IntN(99999)))
	it.Headers[len(it.Headers)-1][1] = ct
	it.SetBody(body)
	return it
}

func genProfileForm(r *rand.Rand, t *Texts) Item {
	first, last, email := t.person(r)
	bio := clip(t.prose(r), 80+r.IntN(400))
	city := pick(r, []string{"Zürich", "São Paulo", "Kraków", "Orléans", "Saint-Étienne", "'s-Hertogenbosch", "Coeur d'Alene", "L'Aquila", "Select, Romania", "Union City", "Portland, OR", "Москва", "東京"})
	if r.IntN(2) == 0 {
		return formItem(r, "profile_form", pick(r, []string{"/account/profile", "/settings", "/register", "/signup"}),
			"first_name", first, "last_name", last, "email", email, "city", city, "bio", bio, "website", "https://www.example.org/~"+strings.ToLower(first), "newsletter", "on")
	}
	return jsonItem(r, "profile_form", pick(r, []string{"PUT", "PATCH", "POST"}), "/api/v1/me", jsonMarshal(map[string]any{"name": map[string]any{"given": first, "family": last}, "email": email, "address": map[string]any{"city": city, "country": pick(r, []string{"CH", "BR", "PL", "FR", "US", "IE"})}, "about": bio, "marketing_opt_in": r.IntN(2) == 0}))
}

func genJSONAPI(r *rand.Rand, t *Texts) Item {
	id := r.IntN(100000)
	switch r.IntN(7) {
	case 0:
		it := getItem(r, "json_api", fmt.Sprintf("/api/v1/%s/%d?include=%s&fields[%s]=title,body", pick(r, []string{"articles", "orders", "users", "tickets"}), id, pick(r, []string{"author", "comments", "items"}), pick(r, []string{"articles", "orders"})), fetchAPI)
		return it
	case 1:
		it := getItem(r, "json_api", fmt.Sprintf("/api/v2/tickets/%d", id), fetchAPI)
		it.Method = "DELETE"
		return it
	case 2:
		return jsonItem(r, "json_api", "PATCH", fmt.Sprintf("/api/v1/tickets/%d", id), jsonMarshal(map[string]any{"status": pick(r, []string{"open", "closed", "pending"}), "comment": map[string]any{"body": clip(t.prose(r), 600), "public": true}}))
	case 3:
		return jsonItem(r, "json_api", "POST", "/api/v1/orders", jsonMarshal(map[string]any{"items": []any{map[string]any{"sku": fmt.Sprintf("SKU-%05d", r.IntN(99999)), "qty": 1 + r.IntN(3), "note": clip(t.sentence(r), 120)}}, "shipping": map[string]any{"method": "standard", "instructions": clip(t.sentence(r), 150)}, "coupon": nil}))
	case 4:
		return jsonItem(r, "json_api", "PUT", fmt.Sprintf("/api/v1/pages/%d", id), jsonMarshal(map[string]any{"title": clip(pick(r, t.Titles), 100), "slug": strings.ToLower(randStr(r, 8)), "content": clip(t.prose(r), 2000), "tags": []any{pick(r, t.Words["en"]), pick(r, t.Words["en"])}, "published": r.IntN(2) == 0}))
	case 5:
		return jsonItem(r, "json_api", "POST", "/api/v1/events", jsonMarshal(map[string]any{"events": []any{map[string]any{"type": "page_view", "url": "https://shop.example/products/" + fmt.Sprint(id), "ts": 1700000000000 + r.IntN(1e9)}, map[string]any{"type": "search", "query": t.query(r)}}}))
	}
	return jsonItem(r, "json_api", "POST", "/api/translate", jsonMarshal(map[string]any{"text": clip(t.prose(r), 800), "source": "auto", "target": pick(r, []string{"en", "de", "fr", "ja"})}))
}

func genGraphQL(r *rand.Rand, t *Texts) Item {
	ops := []struct {
		q    string
		vars func() map[string]any
	}{
		{"query SearchProducts($q: String!, $first: Int) { search(query: $q, first: $first) { edges { node { id title price { amount currency } } } pageInfo { hasNextPage endCursor } } }", func() map[string]any { return map[string]any{"q": t.query(r), "first": 20} }},
		{"mutation AddComment($input: AddCommentInput!) { addComment(input: $input) { comment { id body createdAt author { login } } } }", func() map[string]any {
			return map[string]any{"input": map[string]any{"subjectId": "MDU6SXNzdWU" + randAlnum(r, 10), "body": clip(t.prose(r), 900)}}
		}},
		{"query Viewer { viewer { login name avatarUrl repositories(first: 10, orderBy: {field: UPDATED_AT, direction: DESC}) { nodes { name description } } } }", func() map[string]any { return nil }},
		{"mutation UpdateProfile($bio: String, $name: String) { updateProfile(bio: $bio, name: $name) { ok errors { field message } } }", func() map[string]any {
			f, l, _ := t.person(r)
			return map[string]any{"bio": clip(t.prose(r), 300), "name": f + " " + l}
		}},
		{"query Post($slug: String!) { post(slug: $slug) { title body(format: MARKDOWN) tags comments(last: 5) { body } } }", func() map[string]any { return map[string]any{"slug": strings.ToLower(randStr(r, 10))} }},
	}
	op := pick(r, ops)
	name := strings.Fields(strings.SplitN(op.q, "(", 2)[0])
	body := map[string]any{"query": op.q, "operationName": name[len(name)-1]}
	if v := op.vars(); v != nil {
		body["variables"] = v
	}
	if r.IntN(6) == 0 { // persisted query by GET
		v, _ := body["variables"].(map[string]any)
		target := "/graphql?operationName=" + url.QueryEscape(name[len(name)-1]) + "&variables=" + url.QueryEscape(jsonMarshal(v)) + "&extensions=" + url.QueryEscape(`{"persistedQuery":{"version":1,"sha256Hash":"`+randHex(r, 64)+`"}}`)
		return getItem(r, "graphql", target, fetchAPI)
	}
	return jsonItem(r, "graphql", "POST", "/graphql", jsonMarshal(body))
}

func genNDJSON(r *rand.Rand, t *Texts) Item {
	var b strings.Builder
	n := 2 + r.IntN(15)
	for i := 0; i < n; i++ {
		b.WriteString(jsonMarshal(map[string]any{"ts": fmt.Sprintf("2024-%02d-%02dT%02d:%02d:%02d.%03dZ", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000)), "level": pick(r, []string{"info", "warn", "debug", "error"}), "msg": clip(t.sentence(r), 160), "service": pick(r, []string{"checkout", "search", "auth", "mailer"}), "trace_id": randHex(r, 32)}))
		b.WriteByte('\n')
	}
	it := jsonItem(r, "ndjson", "POST", pick(r, []string{"/_bulk", "/api/logs", "/ingest", "/v1/logs"}), b.String())
	it.Headers[len(it.Headers)-1][1] = pick(r, []string{"application/x-ndjson", "application/x-json-stream", "application/jsonl", "application/x-ndjson; charset=utf-8"})
	return it
}

// protoMessage encodes a message with text fields, ids and a nested
// message, with the protobuf wire format.
func protoMessage(r *rand.Rand, t *Texts) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(r.IntN(1<<30)))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, clip(pick(r, t.Titles), 80))
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, clip(t.prose(r), 400+r.IntN(800)))
	var nested []byte
	nested = protowire.AppendTag(nested, 1, protowire.BytesType)
	_, _, email := t.person(r)
	nested = protowire.AppendString(nested, email)
	nested = protowire.AppendTag(nested, 2, protowire.Fixed64Type)
	nested = protowire.AppendFixed64(nested, r.Uint64())
	nested = protowire.AppendTag(nested, 3, protowire.Fixed32Type)
	nested = protowire.AppendFixed32(nested, r.Uint32())
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, nested)
	for i := 0; i < r.IntN(4); i++ {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, pick(r, t.Words["en"]))
	}
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	raw := make([]byte, 16+r.IntN(48))
	for i := range raw {
		raw[i] = byte(r.IntN(256))
	}
	return protowire.AppendBytes(b, raw)
}

func genProtobuf(r *rand.Rand, t *Texts) Item {
	it := jsonItem(r, "protobuf", "POST", pick(r, []string{"/api/v1/messages", "/collect", "/sync", "/telemetry/v1/batch"}), "")
	it.Headers[len(it.Headers)-1][1] = pick(r, []string{"application/x-protobuf", "application/protobuf", "application/x-protobuf; messageType=\"app.Event\"", "application/vnd.google.protobuf"})
	setHeader(&it, "Accept", "application/x-protobuf")
	it.SetBody(protoMessage(r, t))
	return it
}

func genGRPCWeb(r *rand.Rand, t *Texts) Item {
	msg := protoMessage(r, t)
	frame := append([]byte{0}, binary.BigEndian.AppendUint32(nil, uint32(len(msg)))...)
	frame = append(frame, msg...)
	it := jsonItem(r, "grpc_web", "POST", pick(r, []string{"/chat.v1.ChatService/SendMessage", "/notes.Notes/Update", "/search.v2.Search/Query"}), "")
	it.Headers = append(it.Headers, [2]string{"X-Grpc-Web", "1"}, [2]string{"X-User-Agent", "grpc-web-javascript/0.1"})
	if r.IntN(3) == 0 {
		it.Headers[len(it.Headers)-3][1] = "application/grpc-web-text"
		it.Body = base64.StdEncoding.EncodeToString(frame)
		return it
	}
	it.Headers[len(it.Headers)-3][1] = pick(r, []string{"application/grpc-web+proto", "application/grpc-web"})
	it.SetBody(frame)
	return it
}

func genMarkdown(r *rand.Rand, t *Texts) Item {
	md := clip(pick(r, t.Markdown), 500+r.IntN(3500))
	if r.IntN(2) == 0 {
		return jsonItem(r, "markdown", pick(r, []string{"POST", "PUT"}), pick(r, []string{"/api/v1/wiki/pages", "/api/v4/projects/12/issues", "/api/notes", "/api/v1/gists"}), jsonMarshal(map[string]any{"title": clip(pick(r, t.Titles), 80), "body": md, "format": "markdown"}))
	}
	return formItem(r, "markdown", pick(r, []string{"/wiki/edit", "/issues/new", "/preview"}), "title", clip(pick(r, t.Titles), 80), "content", md, "summary", clip(t.sentence(r), 80))
}

func genRichText(r *rand.Rand, t *Texts) Item {
	var b strings.Builder
	n := 1 + r.IntN(5)
	for i := 0; i < n; i++ {
		switch r.IntN(8) {
		case 0:
			b.WriteString("<h2>" + htmlText(clip(pick(r, t.Titles), 80)) + "</h2>")
		case 1:
			b.WriteString("<ul><li>" + htmlText(clip(t.sentence(r), 100)) + "</li><li><strong>" + htmlText(clip(t.sentence(r), 60)) + "</strong></li></ul>")
		case 2:
			b.WriteString(`<p><a href="https://www.example.org/docs/` + randStr(r, 6) + `" target="_blank" rel="noopener noreferrer">` + htmlText(clip(pick(r, t.Titles), 60)) + `</a> ` + htmlText(clip(t.sentence(r), 200)) + "</p>")
		case 3:
			b.WriteString(`<p><img src="/uploads/2024/` + fmt.Sprint(1+r.IntN(12)) + `/` + randStr(r, 8) + `.jpg" alt="` + htmlText(clip(t.sentence(r), 40)) + `" width="640" height="480"></p>`)
		case 4:
			b.WriteString("<blockquote><p>" + htmlText(clip(t.prose(r), 300)) + "</p></blockquote>")
		case 5:
			b.WriteString(`<pre><code class="language-` + pick(r, []string{"sql", "bash", "javascript", "html"}) + `">` + htmlText(clip(t.code(r, pick(r, []string{"sql", "shell", "js", "html"})), 600)) + "</code></pre>")
		case 6:
			b.WriteString(`<table><thead><tr><th>` + htmlText(pick(r, t.Words["en"])) + `</th><th>` + htmlText(pick(r, t.Words["en"])) + `</th></tr></thead><tbody><tr><td>` + htmlText(clip(t.sentence(r), 50)) + `</td><td>` + fmt.Sprint(r.IntN(1000)) + `</td></tr></tbody></table>`)
		default:
			b.WriteString("<p>" + htmlText(clip(t.prose(r), 700)) + " <em>" + htmlText(clip(t.sentence(r), 60)) + "</em></p>")
		}
	}
	html := b.String()
	if r.IntN(2) == 0 {
		return jsonItem(r, "rich_text", pick(r, []string{"POST", "PUT"}), "/wp-json/wp/v2/posts/"+fmt.Sprint(r.IntN(9999)), jsonMarshal(map[string]any{"title": clip(pick(r, t.Titles), 80), "content": html, "status": pick(r, []string{"draft", "publish"})}))
	}
	return formItem(r, "rich_text", pick(r, []string{"/admin/pages/edit", "/cms/articles/save", "/node/add/article"}), "title", clip(pick(r, t.Titles), 80), "body[value]", html, "body[format]", "basic_html", "op", "Save")
}

func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&quot;").Replace(s)
}

func genUpload(r *rand.Rand, t *Texts) Item {
	var f mpart
	switch r.IntN(6) {
	case 0:
		f = mpart{name: "file", filename: "notes-" + randStr(r, 4) + ".txt", ctype: "text/plain", value: []byte(clip(t.prose(r), 3000) + "\n\n" + clip(t.prose(r), 3000))}
	case 1:
		f = mpart{name: "file", filename: "README.md", ctype: "text/markdown", value: []byte(pick(r, t.Markdown))}
	case 2:
		f = mpart{name: "avatar", filename: "IMG_" + fmt.Sprint(1000+r.IntN(9000)) + ".png", ctype: "image/png", value: pngImage(r)}
	case 3:
		f = mpart{name: "photo", filename: "photo " + fmt.Sprint(r.IntN(99)) + ".jpg", ctype: "image/jpeg", value: jpegImage(r)}
	case 4:
		f = mpart{name: "document", filename: strings.ToLower(randStr(r, 6)) + ".pdf", ctype: "application/pdf", value: pdfDoc(clip(pick(r, t.Titles), 60), clip(t.prose(r), 1500)+" "+clip(t.prose(r), 1500))}
	default:
		var csv strings.Builder
		csv.WriteString("id,name,email,comment\n")
		for i := 0; i < 5+r.IntN(30); i++ {
			first, last, email := t.person(r)
			fmt.Fprintf(&csv, "%d,\"%s %s\",%s,\"%s\"\n", i+1, first, last, email, strings.ReplaceAll(clip(t.sentence(r), 80), "\"", "\"\""))
		}
		f = mpart{name: "import", filename: "contacts.csv", ctype: "text/csv", value: []byte(csv.String())}
	}
	ct, body := multipartBody(r, []mpart{{name: "title", value: []byte(clip(pick(r, t.Titles), 60))}, f, {name: "visibility", value: []byte("private")}})
	it := formItem(r, "upload", pick(r, []string{"/upload", "/api/v1/files", "/profile/avatar", "/attachments"}))
	it.Headers[len(it.Headers)-1][1] = ct
	it.SetBody(body)
	return it
}

func pngImage(r *rand.Rand) []byte {
	w, h := 16+r.IntN(48), 16+r.IntN(48)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c1 := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{c1.R ^ uint8(x*7), c1.G ^ uint8(y*5), c1.B ^ uint8(x*y), 255})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

func jpegImage(r *rand.Rand) []byte {
	w, h := 64+r.IntN(128), 64+r.IntN(128)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x + r.IntN(8)), uint8(y), uint8(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	return buf.Bytes()
}

func genBeacon(r *rand.Rand, t *Texts) Item {
	host := pick(r, hosts)
	h, _ := headersFor(r, host, beacon, true)
	ev := map[string]any{"v": 1, "t": pick(r, []string{"pageview", "click", "scroll", "timing", "error"}), "url": "https://" + host + "/" + strings.ToLower(randStr(r, 6)), "ref": referer(r, host, "cross-site"),
		"sid": randHex(r, 16), "ts": 1700000000000 + r.IntN(1e9), "vw": 360 + r.IntN(1600), "title": clip(pick(r, t.Titles), 70)}
	if ev["t"] == "error" {
		ev["msg"] = "TypeError: Cannot read properties of undefined (reading '" + pick(r, []string{"length", "map", "id"}) + "')"
		ev["stack"] = "at render (https://" + host + "/static/js/main." + randHex(r, 8) + ".js:2:" + fmt.Sprint(r.IntN(90000)) + ")"
	}
	body := jsonMarshal(ev)
	ct := "text/plain;charset=UTF-8" // sendBeacon with a string body
	if r.IntN(4) == 0 {
		ct, body = "application/x-www-form-urlencoded;charset=UTF-8", formEncode("e", body)
	}
	h = append(h, [2]string{"Content-Type", ct})
	return Item{Set: setBenign, Kind: "beacon", Method: "POST", Target: pick(r, []string{"/collect", "/beacon", "/analytics/track", "/rum", "/api/telemetry"}), Headers: h, Body: body}
}

func genCSPReport(r *rand.Rand, t *Texts) Item {
	host := pick(r, hosts)
	h, _ := headersFor(r, host, beacon, true)
	h = append(h, [2]string{"Content-Type", "application/csp-report"})
	rep := map[string]any{"csp-report": map[string]any{
		"document-uri": "https://" + host + "/" + strings.ToLower(randStr(r, 7)), "referrer": pick(r, []string{"", "https://www.google.com/"}),
		"violated-directive": pick(r, []string{"script-src-elem", "style-src-attr", "img-src", "connect-src", "script-src"}), "effective-directive": "script-src-elem",
		"original-policy": "default-src 'self'; script-src 'self' 'nonce-" + b64(randStr(r, 12)) + "' https://cdn.example.com; style-src 'self' 'unsafe-inline'; img-src * data:; report-uri /csp-report",
		"disposition":     "enforce", "blocked-uri": pick(r, []string{"inline", "eval", "https://www.googletagmanager.com/gtm.js", "data", "https://cdn.jsdelivr.net/npm/jquery@3.7.1/dist/jquery.min.js"}),
		"line-number": r.IntN(400), "column-number": r.IntN(120), "source-file": "https://" + host + "/static/app.js", "status-code": 200,
		"script-sample": pick(r, []string{"", "onclick=\"toggleMenu()\"", "window.dataLayer = window.dataLayer || [];", "document.getElementById('q').focus()"}),
	}}
	return Item{Set: setBenign, Kind: "csp_report", Method: "POST", Target: pick(r, []string{"/csp-report", "/csp", "/_/csp_violation"}), Headers: h, Body: jsonMarshal(rep)}
}

func genReportsAPI(r *rand.Rand, t *Texts) Item {
	host := pick(r, hosts)
	h, _ := headersFor(r, host, beacon, true)
	h = append(h, [2]string{"Content-Type", "application/reports+json"})
	var reps []any
	for i := 0; i < 1+r.IntN(3); i++ {
		switch r.IntN(3) {
		case 0:
			reps = append(reps, map[string]any{"age": r.IntN(60000), "type": "csp-violation", "url": "https://" + host + "/", "user_agent": userAgent(clients[0], r), "body": map[string]any{"blockedURL": "inline", "disposition": "enforce", "documentURL": "https://" + host + "/", "effectiveDirective": "script-src-elem", "lineNumber": r.IntN(300), "originalPolicy": "script-src 'self'; report-to csp-endpoint", "sample": "", "sourceFile": "https://" + host + "/", "statusCode": 200}})
		case 1:
			reps = append(reps, map[string]any{"age": r.IntN(60000), "type": "deprecation", "url": "https://" + host + "/account", "user_agent": userAgent(clients[0], r), "body": map[string]any{"id": "UnloadHandler", "message": "Unload event listeners are deprecated and will be removed.", "sourceFile": "https://" + host + "/static/vendor.js", "lineNumber": r.IntN(9999), "columnNumber": r.IntN(200)}})
		default:
			reps = append(reps, map[string]any{"age": r.IntN(60000), "type": "network-error", "url": "https://" + host + "/", "body": map[string]any{"elapsed_time": r.IntN(900), "method": "GET", "phase": "connection", "protocol": "h2", "referrer": "", "sampling_fraction": 1.0, "server_ip": "", "status_code": 0, "type": "tcp.timed_out"}})
		}
	}
	return Item{Set: setBenign, Kind: "reports_api", Method: "POST", Target: pick(r, []string{"/reports", "/report-to", "/_reporting"}), Headers: h, Body: jsonMarshal(reps)}
}

func genAmzJSON(r *rand.Rand, t *Texts) Item {
	h := [][2]string{{"Host", pick(r, []string{"dynamodb.example.internal", "api.example.com"})}, {"User-Agent", "aws-sdk-go-v2/1.2" + fmt.Sprint(r.IntN(9)) + ".0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/dynamodb#1.30.1"},
		{"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Date", fmt.Sprintf("2024%02d%02dT%02d%02d%02dZ", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))},
		{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIA" + strings.ToUpper(randAlnum(r, 16)) + "/20240101/eu-west-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + randHex(r, 64)},
		{"Accept-Encoding", "identity"}}
	var target, body string
	switch r.IntN(3) {
	case 0:
		target = "DynamoDB_20120810.PutItem"
		f, l, e := t.person(r)
		body = jsonMarshal(map[string]any{"TableName": "Comments", "Item": map[string]any{"pk": map[string]any{"S": "USER#" + randHex(r, 8)}, "name": map[string]any{"S": f + " " + l}, "email": map[string]any{"S": e}, "text": map[string]any{"S": clip(t.prose(r), 800)}}})
	case 1:
		target = "DynamoDB_20120810.Query"
		body = jsonMarshal(map[string]any{"TableName": "Orders", "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)", "FilterExpression": "#st <> :closed OR attribute_not_exists(archived)", "ExpressionAttributeNames": map[string]any{"#st": "status"}, "ExpressionAttributeValues": map[string]any{":pk": map[string]any{"S": "CUST#" + fmt.Sprint(r.IntN(99999))}, ":sk": map[string]any{"S": "ORDER#2024"}, ":closed": map[string]any{"S": "closed"}}})
	default:
		target = "Logs_20140328.PutLogEvents"
		body = jsonMarshal(map[string]any{"logGroupName": "/app/web", "logStreamName": "i-" + randHex(r, 17), "logEvents": []any{map[string]any{"timestamp": 1700000000000 + r.IntN(1e9), "message": clip(t.sentence(r), 200)}}})
	}
	h = append(h, [2]string{"X-Amz-Target", target})
	return Item{Set: setBenign, Kind: "amz_json", Method: "POST", Target: "/", Headers: h, Body: body}
}

func genChunked(r *rand.Rand, t *Texts) Item {
	var it Item
	if r.IntN(2) == 0 {
		it = genNDJSON(r, t)
	} else {
		it = jsonItem(r, "chunked", pick(r, []string{"POST", "PUT"}), "/api/v1/stream", jsonMarshal(map[string]any{"chunks": []any{clip(t.prose(r), 500), clip(t.prose(r), 500)}}))
	}
	it.Kind = "chunked"
	it.Chunked = true
	return it
}

var sensitivePaths = []string{
	"/man/5/passwd", "/man/5/shadow", "/docs/etc-passwd-format", "/wiki/Passwd_(file)", "/kb/what-is-etc-hosts", "/blog/2023/08/editing-etc-hosts-on-macos",
	"/help/password-reset", "/docs/web.config-transformations", "/guides/htaccess-redirects", "/man/1/cat", "/man/1/wget", "/man/8/useradd",
	"/tutorials/bash-scripting-basics", "/questions/how-to-select-union-in-sql", "/docs/admin/settings", "/static/js/config.8f3a2c.js", "/wp-content/uploads/2024/05/setup.exe.png",
	"/docs/en/sql-ref-syntax-qry-select.html", "/downloads/passwords-cheatsheet.pdf", "/careers/shell-engineer", "/products/bash-bag", "/recipes/cat-food",
}

func genNavigation(r *rand.Rand, t *Texts) Item {
	var target string
	switch r.IntN(5) {
	case 0:
		target = pick(r, sensitivePaths)
	case 1:
		target = "/" + strings.ToLower(strings.Join(strings.Fields(clip(pick(r, t.Titles), 50)), "-"))
		target = pathKeepSlash(target)
	case 2:
		target = fmt.Sprintf("/products/%d?utm_source=%s&utm_medium=%s&utm_campaign=%s", r.IntN(99999), pick(r, []string{"google", "newsletter", "facebook"}), pick(r, []string{"cpc", "email", "social"}), pick(r, []string{"spring_sale", "black-friday-2024", "brand"}))
		if r.IntN(2) == 0 {
			target += "&gclid=" + randAlnum(r, 40)
		}
	case 3:
		target = fmt.Sprintf("/forum/t/%s/%d?page=%d", strings.ToLower(randStr(r, 9)), r.IntN(999999), 1+r.IntN(9))
	default:
		target = pick(r, []string{"/", "/account", "/cart", "/checkout/shipping", "/login?next=%2Faccount%2Forders", "/docs/", "/about", "/fr/aide/livraison", "/de/hilfe/rücksendung"})
		target = strings.ReplaceAll(target, "ü", "%C3%BC")
	}
	return getItem(r, "navigation", target, navigate)
}

var shortTexts = []string{
	"zsh is the best!", "ls 300 lexus", "Find my order", "Sort by price", "Kill Bill dvd", "Sleep mask for travel", "Echo dot 4th gen", "Top 10 laptops 2024", "More info please",
	"Date night ideas", "union was a great select", "Select all that apply", "cat toys", "make up brushes", "install guide for printer", "watch repair near me", "head and shoulders shampoo",
	"tail light replacement", "who am i", "JavaScript: The Good Parts", "JavaScript: Understanding the Weird Parts", "Python: a beginner's guide", "Drop table (IKEA)", "ping pong table",
	"Where is my refund?", "test", "yes", "time zone converter", "screen protector iphone 15", "less is more", "rm wedding photos", "Let's meet at 5 or 6?", "I'd like 1 or 2 of these",
	"My kid's first grade art & craft", "5' 11\" tall", "Rock 'n' roll", "Tom & Jerry", "C# vs Java", "SELECT Comfort mattress", "Order by phone", "from 1 to 10", "1=1 is true, right?",
	"grep for your thoughts", "exec summary template", "eval form for employees", "alert: order shipped", "script writing course", "onload time of our page is too slow",
	"sudo make me a sandwich", "passwd reset not working", "etc.", "Admin'istration fee?", "Union Station, Chicago", "Orlando or Tampa?", "where to buy", "Or-Yehuda",
}

func genShortText(r *rand.Rand, t *Texts) Item {
	s := pick(r, shortTexts)
	if r.IntN(3) == 0 {
		s = pick(r, []string{"", "Re: ", "Fwd: "}) + clip(t.sentence(r), 60)
	}
	switch r.IntN(3) {
	case 0:
		return getItem(r, "short_text", "/search?q="+url.QueryEscape(s), navigate)
	case 1:
		return formItem(r, "short_text", pick(r, []string{"/reviews", "/chat/send", "/feedback"}), "message", s, "rating", fmt.Sprint(1+r.IntN(5)))
	}
	return jsonItem(r, "short_text", "POST", "/api/v1/chat/messages", jsonMarshal(map[string]any{"text": s, "channel": "general", "client_msg_id": randHex(r, 8) + "-" + randHex(r, 4)}))
}

// genBenign produces the generated benign corpus.
func genBenign(t *Texts, scale float64, seed uint64) []Item {
	var out []Item
	for _, k := range benignKinds {
		r := rand.New(rand.NewPCG(seed, hashString(k.kind)))
		n := int(float64(k.count) * scale)
		for i := 0; i < n; i++ {
			it := k.gen(r, t)
			it.Kind = k.kind
			it.Source = "debian-text"
			if k.kind == "navigation" || k.kind == "beacon" || k.kind == "csp_report" || k.kind == "reports_api" || k.kind == "amz_json" {
				it.Source = "gen"
			}
			out = append(out, it)
		}
	}
	return out
}

func hashString(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func genAsset(r *rand.Rand, t *Texts) Item {
	var target string
	k := subresource
	switch r.IntN(5) {
	case 0:
		target = fmt.Sprintf("/static/js/%s.%s.js", pick(r, []string{"main", "vendor", "runtime", "chunk-" + fmt.Sprint(r.IntN(900))}), randHex(r, 8))
	case 1:
		target = fmt.Sprintf("/assets/css/%s.%s.css", pick(r, []string{"app", "theme", "print"}), randHex(r, 10))
	case 2:
		target = fmt.Sprintf("/images/products/%d-%s.%s", r.IntN(99999), pick(r, []string{"large", "thumb", "1x", "2x"}), pick(r, []string{"webp", "jpg", "png", "avif"}))
	case 3:
		target = fmt.Sprintf("/fonts/%s-%s.woff2", pick(r, []string{"Inter", "Roboto", "NotoSans", "SourceCodePro"}), pick(r, []string{"Regular", "Bold", "Italic"}))
	default:
		target = pick(r, []string{"/favicon.ico", "/manifest.webmanifest", "/robots.txt", "/apple-touch-icon.png", "/sw.js"})
		if r.IntN(2) == 0 {
			target = fmt.Sprintf("/uploads/%d/%02d/%s.jpg?w=%d&q=80", 2019+r.IntN(6), 1+r.IntN(12), strings.ToLower(randStr(r, 10)), 320*(1+r.IntN(4)))
		}
	}
	it := getItem(r, "asset", target, k)
	switch {
	case strings.HasSuffix(target, ".js"):
		setHeader(&it, "Accept", "*/*")
		setHeader(&it, "Sec-Fetch-Dest", "script")
	case strings.HasSuffix(target, ".css"):
		setHeader(&it, "Accept", "text/css,*/*;q=0.1")
		setHeader(&it, "Sec-Fetch-Dest", "style")
	case strings.HasSuffix(target, ".woff2"):
		setHeader(&it, "Accept", "*/*")
		setHeader(&it, "Sec-Fetch-Dest", "font")
		setHeader(&it, "Sec-Fetch-Mode", "cors")
	}
	if r.IntN(4) == 0 {
		it.Headers = append(it.Headers, [2]string{"If-None-Match", `W/"` + randHex(r, 16) + `"`})
	}
	return it
}

func genAPIGet(r *rand.Rand, t *Texts) Item {
	var target string
	switch r.IntN(6) {
	case 0:
		target = fmt.Sprintf("/api/v1/products?category=%s&size=%d&color=%s&sort=%s&page[number]=%d&page[size]=24", pick(r, []string{"shoes", "jackets", "home-garden", "books"}), 36+r.IntN(12), pick(r, []string{"black", "navy", "off-white"}), pick(r, []string{"-price", "price", "-created_at", "relevance"}), 1+r.IntN(9))
	case 1:
		target = fmt.Sprintf("/api/v1/users/%d/orders?status=%s&since=%s", r.IntN(99999), pick(r, []string{"shipped", "pending", "all"}), url.QueryEscape(fmt.Sprintf("2024-%02d-01T00:00:00Z", 1+r.IntN(12))))
	case 2:
		target = fmt.Sprintf("/api/items?ids=%d,%d,%d&fields=id,name,price,stock", r.IntN(9999), r.IntN(9999), r.IntN(9999))
	case 3:
		target = fmt.Sprintf("/api/v2/search/suggest?prefix=%s&limit=8", url.QueryEscape(clip(t.query(r), 12)))
	case 4:
		target = fmt.Sprintf("/rest/v1/tickets?select=id,title,assignee(name)&order=updated_at.desc&state=eq.open&limit=%d", 10*(1+r.IntN(5)))
	default:
		target = fmt.Sprintf("/api/geo/reverse?lat=%.5f&lon=%.5f&lang=%s", -60+r.Float64()*120, -180+r.Float64()*360, pick(r, []string{"en", "de", "fr", "ja"}))
	}
	return getItem(r, "api_get", target, fetchAPI)
}

var passwords = []string{"Tr0ub4dor&3", "correct horse battery staple", "P@ssw0rd!'", "hunter2", "Sommer2024!", "\"quoted\" pass", "x<y>z&w", "mot de passe très long", "1234; DROP", "a'b\"c", "€uro-Pa$$", "OR1gin@l"}

func genLogin(r *rand.Rand, t *Texts) Item {
	first, last, email := t.person(r)
	user := email
	if r.IntN(3) == 0 {
		user = strings.ToLower(first) + "_" + strings.ToLower(strings.NewReplacer("'", "", " ", "").Replace(last))
		if !isASCII(user) {
			user = strings.ToLower(first)
		}
	}
	if r.IntN(3) == 0 {
		return jsonItem(r, "login_form", "POST", "/api/auth/login", jsonMarshal(map[string]any{"username": user, "password": pick(r, passwords), "remember": true}))
	}
	return formItem(r, "login_form", pick(r, []string{"/login", "/wp-login.php", "/account/signin", "/users/sign_in"}), "username", user, "password", pick(r, passwords), "remember", "on", "csrf_token", b64url(randStr(r, 24)))
}

func genGzipJSON(r *rand.Rand, t *Texts) Item {
	it := genJSONAPI(r, t)
	for it.Body == "" || it.Method == "DELETE" || it.Method == "GET" {
		it = genJSONAPI(r, t)
	}
	it.Headers = append(it.Headers, [2]string{"Content-Encoding", "gzip"})
	it.SetBody(gzipBytes([]byte(it.Body)))
	return it
}

// pdfDoc writes a one-page PDF 1.4 document with the text, as a word
// processor's "save as PDF" would for a short letter.
func pdfDoc(title, text string) []byte {
	var content strings.Builder
	content.WriteString("BT /F1 11 Tf 56 780 Td 14 TL\n")
	line := ""
	esc := strings.NewReplacer("\\", "\\\\", "(", "\\(", ")", "\\)")
	n := 0
	for _, w := range strings.Fields(title + " " + text) {
		if !isASCII(w) {
			continue // the standard font has no glyphs for it
		}
		if len(line)+len(w) > 90 {
			content.WriteString("(" + esc.Replace(line) + ") Tj T*\n")
			line, n = "", n+1
			if n > 50 {
				break
			}
		}
		line += w + " "
	}
	content.WriteString("(" + esc.Replace(line) + ") Tj ET")
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", content.Len(), content.String()),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		"<< /Title (" + esc.Replace(title) + ") /Producer (LibreOffice 7.4) >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
