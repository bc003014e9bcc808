package config

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile replaces the file at path with data atomically and keeps what
// the old file was: owner, group and mode. A config rewritten by root (a
// technician's scan --append-config, a remote config) must stay readable by
// the service user it belonged to. The data goes to a temporary file in
// the same directory, is synced, given the old file's owner and mode,
// renamed over it, and the directory is synced so the rename survives a
// power cut. A new file gets mode 0640. Every CLI verb and the daemon
// rewrite files only through here.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	mode := os.FileMode(0o640)
	uid, gid := -1, -1
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	name := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("%s: cannot keep its owner %d:%d (%w); nothing written", path, uid, gid, err)
		}
	}
	// After the chown, which clears set-id bits.
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
