package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/valine/valine-check/internal/secret"
)

// checkTokenOut accepts, as the file a forged token is written to, only a
// new file in an existing directory or an existing regular file. Anything
// else would put the token where it must not be: a terminal or
// /dev/stdout (the screen, the CI log), a device, a FIFO (whoever reads
// it), or through a symbolic link to wherever it points. The link itself
// is judged (Lstat), never followed.
func checkTokenOut(path string) error {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		dir, derr := os.Stat(filepath.Dir(path))
		if derr != nil {
			return fmt.Errorf("its directory cannot be used: %w", derr)
		}
		if !dir.IsDir() {
			return fmt.Errorf("%s is not a directory", filepath.Dir(path))
		}
		return nil
	case err != nil:
		return err
	}
	switch m := st.Mode(); {
	case m.IsRegular():
		return nil
	case m&fs.ModeSymlink != 0:
		return errors.New("is a symbolic link (not followed: name the file itself)")
	case m.IsDir():
		return errors.New("is a directory")
	case m&fs.ModeNamedPipe != 0:
		return errors.New("is a FIFO")
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return errors.New("is a device or a terminal")
	default:
		return fmt.Errorf("is not a regular file (%s)", m.Type())
	}
}

// writeTokenFile writes the token, with mode 0600, to a temporary file in
// path's directory and renames it over path: an existing file, whatever
// its mode, is replaced by one only its owner can read, and a crash leaves
// either the old file or the whole token, never half of one.
func writeTokenFile(path string, tok secret.Token) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.WriteString(tok.Reveal() + "\n"); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
