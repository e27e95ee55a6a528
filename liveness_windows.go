package reconn

// The check of a Conn on Windows, through internal/sock: Go's sockets are
// overlapped and blocking, so a peek with nothing waiting would block.
// WSAIoctl(SIO_TCP_INFO) gives the state and the acknowledgement count
// (BytesOut less BytesInFlight) instead, on Windows 10 1703 and later;
// where it fails (older Windows, and Wine) a Conn runs no check and counts
// no acknowledgements, so it redials only after a write fails and replays
// everything it holds. Unix sockets get no check on Windows. There is no
// event queue for CheckWatch.

// platformCheck is the check before each Write.
func platformCheck() CheckMode { return CheckState }
