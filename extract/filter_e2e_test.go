//go:build e2e

package extract

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"ldx/elfcore/kernel/pageclass"
	"ldx/elfcore/kernel/printk"
	"ldx/extract/dump"
	"ldx/extract/verify"
	"ldx/kmod/kmodtest/guest"
)

// TestFilterE2E checks ldx extract -d 31 on cached 6.1 and 6.12 guest
// dumps against makedumpfile 1.7.2 and the consumers:
//   - the pfns ldx excludes (levels 2–16) are the ones makedumpfile's
//     -d 30 kdump-compressed output marks as not dumped (its second
//     bitmap), or each difference is a slab page 1.7.2 takes for user data
//     on 6.12;
//   - free pages are left out, the file is no larger than 1.05 × the ELF
//     makedumpfile -E -d 31 writes;
//   - drgn walks as many tasks as in the unfiltered vmcore and finds the
//     named processes, crash (6.1) reads the log and the task list, and
//     the kernel log read from the filtered file has the markers.
func TestFilterE2E(t *testing.T) {
	ctx := guest.WithLog(context.Background(), t.Logf)
	for _, sc := range []e2eScenario{e2eScenarios[1], e2eScenarios[2]} {
		t.Run(sc.name, func(t *testing.T) {
			art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), sc.spec)
			if err != nil {
				t.Fatalf("preparing the guest: %v", err)
			}
			work := t.TempDir()
			full := filepath.Join(work, "full.vmcore")
			if _, err := Run(ctx, Options{Input: art.Dump, Output: full}); err != nil {
				t.Fatal(err)
			}
			filtered := filepath.Join(work, "d31.vmcore")
			sum, err := Run(ctx, Options{Input: art.Dump, Output: filtered, DumpLevel: 31})
			if err != nil {
				t.Fatalf("ldx extract -d 31: %v", err)
			}
			f := sum.Filter
			t.Logf("e2e_filter %s: ldx -d 31 excluded cache %d, private cache %d, user %d, free %d, hwpoison %d, offline %d, zero %d; %d pages left out, %d PT_LOADs, file %d bytes, anomalies %d",
				sc.name, f.Excluded.Cache, f.Excluded.CachePrivate, f.Excluded.User, f.Excluded.Free, f.Excluded.HWPoison, f.Excluded.Offline, f.ZeroExcluded, f.LeftOut, sum.Segments, sum.OutputSize, f.Anomalies)
			// Whatever the boot's RAM map, the cuts leave no segment
			// starting in firmware or reserved memory (verify's E4).
			checkE2ELayout(t, filtered, art, true)
			if f.Excluded.Free == 0 || f.LeftOut == 0 {
				t.Errorf("no free pages excluded (%d) or nothing left out (%d)", f.Excluded.Free, f.LeftOut)
			}
			compareMakedumpfile(t, ctx, sc.name, full, strings.HasPrefix(sc.name, "6.1-"))

			elf := filepath.Join(work, "mdf-d31.elf")
			runTool(t, 5*time.Minute, "makedumpfile", "-E", "-d", "31", full, elf)
			st, err := os.Stat(elf)
			if err != nil {
				t.Fatalf("makedumpfile -E -d 31 wrote nothing: %v", err)
			}
			t.Logf("e2e_filter %s: file size ldx -d 31 %d bytes, makedumpfile -E -d 31 %d bytes (%.3f×)", sc.name, sum.OutputSize, st.Size(), float64(sum.OutputSize)/float64(st.Size()))
			if float64(sum.OutputSize) > 1.05*float64(st.Size()) {
				t.Errorf("ldx's -d 31 file is more than 1.05 × makedumpfile's")
			}
			os.Remove(elf)

			nFull, nFilt := drgnTaskCount(t, full, art), drgnTaskCount(t, filtered, art)
			t.Logf("e2e_filter %s: drgn walks %d tasks in the full vmcore, %d in the -d 31 one", sc.name, nFull, nFilt)
			if nFull == 0 || nFilt != nFull {
				t.Errorf("drgn task count %d in the -d 31 file, %d unfiltered", nFilt, nFull)
			}
			checkDrgn(t, filtered, art)
			if sc.crash {
				checkCrash(t, filtered, art)
			}
			checkFilteredLog(t, ctx, filtered, art)
			for _, v := range []struct {
				path, want string
			}{{full, "not filtered"}, {filtered, "filtered: a dump level left pages out"}} {
				rep, err := verify.File(ctx, v.path, verify.Options{})
				if err != nil {
					t.Fatal(err)
				}
				h1 := rep.Check(verify.L1)
				if h1 == nil || !strings.HasPrefix(h1.Found, v.want) {
					t.Errorf("verify L1 on %s: %+v, want %q", filepath.Base(v.path), h1, v.want)
				} else {
					t.Logf("e2e_filter %s: verify L1 on %s: %s", sc.name, filepath.Base(v.path), h1.Found)
				}
				if rep.Worst > verify.Info {
					t.Errorf("verify on %s: worst %v", filepath.Base(v.path), rep.Worst)
				}
			}
		})
	}
}

