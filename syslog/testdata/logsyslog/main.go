// Command logsyslog is a program written for the standard log/syslog that
// uses every name it exports. TestCompileSwitch builds it as it is, and
// with its import path changed to github.com/reconn/reconn/syslog, and
// compares what the two send.
package main

import (
	"fmt"
	"log"
	"log/syslog"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: logsyslog host:port")
	}
	severities := []syslog.Priority{
		syslog.LOG_EMERG, syslog.LOG_ALERT, syslog.LOG_CRIT, syslog.LOG_ERR,
		syslog.LOG_WARNING, syslog.LOG_NOTICE, syslog.LOG_INFO, syslog.LOG_DEBUG,
	}
	facilities := []syslog.Priority{
		syslog.LOG_KERN, syslog.LOG_USER, syslog.LOG_MAIL, syslog.LOG_DAEMON,
		syslog.LOG_AUTH, syslog.LOG_SYSLOG, syslog.LOG_LPR, syslog.LOG_NEWS,
		syslog.LOG_UUCP, syslog.LOG_CRON, syslog.LOG_AUTHPRIV, syslog.LOG_FTP,
		syslog.LOG_LOCAL0, syslog.LOG_LOCAL1, syslog.LOG_LOCAL2, syslog.LOG_LOCAL3,
		syslog.LOG_LOCAL4, syslog.LOG_LOCAL5, syslog.LOG_LOCAL6, syslog.LOG_LOCAL7,
	}

	// The local syslog daemon may be missing: both packages then fail.
	if w, err := syslog.New(syslog.LOG_INFO, "logsyslog"); err == nil {
		w.Close()
	}
	if l, err := syslog.NewLogger(syslog.LOG_INFO|syslog.LOG_USER, log.Lshortfile); err == nil {
		l.Print("local")
	}
	if _, err := syslog.Dial("tcp", os.Args[1], -1, "x"); err == nil {
		log.Fatal("Dial took an invalid priority")
	}

	var w *syslog.Writer
	w, err := syslog.Dial("tcp", os.Args[1], syslog.LOG_WARNING|syslog.LOG_DAEMON, "logsyslog")
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range facilities {
		for _, s := range severities {
			fmt.Fprintf(w, "facility %d severity %d", f, s)
		}
	}
	methods := []func(string) error{w.Emerg, w.Alert, w.Crit, w.Err, w.Warning, w.Notice, w.Info, w.Debug}
	for i, m := range methods {
		if err := m(fmt.Sprintf("method %d", i)); err != nil {
			log.Fatal(err)
		}
	}
	l := log.New(w, "prefix: ", 0)
	l.Printf("through log.Logger")
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
}
