//go:build !linux

package buffer

import "testing"

// smallFS: mounting a tmpfs is Linux's; elsewhere the tests that need a
// small filesystem skip (or take one from TIDEGATE_SMALL_FS).
func smallFS(t *testing.T, size int) string {
	t.Skipf("no %d-byte tmpfs here: a small data partition is tested on Linux", size)
	return ""
}
