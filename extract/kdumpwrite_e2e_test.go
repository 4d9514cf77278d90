//go:build e2e

package extract

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ldx/elfcore/kdump"
	"ldx/elfcore/kernel/pageclass"
	"ldx/kmod/kmodtest/guest"
)

// TestKdumpWriteE2E writes the cached guests' QEMU dumps as kdump-compressed
// files and has the real consumers open them: crash (6.1: crash 8.0.2
// cannot read 6.12) for the release, the kernel log's markers and the
// named tasks; makedumpfile for the kernel log and re-filtering at -d 31;
// drgn for the release, the named tasks and the log. zstd (which
// makedumpfile 1.7.2 cannot read) goes to crash and drgn; dump level 1
// must make the file smaller and keep it readable.
func TestKdumpWriteE2E(t *testing.T) {
	ctx := guest.WithLog(context.Background(), t.Logf)
	type variant struct {
		name      string
		c         kdump.Compression
		level     pageclass.Level
		consumers []string
		// answers: every ldx command must answer on the kdump file as on
		// the ELF vmcore extracted from the same dump.
		answers bool
	}
	all := []string{"crash", "makedumpfile", "drgn"}
	for _, sc := range []struct {
		scenario string
		variants []variant
	}{
		{"6.1-4cpu-kaslr", []variant{{"zlib-d31", kdump.CompressZlib, 31, all, true}, {"zstd", kdump.CompressZstd, 0, []string{"crash", "drgn"}, false}}},
		{"6.1-la57-4cpu", []variant{{"zlib-d31", kdump.CompressZlib, 31, all, false}}},
		{"6.12-4cpu-kaslr", []variant{{"zlib-d31", kdump.CompressZlib, 31, all, true}, {"zstd", kdump.CompressZstd, 0, []string{"drgn"}, false}}},
		{"6.12-la57-2cpu", []variant{{"zlib", kdump.CompressZlib, 0, all, false}, {"zlib-d1", kdump.CompressZlib, 1, []string{"makedumpfile", "drgn"}, false}}},
	} {
		var spec guest.Spec
		var crashOK bool
		for _, s := range e2eScenarios {
			if s.name == sc.scenario {
				spec, crashOK = s.spec, s.crash
			}
		}
		t.Run(sc.scenario, func(t *testing.T) {
			art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), spec)
			if err != nil {
				t.Fatalf("preparing the guest: %v", err)
			}
			work := t.TempDir()
			var d0Size int64
			for _, v := range sc.variants {
				t.Run(v.name, func(t *testing.T) {
					out := filepath.Join(work, v.name+".kdump")
					sum, err := Run(ctx, Options{Input: art.Dump, Output: out, OutputFormat: FormatKdump, Compression: v.c, DumpLevel: v.level})
					if err != nil {
						t.Fatalf("ldx extract --format kdump: %v", err)
					}
					defer os.Remove(out)
					k := sum.Kdump
					t.Logf("e2e_kdump %s/%s: %d MiB of memory -> %d MiB file; %d pages written (%d raw), %d zero, %d excluded; %.2fs",
						sc.scenario, v.name, sum.Memory>>20, sum.OutputSize>>20, k.Pages, k.Raw, k.ZeroPages, k.Excluded, sum.Duration.Seconds())
					if k.Pages+k.ZeroPages+k.Excluded != sum.Memory/pageSize {
						t.Errorf("%d pages written, %d zero and %d excluded, of %d pages of memory", k.Pages, k.ZeroPages, k.Excluded, sum.Memory/pageSize)
					}
					if v.level&^pageclass.Zero != 0 && (sum.Filter == nil || sum.Filter.Excluded.Free == 0 || k.Excluded == 0) {
						t.Errorf("dump level %d left out no free pages: %+v", v.level, sum.Filter)
					}
					if v.answers {
						ref := filepath.Join(work, "ref.vmcore")
						if _, err := Run(ctx, Options{Input: art.Dump, Output: ref}); err != nil {
							t.Fatalf("ldx extract (ELF): %v", err)
						}
						want, got := kdumpAnswers(t, ref, art), kdumpAnswers(t, out, art)
						os.Remove(ref)
						for _, k := range sortedKeys(want) {
							if got[k] != want[k] {
								t.Errorf("ldx %s differs on the kdump file from the ELF vmcore of the same dump:\n%s\nwant\n%s", k, tail(got[k], 15), tail(want[k], 15))
							}
						}
						t.Logf("e2e_kdump %s/%s: %d ldx answers identical to the ELF vmcore's (%s)", sc.scenario, v.name, len(want), strings.Join(sortedKeys(want), ", "))
					}
					switch {
					case v.level == 0:
						d0Size = sum.OutputSize
					case d0Size > 0 && sum.OutputSize >= d0Size:
						t.Errorf("dump level %d: %d bytes, not smaller than dump level 0's %d", v.level, sum.OutputSize, d0Size)
					}
					for _, c := range v.consumers {
						switch c {
						case "crash":
							if crashOK {
								checkKdumpCrash(t, out, art)
							}
						case "makedumpfile":
							checkMakedumpfile(t, out, art)
						case "drgn":
							checkKdumpDrgn(t, out, art)
						}
					}
				})
			}
		})
	}
}

// checkKdumpCrash: one crash run: sys (the release), log (the guest's
// markers) and the task list walked from init_task (the named processes;
// see checkCrash for why not ps).
func checkKdumpCrash(t *testing.T, vmcore string, art *guest.Artefacts) {
	script := filepath.Join(t.TempDir(), "crash.cmds")
	os.WriteFile(script, []byte("sys\nlog\nlist task_struct.tasks -s task_struct.comm -h init_task\nexit\n"), 0o644)
	out := runTool(t, 5*time.Minute, "crash", "-s", "--no_scroll", "-i", script, art.Vmlinux, vmcore)
	wantAll(t, "crash", out, "RELEASE: "+art.Facts.Release)
	wantAll(t, "crash log", out, art.Facts.Markers...)
	wantAll(t, "crash task list", out, namedProcesses(art)...)
	for _, bad := range []string{"WARNING: vmcore may be truncated", "do not match", "read error", "page excluded"} {
		if strings.Contains(out, bad) {
			t.Errorf("crash says %q:\n%s", bad, tail(out, 30))
		}
	}
}

// checkKdumpDrgn: one drgn run: the release through init_uts_ns, the
// named tasks through for_each_task, the markers in get_dmesg.
func checkKdumpDrgn(t *testing.T, vmcore string, art *guest.Artefacts) {
	script := filepath.Join(t.TempDir(), "check.py")
	os.WriteFile(script, []byte(`
import sys
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.printk import get_dmesg
print("RELEASE", prog["init_uts_ns"].name.release.string_().decode())
for task in for_each_task(prog):
    print("TASK", task.pid.value_(), task.comm.string_().decode())
sys.stdout.write(get_dmesg(prog).decode(errors="replace"))
`), 0o644)
	out := runTool(t, 5*time.Minute, "drgn", "-q", "-c", vmcore, "-s", art.Vmlinux, script)
	wantAll(t, "drgn", out, "RELEASE "+art.Facts.Release)
	for _, p := range namedProcesses(art) {
		wantAll(t, "drgn task list", out, " "+p+"\n")
	}
	wantAll(t, "drgn get_dmesg", out, art.Facts.Markers...)
}
