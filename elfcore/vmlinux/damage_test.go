package vmlinux

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDamagedFiles opens 3000 damaged copies of the fixtures (bytes
// overwritten, the file cut short, zeros inserted; seeded, so repeatable)
// and asks every lookup of each: errors are expected, a panic or a lookup
// that does not return within seconds is a failure.
func TestDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(6))
	var originals [][]byte
	for _, p := range append(fixtures, "testdata/fixture-nodwarf.elf") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		originals = append(originals, b)
	}
	opened := 0
	for i := range 3000 {
		b0 := originals[i%len(originals)]
		b := append([]byte(nil), b0...)
		switch r.Intn(3) {
		case 0:
			b = b[:r.Intn(len(b))]
		case 1:
			k := r.Intn(len(b))
			b = append(b[:k:k], append(make([]byte, 1+r.Intn(64)), b0[k:]...)...)
		}
		for range 1 + r.Intn(8) {
			if len(b) > 0 {
				b[r.Intn(len(b))] = byte(r.Intn(256))
			}
		}
		p := filepath.Join(dir, "vmlinux")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }()
			v, err := Open(p)
			if err != nil {
				return
			}
			defer v.Close()
			done <- "opened"
			v.BuildID()
			v.Release()
			v.Symbol("init_task")
			v.StructSize("page")
			// What Member returns lies inside its struct, whatever the damage.
			for _, q := range [][2]string{{"page", "compound_dtor"}, {"task_struct", "thread_info.cpu"}, {"printk_info", "level"}, {"uts_namespace", "name.release"}} {
				m, err := v.Member(q[0], q[1])
				size, err2 := v.StructSize(q[0])
				if err == nil && err2 == nil && (m.Offset < 0 || m.Offset+m.Size > size) {
					panic(fmt.Sprintf("%s.%s at %d+%d outside %d bytes", q[0], q[1], m.Offset, m.Size, size))
				}
			}
			v.Enum("PG_lru")
			v.VarArrayLen("node_data")
			v.VarTypeName("init_task")
			v.VarAddr("init_uts_ns")
		}()
		select {
		case e := <-done:
			if e == "opened" {
				opened++
				e = <-done
			}
			if e != nil {
				os.WriteFile(filepath.Join(os.TempDir(), "ldx-vmlinux-panic.elf"), b, 0o600)
				t.Fatalf("damaged copy %d: panic: %v (input saved in %s)", i, e, os.TempDir())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("damaged copy %d: lookups did not return in 10 s", i)
		}
	}
	t.Logf("%d of 3000 damaged copies opened as ELF; every lookup returned", opened)
}
