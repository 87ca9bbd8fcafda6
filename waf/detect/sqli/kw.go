package sqli

type kw uint8

const (
	kwNone kw = iota
	kwSelect
	kwUnion
	kwAll
	kwDistinct
	kwFrom
	kwWhere
	kwAnd
	kwOr
	kwXor
	kwNot
	kwNull
	kwTrue
	kwFalse
	kwIs
	kwIn
	kwLike
	kwRlike
	kwRegexp
	kwSimilar
	kwBetween
	kwCase
	kwWhen
	kwThen
	kwElse
	kwEnd
	kwExists
	kwAs
	kwOrder
	kwGroup
	kwBy
	kwHaving
	kwLimit
	kwOffset
	kwInto
	kwOutfile
	kwDumpfile
	kwProcedure
	kwJoin
	kwInner
	kwOuter
	kwLeft
	kwRight
	kwCross
	kwNatural
	kwOn
	kwUsing
	kwAsc
	kwDesc
	kwDiv
	kwMod
	kwCollate
	kwBinary
	kwInterval
	kwSounds
	kwEscape
	kwTop
	kwFor
	kwWaitfor
	kwDelay
	kwTime
	kwEscapeWord
	kwUnknown
	// statement starters after ';'
	kwInsert
	kwUpdate
	kwDelete
	kwDrop
	kwCreate
	kwAlter
	kwTruncate
	kwExec
	kwDeclare
	kwSet
	kwShutdown
	kwGrant
	kwRevoke
	kwLoad
	kwCall
	kwCopy
	kwHandler
	kwRename
	kwReplace
	kwShow
	kwDo
	kwBegin
	kwCommit
	kwAnalyse
	kwValues
	kwOffsetRows
)

var keywords = map[string]kw{
	"select": kwSelect, "union": kwUnion, "all": kwAll, "distinct": kwDistinct, "distinctrow": kwDistinct,
	"from": kwFrom, "where": kwWhere, "and": kwAnd, "or": kwOr, "xor": kwXor, "not": kwNot,
	"null": kwNull, "true": kwTrue, "false": kwFalse, "unknown": kwUnknown, "is": kwIs, "in": kwIn,
	"like": kwLike, "ilike": kwLike, "rlike": kwRlike, "regexp": kwRegexp, "glob": kwLike, "similar": kwSimilar,
	"between": kwBetween, "case": kwCase, "when": kwWhen, "then": kwThen, "else": kwElse, "end": kwEnd,
	"exists": kwExists, "as": kwAs, "order": kwOrder, "group": kwGroup, "by": kwBy, "having": kwHaving,
	"limit": kwLimit, "offset": kwOffset, "into": kwInto, "outfile": kwOutfile, "dumpfile": kwDumpfile,
	"procedure": kwProcedure, "join": kwJoin, "inner": kwInner, "outer": kwOuter, "left": kwLeft,
	"right": kwRight, "cross": kwCross, "natural": kwNatural, "straight_join": kwJoin, "on": kwOn, "using": kwUsing,
	"asc": kwAsc, "desc": kwDesc, "div": kwDiv, "mod": kwMod, "collate": kwCollate, "binary": kwBinary,
	"interval": kwInterval, "sounds": kwSounds, "escape": kwEscape, "top": kwTop, "for": kwFor,
	"waitfor": kwWaitfor, "delay": kwDelay, "time": kwTime,
	"insert": kwInsert, "update": kwUpdate, "delete": kwDelete, "drop": kwDrop, "create": kwCreate,
	"alter": kwAlter, "truncate": kwTruncate, "exec": kwExec, "execute": kwExec, "declare": kwDeclare,
	"set": kwSet, "shutdown": kwShutdown, "grant": kwGrant, "revoke": kwRevoke, "load": kwLoad,
	"call": kwCall, "copy": kwCopy, "handler": kwHandler, "rename": kwRename, "replace": kwReplace,
	"show": kwShow, "do": kwDo, "begin": kwBegin, "commit": kwCommit, "analyse": kwAnalyse, "analyze": kwAnalyse,
	"values": kwValues,
}

// lookupKW classifies the word a+b (b is the part after an inline
// comment, usually empty), case-insensitively, without allocating.
func lookupKW(a, b string) kw {
	var buf [16]byte
	n := len(a) + len(b)
	if n > len(buf) || n == 0 {
		return kwNone
	}
	for i := 0; i < len(a); i++ {
		buf[i] = lower(a[i])
	}
	for i := 0; i < len(b); i++ {
		buf[len(a)+i] = lower(b[i])
	}
	return keywords[string(buf[:n])]
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold reports whether s equals the lower-case ASCII word w.
func equalFold(s, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != w[i] {
			return false
		}
	}
	return true
}

type op uint8

const (
	opNone op = iota
	opEq
	opNe
	opLt
	opGt
	opLe
	opGe
	opNullEq
	opPlus
	opMinus
	opMul
	opDiv
	opMod
	opConcat
	opAnd
	opBitOr
	opBitAnd
	opBitXor
	opBitNot
	opNot
	opShl
	opShr
	opCast
	opAssign
	opArrow
	opRegex
	opContains // PostgreSQL JSON/array/text-search containment: <@ @> ?| ?& @@
)

var ops = [...]struct {
	s string
	o op
}{
	{"<=>", opNullEq}, {"->>", opArrow}, {"!~*", opRegex}, {"#>>", opArrow},
	{"<@", opContains}, {"@>", opContains}, {"?|", opContains}, {"?&", opContains}, {"#>", opArrow}, {"@@", opContains},
	{"<>", opNe}, {"!=", opNe}, {"<=", opLe}, {">=", opGe}, {"||", opConcat}, {"&&", opAnd},
	{"<<", opShl}, {">>", opShr}, {"::", opCast}, {":=", opAssign}, {"->", opArrow}, {"~*", opRegex}, {"!~", opRegex},
	{"=", opEq}, {"<", opLt}, {">", opGt}, {"+", opPlus}, {"-", opMinus}, {"*", opMul}, {"/", opDiv},
	{"%", opMod}, {"|", opBitOr}, {"&", opBitAnd}, {"^", opBitXor}, {"~", opBitNot}, {"!", opNot},
}

func matchOp(s string) (op, int) {
	for _, o := range ops {
		if len(s) >= len(o.s) && s[:len(o.s)] == o.s {
			return o.o, len(o.s)
		}
	}
	return opNone, 0
}
