package peertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PostfixOptions configure a private Postfix instance.
type PostfixOptions struct {
	// RelayHost is the next hop HOST:PORT every message goes to.
	RelayHost string
	// Milter is the smtpd_milters and non_smtpd_milters value
	// ("unix:/path" or "inet:HOST:PORT"); empty means no milter.
	Milter string
	// SASLUsers are SMTP AUTH logins (Cyrus SASL, sasldb) on the
	// submission listener: login to password. A login may hold
	// "@realm".
	SASLUsers map[string]string
	// MainCF are extra main.cf lines, appended last (a later line wins).
	MainCF []string
}

// Postfix is a private Postfix instance on loopback high ports, in its own
// configuration and queue directory, never the system's. Its SMTP listener
// is like port 25 (no AUTH; clients on 127.0.0.0/8 may relay, standing
// for servers authorised by address); its submission listener offers AUTH
// and marks its mail with milter_macro_daemon_name = ORIGINATING.
type Postfix struct {
	// Dir holds main.cf, master.cf, the queue and the mail log.
	Dir string
	// SMTP and Submission are the listeners' HOST:PORT.
	SMTP, Submission string
	// SASLRealm is the realm of the SASL logins without one.
	SASLRealm string

	cmd  *exec.Cmd
	done chan error
	once sync.Once
}

// PostfixDaemon is the milter_macro_daemon_name of the submission listener.
const PostfixDaemon = "ORIGINATING"

