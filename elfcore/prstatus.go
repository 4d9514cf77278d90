package elfcore

import (
	"encoding/binary"
	"fmt"
)

// PRStatusSize is sizeof(struct elf_prstatus) on x86_64: the descriptor
// size of NT_PRSTATUS notes. crash finds the registers relative to the end
// of the descriptor, so it must be exactly 336; libkdumpfile refuses the
// whole dump below 328.
const PRStatusSize = 336

// Offsets inside the x86_64 elf_prstatus descriptor.
const (
	prPidOff    = 32  // pr_pid (after pr_info 12, pr_cursig 2+2 pad, pr_sigpend 8, pr_sighold 8)
	prRegOff    = 112 // pr_reg: 27 x u64 in user_regs_struct order
	prFPValidOf = prRegOff + NumRegs*8
)

// NumRegs is the number of registers in x86_64 user_regs_struct.
const NumRegs = 27

// Register indexes in user_regs_struct, whose order is r15 r14 r13 r12
// rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss
// fs_base gs_base ds es fs gs: only the two a dump's producer is told by
// are named.
const (
	RegRIP = 16
	RegRSP = 19
)

// PRStatus is the part of an x86_64 NT_PRSTATUS descriptor that kernel
// dump consumers read: the pid (drgn maps live-dump CPUs by pr_pid ==
// cpu+1) and the registers. Raw keeps the whole descriptor so that
// re-encoding a parsed note loses nothing.
type PRStatus struct {
	Pid  uint32
	Regs [NumRegs]uint64
	Raw  [PRStatusSize]byte
}

// ParsePRStatus decodes a 336-byte x86_64 NT_PRSTATUS descriptor.
func ParsePRStatus(desc []byte) (*PRStatus, error) {
	if len(desc) != PRStatusSize {
		return nil, fmt.Errorf("elfcore: NT_PRSTATUS descriptor is %d bytes, want %d (x86_64 elf_prstatus)", len(desc), PRStatusSize)
	}
	var s PRStatus
	copy(s.Raw[:], desc)
	s.Pid = binary.LittleEndian.Uint32(desc[prPidOff:])
	for i := range s.Regs {
		s.Regs[i] = binary.LittleEndian.Uint64(desc[prRegOff+8*i:])
	}
	return &s, nil
}

// Bytes encodes the descriptor: Raw with Pid and Regs written over it.
func (s *PRStatus) Bytes() []byte {
	b := s.Raw
	binary.LittleEndian.PutUint32(b[prPidOff:], s.Pid)
	for i, r := range s.Regs {
		binary.LittleEndian.PutUint64(b[prRegOff+8*i:], r)
	}
	return b[:]
}

// Note wraps the descriptor in a "CORE" NT_PRSTATUS note.
func (s *PRStatus) Note() Note { return Note{Name: NameCore, Type: NT_PRSTATUS, Desc: s.Bytes()} }
