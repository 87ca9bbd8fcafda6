package detect

// HeadTail judges a value longer than max in two windows: its first max
// bytes and, when they show nothing, its last max bytes, so that padding
// an attack past a detector's length bound does not hide it. Spans found
// in the tail are moved to the value's offsets. Work stays bounded by
// 2*max whatever the value's length.
func HeadTail(value string, max int, judge func(string) (Finding, bool)) (Finding, bool) {
	if len(value) <= max || max <= 0 {
		return judge(value)
	}
	if f, ok := judge(value[:max]); ok {
		return f, true
	}
	off := len(value) - max
	f, ok := judge(value[off:])
	if ok {
		f.Start += off
		f.End += off
	}
	return f, ok
}
