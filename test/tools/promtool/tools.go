//go:build tools

// Pins promtool (Prometheus rule checks and rule unit tests) for the monitoring tests.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
