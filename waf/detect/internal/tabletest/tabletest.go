// Package tabletest holds the test harness shared by the attack-class
// detectors under waf/detect: table runs of (value, placement, want),
// the invariants every finding must keep (checked by each detector's fuzz
// test) and the benchmark helper that reports a detector's cost against a
// single pass over the same bytes, measured in the same run.
//
// Confidence convention used by the detectors and asserted here:
//
//	>= 70  the value changes the structure of the code it lands in (Attack)
//	40-69  a weak signal: suspicious but plausibly benign (prose, docs)
//	< 40   noise; a benign value may carry it
//
// The verdict, not the detector, chooses the blocking threshold; these bands
// are what the tables hold the detectors to.
package tabletest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Want is what a table row expects of a detector.
type Want uint8

const (
	// Attack: a finding with Confidence >= AttackConfidence.
	Attack Want = iota + 1
	// Benign: no finding, or one below BenignBelow.
	Benign
	// Weak: a finding below AttackConfidence (prose that mentions an
	// attack, a construct that is suspicious on its own).
	Weak
	// None: no finding at all.
	None
)

// The confidence bands of the convention above.
const (
	AttackConfidence = 70
	BenignBelow      = 40
)

func (w Want) String() string {
	switch w {
	case Attack:
		return "attack"
	case Benign:
		return "benign"
	case Weak:
		return "weak"
	case None:
		return "none"
	}
	return "?"
}

// Case is one table row.
type Case struct {
	Value string
	Where detect.Where
	Name  string // variable name; empty means a name typical for Where
	Want  Want
}

// Input returns the detector input of c.
func (c Case) Input() detect.Input {
	name := c.Name
	if name == "" {
		switch c.Where {
		case detect.WhereQuery, detect.WhereForm:
			name = "ARGS:v"
		case detect.WhereArgName:
			name = "ARGS_NAMES:" + c.Value
		case detect.WhereHeader:
			name = "REQUEST_HEADERS:X-Test"
		case detect.WhereCookie:
			name = "REQUEST_COOKIES:c"
		case detect.WhereJSON:
			name = "JSON:v"
		case detect.WherePath:
			name = "REQUEST_FILENAME"
		case detect.WhereBody:
			name = "REQUEST_BODY"
		case detect.WhereXML:
			name = "XML:/*"
		case detect.WhereFileName:
			name = "FILES:f"
		}
	}
	return detect.Input{Value: c.Value, Where: c.Where, Name: name}
}

// Check reports whether f, ok satisfies want, and why not.
func Check(want Want, f detect.Finding, ok bool) (bool, string) {
	switch want {
	case Attack:
		if !ok {
			return false, "no finding"
		}
		if f.Confidence < AttackConfidence {
			return false, fmt.Sprintf("confidence %d < %d (%s)", f.Confidence, AttackConfidence, f.Reason)
		}
	case Benign:
		if ok && f.Confidence >= BenignBelow {
			return false, fmt.Sprintf("confidence %d >= %d (%s)", f.Confidence, BenignBelow, f.Reason)
		}
	case Weak:
		if !ok {
			return false, "no finding"
		}
		if f.Confidence >= AttackConfidence {
			return false, fmt.Sprintf("confidence %d >= %d (%s)", f.Confidence, AttackConfidence, f.Reason)
		}
	case None:
		if ok {
			return false, fmt.Sprintf("finding with confidence %d (%s)", f.Confidence, f.Reason)
		}
	}
	return true, ""
}

// Run runs every case through d as a subtest, checks Want and the finding
// invariants, and logs the detection and false-positive counts of the table.
func Run(t *testing.T, d detect.Detector, cases []Case) {
	t.Helper()
	var attacks, caught, benign, flagged int
	for i, c := range cases {
		in := c.Input()
		f, ok := d.Detect(in)
		if err := Invariants(d, in, f, ok); err != nil {
			t.Errorf("case %d %q (%s): %v", i, short(c.Value), c.Where, err)
		}
		pass, why := Check(c.Want, f, ok)
		if !pass {
			t.Errorf("case %d %q (%s): want %s: %s", i, short(c.Value), c.Where, c.Want, why)
		}
		switch c.Want {
		case Attack:
			attacks++
			if ok && f.Confidence >= AttackConfidence {
				caught++
			}
		case Benign, None:
			benign++
			if ok && f.Confidence >= AttackConfidence {
				flagged++
			}
		}
	}
	t.Logf("%s table: %d/%d attacks at confidence >= %d, %d/%d near-misses at confidence >= %d",
		d.Class(), caught, attacks, AttackConfidence, flagged, benign, AttackConfidence)
}

// Invariants checks what every finding must satisfy: a valid evidence span
// within the value, a confidence in 1..100, the detector's class, a
// detector name and a reason.
func Invariants(d detect.Detector, in detect.Input, f detect.Finding, ok bool) error {
	if !ok {
		if f != (detect.Finding{}) {
			return fmt.Errorf("ok == false with a non-zero finding %+v", f)
		}
		return nil
	}
	var problems []string
	if f.Start < 0 || f.End < f.Start || f.End > len(in.Value) {
		problems = append(problems, fmt.Sprintf("span [%d,%d) outside value of %d bytes", f.Start, f.End, len(in.Value)))
	}
	if f.Confidence < 1 || f.Confidence > 100 {
		problems = append(problems, fmt.Sprintf("confidence %d outside 1..100", f.Confidence))
	}
	if f.Class != d.Class() {
		problems = append(problems, fmt.Sprintf("class %q, detector class %q", f.Class, d.Class()))
	}
	if f.Detector == "" || f.Reason == "" {
		problems = append(problems, "empty detector name or reason")
	}
	if len(problems) > 0 {
		return fmt.Errorf("finding %+v: %s", f, strings.Join(problems, "; "))
	}
	return nil
}

// Seeds adds the table values to a fuzz corpus.
func Seeds(f *testing.F, cases []Case) {
	for _, c := range cases {
		f.Add(c.Value, uint8(c.Where))
	}
}

// StepBound is the work a detector may do on a value of n bytes: perByte
// steps per byte plus a constant. Fuzz tests count steps rather than time.
func StepBound(n, perByte, constant int) int { return perByte*n + constant }

func short(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// Bench runs d over inputs b.N times, then times one pass over the same
// bytes (a table lookup per byte, the least any detector must do) for the
// same number of rounds, and reports the ratio as "x_pass". Allocations
// are reported for the detector loop only.
func Bench(b *testing.B, d detect.Detector, inputs []detect.Input) {
	b.Helper()
	var size int64
	for _, in := range inputs {
		size += int64(len(in.Value))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, in := range inputs {
			d.Detect(in)
		}
	}
	b.StopTimer()
	detectNs := float64(b.Elapsed().Nanoseconds())
	start := time.Now()
	var sink int
	for i := 0; i < b.N; i++ {
		for _, in := range inputs {
			sink += onePass(in.Value)
		}
	}
	passNs := float64(time.Since(start).Nanoseconds())
	if sink == -1 {
		b.Log(sink)
	}
	if passNs > 0 {
		b.ReportMetric(detectNs/passNs, "x_pass")
	}
}

var passTable = func() (t [256]uint8) {
	for _, c := range []byte("<>'\"%&;$`{}()\\/.:") {
		t[c] = 1
	}
	return t
}()

func onePass(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n += int(passTable[s[i]])
	}
	return n
}