// compareMakedumpfile compares the pfns pageclass excludes at level 30
// with the ones makedumpfile -d 30 leaves out of its kdump-compressed
// output.
func compareMakedumpfile(t *testing.T, ctx context.Context, name, full string, exact bool) {
	d, err := dump.Open(ctx, full, dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mem, err := d.Kmem()
	if err != nil {
		t.Fatal(err)
	}
	ram := d.RAM
	res, err := pageclass.Classify(ctx, mem, d.VMCOREINFO, 30, ram)
	if err != nil {
		t.Fatal(err)
	}
	kd := filepath.Join(t.TempDir(), "mdf-d30.kdump")
	out := runTool(t, 5*time.Minute, "makedumpfile", "--message-level", "16", "-d", "30", full, kd)
	inDump, dumped := readKdumpBitmaps(t, kd)
	os.Remove(kd)
	slab, _ := d.VMCOREINFO.Number("PAGE_SLAB_MAPCOUNT_VALUE")
	mapcountOff, _ := d.VMCOREINFO.Offset("page._mapcount")
	size, _ := d.VMCOREINFO.Size("page")
	vmemmap, hasVmemmap := d.VMCOREINFO.Symbol("vmemmap")
	var both, onlyLdx, onlyMdf, mdfSlab uint64
	for _, r := range d.RAM {
		for pfn := r.Start / pageSize; pfn < r.End/pageSize; pfn++ {
			if !bitSet(inDump, pfn) {
				continue
			}
			l, m := res.Excluded(pfn), !bitSet(dumped, pfn)
			switch {
			case l && m:
				both++
			case l:
				onlyLdx++
				if onlyLdx <= 5 {
					t.Logf("e2e_filter %s: pfn %#x excluded by ldx only", name, pfn)
				}
			case m:
				onlyMdf++
				// makedumpfile 1.7.2 derives a slab bit from
				// PAGE_SLAB_MAPCOUNT_VALUE and misses 6.12's slab type,
				// taking slab pages whose mapping word is odd for user
				// data: read the page's _mapcount to tell.
				if hasVmemmap && slab != 0 {
					var b [4]byte
					if _, err := mem.ReadAt(b[:], int64(vmemmap+pfn*size+mapcountOff)); err == nil && int64(int32(binary.LittleEndian.Uint32(b[:]))) == slab {
						mdfSlab++
						continue
					}
				}
				if onlyMdf-mdfSlab <= 5 {
					t.Logf("e2e_filter %s: pfn %#x excluded by makedumpfile only", name, pfn)
				}
			}
		}
	}
	t.Logf("e2e_filter %s: level 30 pfns excluded by both %d, ldx only %d, makedumpfile 1.7.2 only %d (of which %d are slab pages it takes for user data)", name, both, onlyLdx, onlyMdf, mdfSlab)
	t.Logf("e2e_filter %s: ldx counts %+v; makedumpfile says:\n%s", name, res.Counts, mdfCounts(out))
	if mdfCounts(out) == "" {
		t.Logf("makedumpfile's output:\n%s", tail(out, 30))
	}
	if both == 0 {
		t.Errorf("no page excluded by both")
	}
	if exact && (onlyLdx != 0 || onlyMdf != 0) {
		t.Errorf("on %s ldx and makedumpfile 1.7.2 must exclude the same pfns", name)
	}
	if !exact && (onlyLdx != 0 || onlyMdf != mdfSlab) {
		t.Errorf("unexplained differences with makedumpfile")
	}
}

func mdfCounts(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`^\s+(Non-private cache|Private cache|User process data|Free) pages\s*: 0x([0-9a-f]+)`).FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[2], 16, 64)
			lines = append(lines, fmt.Sprintf("  %s %d", m[1], n))
		}
	}
	return strings.Join(lines, "\n")
}

// readKdumpBitmaps returns the two bitmaps of a kdump-compressed file:
// pages in the dumped memory, and pages written.
func readKdumpBitmaps(t *testing.T, path string) (first, second []byte) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 464 || string(b[:8]) != "KDUMP   " {
		t.Fatalf("%s is not a kdump-compressed file", path)
	}
	blockSize := uint64(binary.LittleEndian.Uint32(b[428:]))
	subHdr := uint64(binary.LittleEndian.Uint32(b[432:]))
	blocks := uint64(binary.LittleEndian.Uint32(b[436:]))
	off, n := blockSize*(1+subHdr), blocks*blockSize
	if off+n > uint64(len(b)) {
		t.Fatalf("%s: bitmaps [%#x, %#x) past the end", path, off, off+n)
	}
	return b[off : off+n/2], b[off+n/2 : off+n]
}

func bitSet(bm []byte, pfn uint64) bool {
	return pfn/8 < uint64(len(bm)) && bm[pfn/8]&(1<<(pfn%8)) != 0
}

func drgnTaskCount(t *testing.T, vmcore string, art *guest.Artefacts) int {
	script := filepath.Join(t.TempDir(), "count.py")
	os.WriteFile(script, []byte("from drgn.helpers.linux.pid import for_each_task\nprint('NTASKS', sum(1 for _ in for_each_task(prog)))\n"), 0o644)
	out := runTool(t, 5*time.Minute, "drgn", "-q", "-c", vmcore, "-s", art.Vmlinux, script)
	m := regexp.MustCompile(`NTASKS (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("drgn counted no tasks in %s:\n%s", vmcore, tail(out, 20))
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// checkFilteredLog: the kernel log read from the filtered file (as ldx
// dmesg reads it) has the guest's markers.
func checkFilteredLog(t *testing.T, ctx context.Context, vmcore string, art *guest.Artefacts) {
	d, err := dump.Open(ctx, vmcore, dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m, err := d.Kmem()
	if err != nil {
		t.Fatal(err)
	}
	log, err := printk.Read(m, d.VMCOREINFO, nil)
	if err != nil {
		t.Fatalf("reading the log of the -d 31 file: %v", err)
	}
	var text []byte
	for i := range log.Records {
		text = append(printk.AppendText(text, &log.Records[i], printk.FormatOptions{}), '\n')
	}
	wantAll(t, "the -d 31 file's kernel log", string(text), art.Facts.Markers...)
}
