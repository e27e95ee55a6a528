// Package testns lets a test binary that is not run as root re-run itself
// as root inside a new user and network namespace, where it holds
// CAP_NET_ADMIN over its own loopback: the BPF socket filters that
// blackhole a connection, and the measurement of what a server left
// unread, then work for any user, as unshare -Urn gives them.
//
// Enter is called first in a package's TestMain. On Linux, when the
// process is not root and the kernel allows an unprivileged user
// namespace, it runs the same test binary with the same arguments in a new
// user namespace (this user mapped to root) and a new network namespace
// whose loopback it brings up, and exits with that run's status. Anywhere
// else, as root, inside the namespace, or where the namespace cannot be
// made, Enter returns and the tests run as they are: those that need
// privileges skip and say why. RECONN_TESTNS=off turns it off.
package testns
