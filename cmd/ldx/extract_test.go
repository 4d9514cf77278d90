package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// deviceImage writes a synthetic livedump device image.
func deviceImage(t *testing.T, o kmodtest.SyntheticOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.img")
	run := &kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}, Start: time.Unix(1795680000, 0)}
	if _, err := kmodtest.WriteFile(path, kmodtest.NewSynthetic(o), run); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExtractCLI(t *testing.T) {
	img := deviceImage(t, kmodtest.SyntheticOptions{CPUs: 4})
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	os.WriteFile(exists, []byte("keep"), 0o644)
	notDump := filepath.Join(dir, "zeros")
	os.WriteFile(notDump, make([]byte, 1<<20), 0o644)
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		checkOut string
	}{
		{"ok", []string{"extract", "-q", img, "-o", filepath.Join(dir, "a")}, exitOK, "recovering 20 lost lines", "", filepath.Join(dir, "a")},
		{"json", []string{"extract", "-q", "--json", img, "-o", filepath.Join(dir, "b")}, exitOK, `"vmcoreinfo_source"`, "", filepath.Join(dir, "b")},
		{"no -o", []string{"extract", img}, exitUsage, "", "-o VMCORE is required", ""},
		{"bad flag", []string{"extract", "--nope", img}, exitUsage, "", "unknown flag", ""},
		{"two inputs", []string{"extract", img, img, "-o", "x"}, exitUsage, "", "accepts 1 arg", ""},
		{"missing input", []string{"extract", filepath.Join(dir, "none"), "-o", filepath.Join(dir, "c")}, exitBadInput, "", "no such file", ""},
		{"not a dump", []string{"extract", notDump, "-o", filepath.Join(dir, "d")}, exitBadInput, "", "no ELF header in page 0", ""},
		{"output exists", []string{"extract", "-q", img, "-o", exists}, exitOutputExist, "", "--force", ""},
		{"force", []string{"extract", "-q", "--force", img, "-o", exists}, exitOK, "wrote", "", exists},
		{"kdump", []string{"extract", "-q", "--format", "kdump", "-d", "1", img, "-o", filepath.Join(dir, "e")}, exitOK, "kdump-compressed, zlib, dump level 1", "", filepath.Join(dir, "e")},
		{"kdump json", []string{"extract", "-q", "--json", "--format", "kdump", "--compress", "zstd", img, "-o", filepath.Join(dir, "f")}, exitOK, `"compression": "zstd"`, "", filepath.Join(dir, "f")},
		{"compress needs kdump", []string{"extract", "--compress", "zstd", img, "-o", filepath.Join(dir, "g")}, exitUsage, "", "--compress needs --format kdump", ""},
		{"elf dump level", []string{"extract", "-q", "-d", "1", img, "-o", filepath.Join(dir, "h")}, exitOK, "dump level:", "", filepath.Join(dir, "h")},
		{"unknown compression", []string{"extract", "--format", "kdump", "--compress", "lzo", img, "-o", filepath.Join(dir, "g")}, exitUsage, "", "unknown compression", ""},
		{"unknown format", []string{"extract", "--format", "xml", img, "-o", filepath.Join(dir, "g")}, exitUsage, "", "unknown output format", ""},
		{"dump level out of range", []string{"extract", "--format", "kdump", "-d", "32", img, "-o", filepath.Join(dir, "g")}, exitUsage, "", "want 0-31", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stdout %q\nstderr %q\nwant %q / %q", stdout.String(), stderr.String(), tt.stdout, tt.stderr)
			}
			if tt.code != exitOK && stdout.Len() > 0 {
				t.Errorf("errors must go to stderr only; stdout: %q", stdout.String())
			}
			if tt.checkOut != "" {
				fi, err := os.Stat(tt.checkOut)
				if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 1<<20 {
					t.Errorf("output %v, %v", fi, err)
				}
			}
			if strings.Contains(tt.name, "json") {
				var v map[string]any
				if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || v["cpus"] != float64(4) {
					t.Errorf("--json output %v: %v", v, err)
				}
			}
		})
	}
	if b, _ := os.ReadFile(exists); string(b) == "keep" {
		t.Error("--force did not replace the output")
	}
}

var (
	ldxBinOnce sync.Once
	ldxBin     string
	ldxBinErr  error
)

// ldxBinary builds the ldx command once for tests that need a real process.
func ldxBinary(t *testing.T) string {
	ldxBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ldx-bin-")
		if err != nil {
			ldxBinErr = err
			return
		}
		ldxBin = filepath.Join(dir, "ldx")
		if out, err := exec.Command("go", "build", "-o", ldxBin, ".").CombinedOutput(); err != nil {
			ldxBinErr = &exec.ExitError{Stderr: out}
		}
	})
	if ldxBinErr != nil {
		t.Fatalf("building ldx: %v", ldxBinErr)
	}
	return ldxBin
}

// TestExtractInterrupt sends SIGINT to a running ldx extract: it must exit
// 130, say so, and leave neither the output nor any temporary file.
func TestExtractInterrupt(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed")
	}
	// An xz image decompresses slowly enough (pure Go) to be interrupted.
	img := deviceImage(t, kmodtest.SyntheticOptions{CPUs: 2, MemSize: 96 << 20})
	if out, err := exec.Command("xz", "-0", "-T2", img).CombinedOutput(); err != nil {
		t.Fatalf("xz: %v %s", err, out)
	}
	outDir := t.TempDir()
	cmd := exec.Command(ldxBinary(t), "extract", img+".xz", "-o", filepath.Join(outDir, "vmcore"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("exit %d (%v), want %d; stderr: %s", code, err, exitInterrupted, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted: %s", stderr.String())
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Errorf("left behind in the output directory: %v", ents)
	}
}
