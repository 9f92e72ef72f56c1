package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Layout is a data directory: its root and the names of what it holds.
// The zero value is the current directory.
type Layout struct {
	// Root is the data directory itself.
	Root string
}

// New gives the layout of the data directory root.
func New(root string) Layout { return Layout{Root: root} }

// Names of the files and directories in a data directory. The layout's
// methods give their paths; the names are exported for messages and help
// texts ("default DIR/master.key").
const (
	DatabaseFile      = "dkimd.db"
	MasterKeyFile     = "master.key"
	SpoolDir          = "spool"
	TmpDir            = "tmp"
	ControlSocketFile = "control.sock"
	RelayCertFile     = "relay-cert.pem"
	RelayKeyFile      = "relay-key.pem"
)

// String is the root, for messages and log lines.
func (l Layout) String() string { return l.Root }

// Database is the SQLite database file.
func (l Layout) Database() string { return l.path(DatabaseFile) }

// MasterKey is the master key file, where the master key lives unless it
// is given with --master-key or in the environment.
func (l Layout) MasterKey() string { return l.path(MasterKeyFile) }

// Spool is the durable queue's directory; what is inside belongs to the
// queue package.
func (l Layout) Spool() string { return l.path(SpoolDir) }

// Tmp is the relay's directory for temporary files: a message too long to
// hold in memory while it is received and signed. Nothing in it outlives
// the process that made it (see CleanTmp).
func (l Layout) Tmp() string { return l.path(TmpDir) }

// ControlSocket is the UNIX socket a running serve answers the queue
// commands on.
func (l Layout) ControlSocket() string { return l.path(ControlSocketFile) }

// RelayCert and RelayKey are the self-signed submission certificate and
// its private key, made when no certificate is configured.
func (l Layout) RelayCert() string { return l.path(RelayCertFile) }

// RelayKey is the private key of RelayCert.
func (l Layout) RelayKey() string { return l.path(RelayKeyFile) }

func (l Layout) path(name string) string { return filepath.Join(l.Root, name) }

// MakeRoot creates the data directory with mode 0700 if it does not exist.
func (l Layout) MakeRoot() error {
	if err := os.MkdirAll(l.Root, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// CleanTmp creates Tmp (mode 0700) or removes everything in it, and gives
// its path. What is there was left by a process that ended without
// cleaning up: a message being received, never acknowledged (the relay
// answers 250 only once the queue holds its own copy). Call it once at
// start, while holding the data directory (after the spool's lock is
// taken), never while a relay uses the directory.
func (l Layout) CleanTmp() (string, error) {
	dir := l.Tmp()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("data directory: clean %s: %w", dir, err)
	}
	return dir, nil
}
