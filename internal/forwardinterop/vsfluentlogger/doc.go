// Package vsfluentlogger compares package forward with
// fluent-logger-golang (github.com/fluent/fluent-logger-golang), the
// Fluentd project's own Go client, with acks on: BenchmarkVsFluentLogger
// sends records of 100 bytes to an acknowledging fake Forward server,
// directly and through a proxy that delays each direction by 1 ms.
//
// The package is separate from forwardinterop, its parent, because the
// two cannot share a test binary: fluent-logger-golang and the
// OpenTelemetry Collector's fluentforwardreceiver both register the
// Forward protocol's EventTime as MessagePack extension 0 with
// tinylib/msgp in an init function, and msgp panics when a type is
// registered twice. It holds only this file and tests.
package vsfluentlogger
