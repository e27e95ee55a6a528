// Package forwardinterop tests package forward (github.com/reconn/reconn/forward)
// against a real Forward server rather than the package's own fake one:
// the OpenTelemetry Collector's fluentforwardreceiver, run in-process on
// a loopback port with a consumertest.LogsSink as its next consumer. The
// tests check what arrives there: every record, once, with its tag
// (attribute "fluent.tag"), its text (the body) and its fields (the
// other attributes) of the types the receiver makes of them; and that a
// receiver shut down mid-stream and started again on the same port loses
// nothing. Its subpackage vsfluentlogger benchmarks package forward
// against fluent-logger-golang, and msgpacklibs measures the MessagePack
// libraries package forward does without (tinylib/msgp,
// vmihailenco/msgpack) on the entries its own encoder makes.
//
// It is a module of its own so that the Collector's dependencies, and
// fluent-logger-golang's and the libraries', stay out of the library's
// go.mod: a user of github.com/reconn/reconn downloads none of them, and
// the library's go.sum does not list them. Its go.mod replaces github.com/reconn/reconn
// with the work tree two directories up, so it always tests the code
// beside it. Run its tests from this directory:
//
//	go test -race ./...
//
// It holds only this file and tests.
package forwardinterop
