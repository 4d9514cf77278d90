package guest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"ldx/elfcore"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Dump writes an ELF dump of the guest's memory to path with QMP
// dump-guest-memory (paging:false, so PT_LOADs are physical RAM blocks with
// p_vaddr = p_paddr, exactly QEMU's "simple" layout) and checks that it
// carries a VMCOREINFO note. QEMU stops the guest for the dump and resumes
// it afterwards, so the image is consistent. The file is mode 0600: it is a
// full memory image.
func (g *Guest) Dump(ctx context.Context, path string) error {
	if err := g.DumpAs(ctx, path, "elf"); err != nil {
		return err
	}
	vmci, err := ReadVMCOREINFO(path)
	if err != nil {
		return err
	}
	if !strings.Contains(vmci, "OSRELEASE=") {
		return fmt.Errorf("%s: VMCOREINFO note has no OSRELEASE", path)
	}
	return nil
}

// DumpAs writes a dump of the guest's memory to path in one of QEMU's
// dump-guest-memory formats: "elf", or "kdump-zlib", "kdump-lzo",
// "kdump-snappy" — which QEMU 7.2 writes as makedumpfile's flattened
// stream, with the phys_base it guesses (wrong under KASLR) in the
// sub-header; that is the point of keeping them: users have such files.
func (g *Guest) DumpAs(ctx context.Context, path, format string) error {
	g.mu.Lock()
	q := g.qmp
	g.mu.Unlock()
	if q == nil {
		return errors.New("guest has no QMP connection")
	}
	return qmpDump(ctx, q, path, format, g.QEMULog, true)
}

// qmpDump runs dump-guest-memory through q and waits for it to complete;
// qemuLog, if set, is quoted when the dump fails. With resume, a guest that
// ran before the dump is also waited for until it runs again (for a guest
// that is dumped again); a guest about to be stopped need not be.
func qmpDump(ctx context.Context, q *qmpClient, path, format, qemuLog string, resume bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	// Create it first so the mode does not depend on QEMU or the umask.
	f, err := os.OpenFile(abs, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if err := os.Chmod(abs, 0o600); err != nil {
		return err
	}
	wasRunning := false
	if resume {
		if wasRunning, _, err = vmStatus(ctx, q); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if _, err := q.execute(ctx, "dump-guest-memory", map[string]any{
		"paging": false, "protocol": "file:" + abs, "detach": true, "format": format,
	}); err != nil {
		return err
	}
	for {
		raw, err := q.execute(ctx, "query-dump", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			Completed int64  `json:"completed"`
			Total     int64  `json:"total"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("query-dump: %w", err)
		}
		if st.Status == "completed" {
			// QEMU 7.2 marks the dump completed before its dump thread
			// has closed the file and resumed the guest; a second
			// dump-guest-memory issued in that window reinitialises the
			// state the thread is still cleaning up. Wait for the resume.
			if wasRunning {
				if err := waitRunning(ctx, q); err != nil {
					return err
				}
			}
			break
		}
		if st.Status == "failed" {
			var b []byte
			if qemuLog != "" {
				b, _ = os.ReadFile(qemuLog)
			}
			return fmt.Errorf("dump-guest-memory failed: %s", tail(string(b), 1000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	st, _ := os.Stat(abs)
	logf(ctx, "dumped %d MiB (%s) to %s in %s", st.Size()>>20, format, abs, time.Since(t0).Round(time.Millisecond))
	return nil
}

// vmStatus returns whether the guest runs, and QEMU's name for its state.
func vmStatus(ctx context.Context, q *qmpClient) (bool, string, error) {
	raw, err := q.execute(ctx, "query-status", nil)
	if err != nil {
		return false, "", err
	}
	var st struct {
		Running bool   `json:"running"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return false, "", fmt.Errorf("query-status: %w", err)
	}
	return st.Running, st.Status, nil
}

// waitRunning waits, up to 30 s, for the guest to run again after a dump.
func waitRunning(ctx context.Context, q *qmpClient) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		running, status, err := vmStatus(ctx, q)
		if err != nil {
			return err
		}
		if running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the guest did not resume after the dump (status %q)", status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ReadVMCOREINFO returns the text of the VMCOREINFO note of an ELF64
// little-endian core file. It reads only the headers and the PT_NOTE
// segments, with a parser of its own: QEMU 7.2's output has a wrong
// e_ehsize and PN_XNUM section headers that general ELF readers may reject,
// and this is the one fact tests need before anything else.
func ReadVMCOREINFO(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var eh [64]byte
	if _, err := io.ReadFull(f, eh[:]); err != nil {
		return "", fmt.Errorf("%s: ELF header: %w", path, err)
	}
	if !bytes.Equal(eh[:4], []byte("\x7fELF")) {
		return "", fmt.Errorf("%s: not an ELF file", path)
	}
	if eh[4] != 2 || eh[5] != 1 {
		return "", fmt.Errorf("%s: not ELF64 little-endian", path)
	}
	le := binary.LittleEndian
	phoff := le.Uint64(eh[32:])
	shoff := le.Uint64(eh[40:])
	phentsize := uint64(le.Uint16(eh[54:]))
	phnum := uint64(le.Uint16(eh[56:]))
	if phentsize < 56 {
		return "", fmt.Errorf("%s: e_phentsize %d", path, phentsize)
	}
	if phnum == 0xffff { // PN_XNUM: the real count is section header 0's sh_info
		var sh [64]byte
		if _, err := f.ReadAt(sh[:], int64(shoff)); err != nil {
			return "", fmt.Errorf("%s: PN_XNUM section header: %w", path, err)
		}
		phnum = uint64(le.Uint32(sh[44:]))
	}
	ph := make([]byte, phentsize)
	for i := uint64(0); i < phnum; i++ {
		if _, err := f.ReadAt(ph, int64(phoff+i*phentsize)); err != nil {
			return "", fmt.Errorf("%s: program header %d: %w", path, i, err)
		}
		if le.Uint32(ph[0:]) != 4 { // PT_NOTE
			continue
		}
		off, size := le.Uint64(ph[8:]), le.Uint64(ph[32:])
		if size > 64<<20 {
			return "", fmt.Errorf("%s: PT_NOTE of %d bytes", path, size)
		}
		notes := make([]byte, size)
		if _, err := f.ReadAt(notes, int64(off)); err != nil {
			return "", fmt.Errorf("%s: notes: %w", path, err)
		}
		if d, ok := elfcore.FindNote(notes, elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO); ok {
			return string(bytes.TrimRight(d, "\x00")), nil
		}
	}
	return "", fmt.Errorf("%s: no VMCOREINFO note (was qemu_fw_cfg loaded in the guest?)", path)
}

// VMCOREINFOValue returns the value of key (e.g. "OSRELEASE") in a
// VMCOREINFO text, and whether it was present.
func VMCOREINFOValue(vmcoreinfo, key string) (string, bool) {
	for _, l := range strings.Split(vmcoreinfo, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v, true
		}
	}
	return "", false
}
