package guest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func note(name string, typ uint32, desc []byte) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, uint32(len(name)+1))
	b = le.AppendUint32(b, uint32(len(desc)))
	b = le.AppendUint32(b, typ)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, make([]byte, pad4(len(name)+1))...)
	b = append(b, desc...)
	return append(b, make([]byte, pad4(len(desc)))...)
}

// fakeCore builds a minimal ELF64 core: header, two phdrs (an empty PT_LOAD,
// then the PT_NOTE), one section header, notes. With xnum the phdr count
// goes through section header 0 as with PN_XNUM.
func fakeCore(notes []byte, xnum bool) []byte {
	le := binary.LittleEndian
	const phoff, shoff = 64, 64 + 2*56
	notesOff := uint64(shoff + 64)
	b := make([]byte, notesOff)
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 4)  // ET_CORE
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint64(b[32:], phoff)
	le.PutUint64(b[40:], shoff)
	le.PutUint16(b[52:], 8) // QEMU 7.2's wrong e_ehsize
	le.PutUint16(b[54:], 56)
	le.PutUint16(b[56:], 2)
	if xnum {
		le.PutUint16(b[56:], 0xffff)
		le.PutUint16(b[58:], 64)
		le.PutUint16(b[60:], 1)
		le.PutUint32(b[shoff+44:], 2) // sh_info = real phnum
	}
	le.PutUint32(b[phoff:], 1) // PT_LOAD first: the reader must look past it
	ph := b[phoff+56:]
	le.PutUint32(ph[0:], 4) // PT_NOTE
	le.PutUint64(ph[8:], notesOff)
	le.PutUint64(ph[32:], uint64(len(notes)))
	return append(b, notes...)
}

func TestReadVMCOREINFO(t *testing.T) {
	vmci := "OSRELEASE=6.1.0-56-cloud-amd64\nPAGESIZE=4096\n"
	notes := append(note("CORE", 1, make([]byte, 336)), note("QEMU", 0, make([]byte, 10))...)
	withVMCI := append(append([]byte{}, notes...), note("VMCOREINFO", 0, []byte(vmci))...)
	tests := []struct {
		name string
		file []byte
		want string // VMCOREINFO text, or error substring prefixed with "!"
	}{
		{"plain", fakeCore(withVMCI, false), vmci},
		{"PN_XNUM", fakeCore(withVMCI, true), vmci},
		{"no VMCOREINFO", fakeCore(notes, false), "!no VMCOREINFO"},
		{"truncated note", fakeCore(withVMCI[:len(withVMCI)-8], false), "!no VMCOREINFO"},
		{"not ELF", []byte("hello, this is not an ELF file at all, but it is long enough......"), "!not an ELF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "core")
			if err := os.WriteFile(p, tt.file, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadVMCOREINFO(p)
			if want, isErr := strings.CutPrefix(tt.want, "!"); isErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err %v, want %q", err, want)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			if v, ok := VMCOREINFOValue(got, "OSRELEASE"); !ok || v != "6.1.0-56-cloud-amd64" {
				t.Fatalf("OSRELEASE %q %v", v, ok)
			}
		})
	}
}
