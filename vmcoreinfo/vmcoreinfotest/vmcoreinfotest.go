// Package vmcoreinfotest loads the real kernels' VMCOREINFO texts several
// packages' tests share. They are data in the repository's testdata/
// folder (testdata/vmcoreinfo), not Go string literals:
//
//   - fedora-6.2.15-kcore.txt: Fedora 6.2.15-100.fc36.x86_64 read from
//     /proc/kcore (3289 bytes, 109 lines, no CRASHTIME: kcore has none);
//     the sample of the livedump note-size table;
//   - debian-6.1.192-4level.txt: a Debian 6.1 cloud guest with 4-level
//     paging;
//   - debian-6.12.117-5level.txt: a Debian 6.12 cloud guest with 5-level
//     paging.
package vmcoreinfotest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Text returns the text of testdata/vmcoreinfo/name, failing the test
// when there is no such fixture. Tests run from their package's folder,
// so the file is found from this source file's place in the repository.
func Text(t testing.TB, name string) []byte {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("vmcoreinfotest: cannot locate the repository")
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "testdata", "vmcoreinfo", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}
