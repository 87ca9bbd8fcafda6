package waf

import (
	"io"
	"mime"
	"mime/multipart"
)

// multipartFieldsOver reports whether a multipart body carries more than
// limit bytes that the engine's multipart processor would hold in
// variables: every part's header lines (MULTIPART_PART_HEADERS, which hold
// the part names too), and the whole value of every part that is not a file
// (ARGS_POST). Only bytes of the body count, so a body is never over a limit
// it is under. File
// parts go to disk and count for nothing. This is what ModSecurity's
// SecRequestBodyNoFilesLimit bounds for multipart bodies; Coraza has no such
// bound, so a 10 MB text field would become a 10 MB argument that every
// rule's transformations copy again.
//
// It reads the body with the same parser as the engine (mime/multipart),
// so both see the same parts; a part it cannot parse ends the count, and
// the engine then stops at the same place (and flags the error). Telling
// files from fields by Go's FileName can only count a file as a field, never
// the reverse, so the bound errs on the side of refusing.
func multipartFieldsOver(body io.Reader, contentType string, limit int64) bool {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return false
	}
	reader := multipart.NewReader(body, params["boundary"])
	var held int64
	for {
		part, err := reader.NextPart()
		if err != nil {
			return false
		}
		for name, values := range part.Header {
			for _, v := range values {
				held += int64(len(name) + len(v) + 2)
			}
		}
		if part.FileName() == "" {
			// Read no further than the limit: past it the answer is known.
			n, _ := io.Copy(io.Discard, io.LimitReader(part, limit-held+1))
			held += n
		}
		if held > limit {
			return true
		}
	}
}
