// Package forward sends records to a server of Fluentd's Forward protocol
// (Fluentd's in_forward, Fluent Bit's in_forward, Vector's fluent source,
// the OpenTelemetry Collector's fluentforwardreceiver) over reconn: each
// request carries a chunk id, and a record is kept until the server has
// acknowledged ({"ack": id}) the request that carried it and every one
// before it. A reset, a server that closes or crashes, or an ack that does
// not come makes the Conn redial and send again what was not
// acknowledged, before anything new. Several requests wait for their acks
// at a time (Dialer.Window), so latency does not divide the throughput as
// with one request in flight.
//
// Each Write is one record {Key: bytes} at the time of the Write;
// WriteRecord sends structured fields. Records are packed into
// PackedForward requests ([tag, bin of entries, {"chunk", "size"}]); the
// time is EventTime (the extension of type 0, nanoseconds) unless
// Dialer.IntegerTime is set. The chunk id is a MessagePack str, base64 of
// 16 random bytes, as Fluentd makes it (Fluent Bit matches only a str).
//
// What the server sends is decoded strictly: an answer that is not a map
// holding "ack", an ack for no request waiting, an answer nested deeper
// than 8 or longer than 64 KiB ends the connection (and the Conn redials);
// no length the server claims is allocated.
//
// With Dialer.SharedKey, each connection starts with the protocol's
// shared-key handshake (the server's HELO, the client's PING, the server's
// PONG; users and passwords too), and the client checks that the server
// holds the key as well. A refusal on the first connection fails
// DialContext with ErrAuthFailed.
//
// Tested against real servers: the OpenTelemetry Collector's
// fluentforwardreceiver (v0.165.1), in the separate module
// internal/forwardinterop, which streams through a receiver restarted
// mid-stream, and carries zap's entries there. Fluentd, Fluent Bit and
// Vector have not been run against it: none is among the packages the
// test machines install from.
//
// Dialer.Compress sends CompressedPackedForward requests (gzip), which the
// Collector's receiver takes as well. Dialer.DisableAcks sends requests
// that ask for no ack, for a server that cannot send them: a record then
// counts as delivered once the server's kernel has acknowledged its
// request, so a crash of the server loses what its kernel took and it had
// not processed (everything else is sent again).
//
// A Conn serves as a logging library's writer: its Sync is what zap's
// WriteSyncer calls at shutdown, and a slog handler writes to it as to
// any io.Writer (one record per Write).
package forward
