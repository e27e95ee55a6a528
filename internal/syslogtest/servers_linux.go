//go:build linux

package syslogtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Rsyslogd configures StartRsyslogd.
type Rsyslogd struct {
	// Template is the line written for each message, in the syntax of an
	// rsyslog string template. If empty, it is "%rawmsg%\n".
	Template string

	// TLS, if not nil, makes imtcp speak TLS with this certificate,
	// through the gtls (GnuTLS) stream driver, without client
	// authentication.
	TLS *Certs

	// RELP makes the input imrelp instead of imtcp (Debian's
	// rsyslog-relp); TLS is not supported with it here.
	RELP bool
}

// StartRsyslogd runs a private rsyslogd with imtcp on a loopback port
// until the test ends. It skips the test if rsyslogd is not installed,
// and, with TLS, if the gtls driver is not (Debian's rsyslog-gnutls).
func StartRsyslogd(t testing.TB, c Rsyslogd) *Server {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/rsyslogd")
	}
	if err != nil {
		t.Skipf("rsyslogd not installed (apt-get install rsyslog): %v", err)
	}
	if c.TLS != nil {
		if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
			t.Skip("rsyslog's gtls stream driver not installed (apt-get install rsyslog-gnutls)")
		}
	}
	if c.RELP {
		if m, _ := filepath.Glob("/usr/lib/*/rsyslog/imrelp.so"); len(m) == 0 {
			t.Skip("rsyslog's RELP input imrelp not installed (apt-get install rsyslog-relp)")
		}
	}
	if c.Template == "" {
		c.Template = "%rawmsg%\n"
	}
	dir := t.TempDir()
	port := FreePort(t)
	global := fmt.Sprintf("workDirectory=%q", dir)
	imtcp := `module(load="imtcp")`
	if c.TLS != nil {
		global += fmt.Sprintf(" defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile)
		imtcp = `module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`
	}
	input := "imtcp"
	if c.RELP {
		imtcp, input = `module(load="imrelp")`, "imrelp"
	}
	// A long shutdown timeout makes rsyslogd write out everything it has
	// read before it exits, so that only its unread socket data is lost.
	conf := fmt.Sprintf(`global(%s)
main_queue(queue.timeoutShutdown="60000" queue.timeoutActionCompletion="60000")
%s
input(type=%q address="127.0.0.1" port="%d")
template(name="line" type="string" string=%q)
action(type="omfile" file=%q template="line")
`, global, imtcp, input, port, c.Template, filepath.Join(dir, "out.log"))
	confFile := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := []string{bin, "-n", "-f", confFile, "-i", filepath.Join(dir, "rsyslogd.pid")}
	return newServer(t, "rsyslogd", dir, port, argv, nil, c.TLS != nil)
}

// SyslogNG configures StartSyslogNG.
type SyslogNG struct {
	// Template is the line written for each message, in the syntax of a
	// syslog-ng template. If empty, it is "$MSG\n".
	Template string

	// Flags are the flags() of the network() source, such as
	// "syslog-protocol" to parse RFC 5424.
	Flags string
}

// DefaultSyslogNG is where .ci/run unpacks syslog-ng unless
// $RECONN_SYSLOG_NG says otherwise.
const DefaultSyslogNG = "/tmp/reconn-ci/syslog-ng"

// StartSyslogNG runs a private syslog-ng with a network() TCP source on a
// loopback port until the test ends. It looks for syslog-ng where
// $RECONN_SYSLOG_NG points, a directory into which Debian's
// syslog-ng-core is unpacked (dpkg -x), then in DefaultSyslogNG, then in
// $PATH; it skips the test if there is none.
func StartSyslogNG(t testing.TB, c SyslogNG) *Server {
	t.Helper()
	var argv, env []string
	root := os.Getenv("RECONN_SYSLOG_NG")
	if _, err := os.Stat(DefaultSyslogNG); root == "" && err == nil {
		root = DefaultSyslogNG
	}
	if root != "" {
		mods, _ := filepath.Glob(filepath.Join(root, "usr/lib/syslog-ng/3.*"))
		bin := filepath.Join(root, "usr/sbin/syslog-ng")
		if _, err := os.Stat(bin); err != nil || len(mods) == 0 {
			t.Skipf("RECONN_SYSLOG_NG=%s holds no unpacked syslog-ng-core (usr/sbin/syslog-ng, usr/lib/syslog-ng/3.*)", root)
		}
		argv = []string{bin, "--module-path=" + mods[0]}
		env = []string{"LD_LIBRARY_PATH=" + filepath.Join(root, "usr/lib/syslog-ng")}
	} else if bin, err := exec.LookPath("syslog-ng"); err == nil {
		argv = []string{bin}
	} else {
		t.Skip("syslog-ng not found: run .ci/run, which unpacks it into " + DefaultSyslogNG + ", or set RECONN_SYSLOG_NG to a directory holding Debian's syslog-ng-core unpacked with dpkg -x, or install it")
	}
	if c.Template == "" {
		c.Template = "$MSG\n"
	}
	dir := t.TempDir()
	port := FreePort(t)
	flags := ""
	if c.Flags != "" {
		flags = " flags(" + c.Flags + ")"
	}
	// Flow control makes syslog-ng stop reading while its destination is
	// behind, rather than drop what it read: messages then wait in the
	// socket, where Stop counts them.
	conf := fmt.Sprintf(`@version: 3.38
options { keep-hostname(yes); stats-freq(0); };
source s { network(ip("127.0.0.1") port(%d) transport("tcp")%s); };
destination d { file(%q template(%q)); };
log { source(s); destination(d); flags(flow-control); };
`, port, flags, filepath.Join(dir, "out.log"), c.Template)
	confFile := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	argv = append(argv, "-F", "-f", confFile,
		"-p", filepath.Join(dir, "syslog-ng.pid"),
		"-c", filepath.Join(dir, "syslog-ng.ctl"),
		"-R", filepath.Join(dir, "syslog-ng.persist"))
	return newServer(t, "syslog-ng", dir, port, argv, env, false)
}
