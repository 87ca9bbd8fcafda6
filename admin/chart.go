package admin

import (
	"fmt"
	"math"
	"time"

	"github.com/portcullis-waf/portcullis/audit/store"
)

// The overview chart is inline SVG computed here: no chart library, no
// script, nothing the CSP has to allow. Coordinates are in the SVG's own
// viewBox units; the stylesheet scales it to the page width.
const (
	chartW, chartH              = 960, 240
	plotLeft, plotRight         = 56, 12
	plotTop, plotBottom         = 12, 28
	plotW                       = chartW - plotLeft - plotRight
	plotH                       = chartH - plotTop - plotBottom
	targetBuckets               = 60
	chartBarFill        float64 = 0.8 // share of a slot a bar covers
)

// bucketSizes all divide a day, so buckets line up with clock hours and
// with the store's epoch-aligned buckets.
var bucketSizes = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour,
	12 * time.Hour, 24 * time.Hour,
}

// bucketFor returns the smallest bucket size that gives at most about
// targetBuckets points over span.
func bucketFor(span time.Duration) time.Duration {
	for _, b := range bucketSizes {
		if span/b <= targetBuckets {
			return b
		}
	}
	return bucketSizes[len(bucketSizes)-1]
}

type chartView struct {
	W, H int
	Plot rect
	// CenterX, CenterY place the "no data" note.
	CenterX, CenterY float64
	Bars             []chartBar
	YTicks           []chartTick
	XTicks           []chartTick
	Empty            bool
	Label            string // accessible description
}

type rect struct{ X, Y, W, H float64 }

type chartBar struct {
	Title string
	Segs  []chartSeg
}

type chartSeg struct {
	rect
	Class string
}

type chartTick struct {
	X, Y   float64
	X1, X2 float64 // the grid line, for y ticks
	Label  string
}

// buildChart lays out series over [since, until) in buckets of width
// bucket: one stacked bar per bucket (blocked, detected, errors).
func buildChart(series []store.Bucket, since, until time.Time, bucket time.Duration) chartView {
	c := chartView{W: chartW, H: chartH, Plot: rect{plotLeft, plotTop, plotW, plotH},
		CenterX: plotLeft + plotW/2, CenterY: plotTop + plotH/2}
	start := since.Truncate(bucket)
	n := int((until.Sub(start) + bucket - 1) / bucket)
	if n < 1 {
		n = 1
	}
	slot := float64(plotW) / float64(n)
	peak := 0
	for _, b := range series {
		if i := b.Start.Sub(start) / bucket; i >= 0 && int(i) < n {
			peak = max(peak, b.Blocked+b.Detected+b.Errors)
		}
	}
	top := niceCeil(peak)
	c.Empty = peak == 0
	scale := float64(plotH) / float64(top)
	for _, b := range series {
		i := int(b.Start.Sub(start) / bucket)
		if i < 0 || i >= n || b.Blocked+b.Detected+b.Errors == 0 {
			continue
		}
		x := plotLeft + float64(i)*slot + slot*(1-chartBarFill)/2
		w := slot * chartBarFill
		y := float64(plotTop + plotH)
		bar := chartBar{Title: fmt.Sprintf("%s — blocked %d, detected %d, errors %d",
			b.Start.UTC().Format("2006-01-02 15:04"), b.Blocked, b.Detected, b.Errors)}
		for _, s := range []struct {
			n     int
			class string
		}{{b.Blocked, "blocked"}, {b.Detected, "detected"}, {b.Errors, "errors"}} {
			if s.n == 0 {
				continue
			}
			h := float64(s.n) * scale
			y -= h
			bar.Segs = append(bar.Segs, chartSeg{rect{round1(x), round1(y), round1(w), round1(h)}, s.class})
		}
		c.Bars = append(c.Bars, bar)
	}
	for k := 0; k <= 4; k++ {
		v := top * k / 4
		c.YTicks = append(c.YTicks, chartTick{X: plotLeft - 6, X1: plotLeft, X2: plotLeft + plotW, Y: round1(float64(plotTop+plotH) - float64(v)*scale), Label: compact(v)})
	}
	layout := "15:04"
	if until.Sub(since) > 36*time.Hour {
		layout = "Jan 2"
	}
	step := max(1, n/6)
	for i := 0; i < n; i += step {
		t := start.Add(time.Duration(i) * bucket)
		c.XTicks = append(c.XTicks, chartTick{X: round1(plotLeft + float64(i)*slot + slot/2), Y: chartH - 8, Label: t.UTC().Format(layout)})
	}
	c.Label = fmt.Sprintf("Blocked and detected requests from %s to %s UTC, peak %d per %s",
		since.UTC().Format("2006-01-02 15:04"), until.UTC().Format("2006-01-02 15:04"), peak, shortDuration(bucket))
	return c
}

// niceCeil returns the chart's top value: four grid steps of 1, 2 or 5
// times a power of ten, covering n, so every grid line is a round number.
func niceCeil(n int) int {
	need := float64(max(n, 4)) / 4
	p := math.Pow(10, math.Floor(math.Log10(need)))
	for _, m := range []float64{1, 2, 5, 10} {
		if step := m * p; step >= need {
			return 4 * int(step)
		}
	}
	return 40 * int(p)
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// compact writes large counts briefly: 12k, 1.2M.
func compact(n int) string {
	switch {
	case n >= 1_000_000:
		return trimZero(float64(n)/1e6) + "M"
	case n >= 10_000:
		return trimZero(float64(n)/1e3) + "k"
	}
	return fmt.Sprint(n)
}

func trimZero(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}

func shortDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
