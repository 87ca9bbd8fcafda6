package deserialization

// Java names outside a serialized stream (issue 15): what a polymorphic
// type handler, a bean binder or an expression evaluator resolves when it
// reads a name from the request.
//
// A value is cut into dotted names: maximal runs of Java identifier parts
// joined by '.'. Each segment is classified by what it names in the JDK
// and in the libraries gadget chains are built from:
//
//   - a process class: Runtime, ProcessBuilder (and the JDK's process
//     implementations). Naming one is the point of a command-execution
//     chain.
//   - a gadget class of commons-collections and its kin (InvokerTransformer,
//     InstantiateFactory, …): classes whose only use in a request is to be
//     instantiated by a deserializer.
//   - the java/javax root.
//
// A name that joins a process class with the java root or with a gadget
// class ("java.lang.Runtime", "java.ProcessBuilder",
// "ProcessBuilder.x.InvokerTransformer") is a class reference, not text:
// words do not join that way. The process class must end the name or be
// followed by a gadget class, so a property key such as
// "java.runtime.version" is not one. A process class followed by a call
// ("Runtime.getRuntime(", "new ProcessBuilder(", OGNL's
// "@java.lang.Runtime@getRuntime(") is Java code that runs a command.
// Bean property paths that walk from "class" to its class loader
// ("class.module.classLoader…", Spring4Shell) reach the server's class
// loading through data binding.
//
// Documentation and bug reports name these classes among sentences (a
// stack trace through Runtime.exec); such values are weighed low.

// segKind is what one segment of a dotted name names.
type segKind uint8

const (
	segOther segKind = iota
	segProcess
	segGadget
	segJavaRoot
	segClass       // "class", the first step of a class-loader path
	segClassLoader // "classLoader"
	segModule      // "module"
)

// segNames are compared case-insensitively: request parsers and the
// CRS probes write them in any case, and class loading on
// case-insensitive file systems accepts them.
var segNames = map[string]segKind{
	"runtime": segProcess, "processbuilder": segProcess, "processimpl": segProcess, "unixprocess": segProcess,
	// commons-collections (3 and 4) functors and the gadget classes
	// ysoserial's chains instantiate.
	"invokertransformer": segGadget, "instantiatetransformer": segGadget, "instantiatefactory": segGadget,
	"clonetransformer": segGadget, "prototypeclonefactory": segGadget, "prototypeserializationfactory": segGadget,
	"forclosure": segGadget, "whileclosure": segGadget, "chainedtransformer": segGadget,
	"constanttransformer": segGadget, "transformingcomparator": segGadget, "templatesimpl": segGadget,
	"annotationinvocationhandler": segGadget, "badattributevalueexpexception": segGadget,
	"java": segJavaRoot, "javax": segJavaRoot,
	"class": segClass, "classloader": segClassLoader, "module": segModule,
}

const maxSegment = 40 // longer than every name in segNames

// classify returns the kind of segment seg.
func classify(seg string) segKind {
	if len(seg) < 4 || len(seg) > maxSegment {
		return segOther
	}
	var buf [maxSegment]byte
	for k := 0; k < len(seg); k++ {
		c := seg[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[k] = c
	}
	return segNames[string(buf[:len(seg)])]
}

func isIdent(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '$' }

// javaNames finds the dotted names of v and judges each.
func (s *scan) javaNames() {
	v := s.v
	prose := -1 // computed once, when a name needs it
	for i := 0; i < len(v); {
		s.steps++
		if !isIdent(v[i]) || (i > 0 && (isIdent(v[i-1]) || v[i-1] == '.')) {
			i++
			continue
		}
		// A name starts at i: identifier parts joined by single dots.
		j := i
		for j < len(v) && (isIdent(v[j]) || v[j] == '.' && j+1 < len(v) && isIdent(v[j+1]) && j > i) {
			j++
		}
		s.steps += j - i
		if conf, reason := s.judgeName(i, j); conf > 0 {
			if prose < 0 {
				prose = proseBefore(v)
			}
			if prose >= 3 || len(v) > 1024 {
				conf = 35
			}
			s.report(conf, reason, i, j)
		}
		i = j + 1
	}
}

// judgeName judges the name v[a:b] and what follows it.
func (s *scan) judgeName(a, b int) (int, string) {
	v := s.v
	var (
		segs                       int
		first, last                segKind
		process, gadget            bool
		processGadget              bool // a gadget segment follows a process segment
		lastCap                    bool // the last segment starts upper case (a class, not a variable)
		callOnProcess              bool // the last segment is a process method right after a Java process class
		loaderPath, afterClass     bool
		afterClassModule, prevProc bool
		prevCap                    bool
	)
	for k := a; k < b; {
		e := k
		for e < b && v[e] != '.' {
			e++
		}
		seg := v[k:e]
		kind := classify(seg)
		segs++
		if segs == 1 {
			first = kind
		}
		last = kind
		capital := seg[0] >= 'A' && seg[0] <= 'Z'
		switch kind {
		case segProcess:
			process = true
		case segGadget:
			gadget = true
			if process {
				processGadget = true
			}
		case segClassLoader:
			if afterClass || afterClassModule {
				loaderPath = true
			}
		}
		if e == b {
			callOnProcess = prevProc && prevCap && (seg == "getRuntime" || seg == "exec" || seg == "start")
			lastCap = capital
		}
		afterClassModule = afterClass && kind == segModule
		afterClass = kind == segClass
		prevProc, prevCap = kind == segProcess, capital
		k = e + 1
	}
	processLast := last == segProcess
	next := byte(0)
	for k := b; k < len(v) && k < b+8; k++ {
		if v[k] != ' ' && v[k] != '\t' {
			next = v[k]
			break
		}
	}
	switch {
	case loaderPath:
		return 90, "bean property path reaches the class loader (class.classLoader binding)"
	case processLast && lastCap && next == '(' && newBefore(v, a):
		return 88, "Java code constructs a process class"
	case processLast && lastCap && next == '@' && a > 0 && v[a-1] == '@':
		return 88, "OGNL static call on a process class"
	case callOnProcess && next == '(':
		return 88, "Java code calls a method of a process class"
	case segs < 2:
		return 0, ""
	case process && (processLast || processGadget) && (first == segJavaRoot || gadget):
		return 80, "Java qualified name joins a process class with the java namespace or a gadget class"
	case last == segGadget && segs >= 3:
		return 75, "Java qualified name of a deserialization gadget class"
	}
	return 0, ""
}

// newBefore reports whether the name at v[a] follows the keyword "new".
func newBefore(v string, a int) bool {
	k := a
	for k > 0 && (v[k-1] == ' ' || v[k-1] == '\t') {
		k--
	}
	return k < a && k >= 3 && v[k-3:k] == "new" && (k == 3 || !isIdent(v[k-4]))
}