// postfixPath finds the postfix command, or says what to install.
func postfixPath() (string, error) {
	for _, p := range []string{"/usr/sbin/postfix", "/usr/local/sbin/postfix"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("postfix not found: apt-get install postfix (debconf: No configuration)")
}

// PostfixAvailable reports why a private Postfix cannot run here, if it
// cannot: not installed, not root (Postfix's master runs as root), no
// postfix user, or no SASL tools when SASL users are asked for.
func PostfixAvailable(sasl bool) error {
	if _, err := postfixPath(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("a private Postfix needs root (its master process starts as root)")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return errors.New("no postfix user: apt-get install postfix")
	}
	if sasl {
		if _, err := exec.LookPath("saslpasswd2"); err != nil {
			return errors.New("saslpasswd2 not found: apt-get install sasl2-bin libsasl2-modules")
		}
		if m, _ := filepath.Glob("/usr/lib/*/sasl2/libsasldb.so*"); len(m) == 0 {
			return errors.New("Cyrus SASL sasldb plugin not found: apt-get install libsasl2-modules")
		}
	}
	return nil
}

// RequirePostfix skips the test (or fails it with DKIMD_REQUIRE_PEERS=1)
// when a private Postfix cannot run here.
func RequirePostfix(t testing.TB, sasl bool) {
	t.Helper()
	if err := PostfixAvailable(sasl); err != nil {
		Unavailable(t, "%v", err)
	}
}

// StartPostfix writes a configuration, starts "postfix -c DIR start-fg"
// and waits until both listeners accept connections. Stop it with Stop.
// Start it once per test package: it takes about two seconds.
func StartPostfix(opts PostfixOptions) (*Postfix, error) {
	bin, err := postfixPath()
	if err != nil {
		return nil, err
	}
	// Under /tmp, not a test's TempDir: Postfix's processes run as the
	// postfix user and must reach the queue and the SASL database.
	dir, err := os.MkdirTemp("", "dkimd-postfix-")
	if err != nil {
		return nil, err
	}
	// Cyrus SASL takes a login without "@realm" in the server's own
	// realm, its host name, and then reports it without a realm.
	p := &Postfix{Dir: dir, SASLRealm: "postfix.test"}
	fail := func(err error) (*Postfix, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	pu, err := user.Lookup("postfix")
	if err != nil {
		return fail(err)
	}
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)
	for _, d := range []string{"queue", "data", "sasl"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		return fail(err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return fail(err)
	}
	p.SMTP, p.Submission = ports[0], ports[1]
	if err := p.writeSASL(opts.SASLUsers, uid, gid); err != nil {
		return fail(err)
	}
	if err := p.writeConfig(opts); err != nil {
		return fail(err)
	}
	for _, args := range [][]string{{"set-permissions"}, {"check"}} {
		if out, err := exec.Command(bin, append([]string{"-c", dir}, args...)...).CombinedOutput(); err != nil {
			return fail(fmt.Errorf("postfix %s: %v: %s", args[0], err, out))
		}
	}
	p.cmd = exec.Command(bin, "-c", dir, "start-fg")
	p.cmd.Stdout, p.cmd.Stderr = nil, nil
	if err := p.cmd.Start(); err != nil {
		return fail(err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range []string{p.SMTP, p.Submission} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-p.done:
				p.done <- err
				log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
				return fail(fmt.Errorf("postfix exited (%v) before listening:\n%s", err, log))
			default:
			}
			if time.Now().After(deadline) {
				p.Stop()
				return nil, fmt.Errorf("postfix not listening on %s after 30 s", addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return p, nil
}

// Log gives the instance's mail log so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	return string(b)
}

// Stop stops the instance and removes its directory.
func (p *Postfix) Stop() {
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if bin, err := postfixPath(); err == nil {
			_ = exec.CommandContext(ctx, bin, "-c", p.Dir, "stop").Run()
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		os.RemoveAll(p.Dir)
	})
}

// writeSASL makes the sasldb and the smtpd.conf Cyrus SASL reads.
func (p *Postfix) writeSASL(users map[string]string, uid, gid int) error {
	db := filepath.Join(p.Dir, "sasl", "sasldb2")
	conf := fmt.Sprintf("pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: %s\n", db)
	if err := os.WriteFile(filepath.Join(p.Dir, "sasl", "smtpd.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	for login, pw := range users {
		name, realm := login, p.SASLRealm
		if i := strings.LastIndexByte(login, '@'); i >= 0 {
			name, realm = login[:i], login[i+1:]
		}
		cmd := exec.Command("saslpasswd2", "-c", "-p", "-f", db, "-u", realm, name)
		cmd.Stdin = strings.NewReader(pw)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("saslpasswd2 %s: %v: %s", login, err, out)
		}
	}
	if len(users) > 0 {
		if err := os.Chown(db, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func (p *Postfix) writeConfig(o PostfixOptions) error {
	main := []string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(p.Dir, "queue"),
		"data_directory = " + filepath.Join(p.Dir, "data"),
		"maillog_file = " + filepath.Join(p.Dir, "maillog"),
		"maillog_file_prefixes = " + p.Dir,
		"mail_owner = postfix",
		"myhostname = " + p.SASLRealm,
		"mydomain = postfix.test",
		"myorigin = postfix.test",
		"mydestination =",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"relayhost = [" + strings.Replace(o.RelayHost, ":", "]:", 1),
		"smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
		"alias_maps =",
		"alias_database =",
		"local_recipient_maps =",
		"smtpd_tls_security_level = none",
		"smtp_tls_security_level = none",
		"smtp_dns_support_level = disabled",
		"message_size_limit = 52428800",
		"in_flow_delay = 0",
		"smtpd_sasl_type = cyrus",
		"smtpd_sasl_path = smtpd",
		"cyrus_sasl_config_path = " + filepath.Join(p.Dir, "sasl"),
		"smtpd_sasl_local_domain =",
		"smtpd_sasl_security_options = noanonymous",
	}
	if o.Milter != "" {
		main = append(main,
			"smtpd_milters = "+o.Milter,
			"non_smtpd_milters = "+o.Milter,
			"milter_default_action = tempfail",
			"milter_protocol = 6",
			"milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr} {client_addr}",
		)
	}
	main = append(main, o.MainCF...)
	host, smtpPort, _ := net.SplitHostPort(p.SMTP)
	_, subPort, _ := net.SplitHostPort(p.Submission)
	// chroot "n" everywhere: a private instance has no chroot jail.
	master := []string{
		host + ":" + smtpPort + " inet n - n - - smtpd",
		host + ":" + subPort + " inet n - n - - smtpd -o smtpd_sasl_auth_enable=yes -o milter_macro_daemon_name=" + PostfixDaemon,
		"pickup    unix  n - n 60 1 pickup",
		"cleanup   unix  n - n - 0 cleanup",
		"qmgr      unix  n - n 300 1 qmgr",
		"rewrite   unix  - - n - - trivial-rewrite",
		"bounce    unix  - - n - 0 bounce",
		"defer     unix  - - n - 0 bounce",
		"trace     unix  - - n - 0 bounce",
		"verify    unix  - - n - 1 verify",
		"flush     unix  n - n 1000? 0 flush",
		"proxymap  unix  - - n - - proxymap",
		"showq     unix  n - n - - showq",
		"smtp      unix  - - n - - smtp",
		"relay     unix  - - n - - smtp",
		"error     unix  - - n - - error",
		"retry     unix  - - n - - error",
		"discard   unix  - - n - - discard",
		"anvil     unix  - - n - 1 anvil",
		"scache    unix  - - n - 1 scache",
		"postlog   unix-dgram n - n - 1 postlogd",
	}
	if err := os.WriteFile(filepath.Join(p.Dir, "main.cf"), []byte(strings.Join(main, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.Dir, "master.cf"), []byte(strings.Join(master, "\n")+"\n"), 0o644)
}

// freePorts finds n free TCP ports on 127.0.0.1.
func freePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}
