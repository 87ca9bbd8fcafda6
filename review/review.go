// Package review names the layer of the tools that review audit records,
// and its test keeps the layers apart. It holds no code.
//
// Place in the request path: none; above it. The layers, from the bottom:
//
//   - below the pipeline: audit/ (the record, its writer and sinks) and its
//     store, query language and exports, config/, and the stages' own
//     packages that know nothing of the pipeline (respond, clientip,
//     ratelimit, reputation, bans, wire, metrics, alerts);
//   - the pipeline: gateway/ and the stages it runs (waf/, proxy/, cache/);
//   - above both, the review tools: review/explain (the smallest verified
//     exclusion) and review/replay (judging records again) run the
//     pipeline on recorded requests, so they import gateway/ and waf/, as
//     the CLI does; review/score (the anomaly score rule by rule) reads
//     records only, so that admin/ (the dashboard) shows the same
//     breakdown as `audit show` without importing the pipeline.
//
// layers_test.go fails when a package below the pipeline imports it or the
// review tools, or when review/score or admin/ import the pipeline.
package review
