package kmem

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
)

// roMem reads a physMem without growing it: absent pages read as zeros,
// so a streaming search over a large RAM range stays small.
type roMem struct{ m physMem }

func (r roMem) ReadAt(p []byte, off int64) (int, error) {
	for n := 0; n < len(p); {
		pa := uint64(off) + uint64(n)
		k := min(len(p)-n, int(pageSize-pa%pageSize))
		if pg := r.m[pa&^(pageSize-1)]; pg != nil {
			copy(p[n:n+k], pg[pa%pageSize:])
		} else {
			clear(p[n : n+k])
		}
		n += k
	}
	return len(p), nil
}

func (m physMem) write(pa uint64, b []byte) {
	for n := 0; n < len(b); {
		a := pa + uint64(n)
		n += copy(m.page(a)[a%pageSize:], b[n:])
	}
}

// testImage is a synthetic kernel image: link addresses like a Debian
// 6.1 vmlinux.
var testImage = ImageSymbols{
	Banner:     []byte("Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2\n\x00"),
	BannerAddr: 0xffffffff8211ffe0,
	TopPgt:     0xffffffff82a10000,
	Level4Pgt:  0xffffffff82a14000,
	Level3Pgt:  0xffffffff82a15000,
	Level2Pgt:  0xffffffff82a16000,
	PgtableL5:  0xffffffff82398490,
}

// negPB is a phys_base below zero: the image loaded below 16 MiB + offset.
var negPB = ^uint64(0x16e00000 - 1)

const (
	testText = 0xffffffff81000000
	testEnd  = 0xffffffff83830000
)

// kernelSetup describes one synthetic boot.
type kernelSetup struct {
	ko, physBase uint64
	l5           bool
	sme          uint64
	splitBanner  bool // map the banner's 2 MiB with a table of 4 KiB pages
	l5Var        uint32
	noL5Var      bool
}

// install writes the kernel image's page tables and banner into m, as
// __startup_64 leaves them: level2_kernel_pgt maps [_text, _end] of the
// randomised image with 2 MiB pages at virtual − __START_KERNEL_map +
// phys_base; the rest of the table is not present.
func (k kernelSetup) install(m physMem) {
	sum := k.ko + k.physBase
	img := func(link uint64) uint64 { return link - x86.KernelTextBase + sum }
	m.write(img(testImage.BannerAddr), testImage.Banner)
	if k.l5 {
		m.set(img(testImage.TopPgt)+511*8, img(testImage.Level4Pgt)|present|k.sme|0x62)
		m.set(img(testImage.Level4Pgt)+511*8, img(testImage.Level3Pgt)|present|k.sme|0x62)
	} else {
		m.set(img(testImage.TopPgt)+511*8, img(testImage.Level3Pgt)|present|k.sme|0x62)
	}
	m.set(img(testImage.Level3Pgt)+510*8, img(testImage.Level2Pgt)|present|k.sme|0x62)
	bannerPMD := (testImage.BannerAddr + k.ko - x86.KernelTextBase) / pmdSize
	for i := (testText + k.ko - x86.KernelTextBase) / pmdSize; i <= (testEnd+k.ko-x86.KernelTextBase)/pmdSize; i++ {
		pa := i*pmdSize + k.physBase
		if k.splitBanner && i == bannerPMD {
			pt := uint64(0x100000) // a page table below the image
			for j := range uint64(512) {
				m.set(pt+j*8, (pa+j*pageSize)|present|k.sme|0x163)
			}
			m.set(img(testImage.Level2Pgt)+i*8, pt|present|k.sme|0x63)
			continue
		}
		m.set(img(testImage.Level2Pgt)+i*8, pa|present|pse|k.sme|0x1e3)
	}
	if !k.noL5Var {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], k.l5Var)
		m.write(img(testImage.PgtableL5), b[:])
	}
}

func TestLocate(t *testing.T) {
	ram := []elfcore.Range{{Start: 0x1000, End: 0x9f000}, {Start: 0x100000, End: 0x40000000}}
	tests := []struct {
		name    string
		setup   []kernelSetup
		decoys  []uint64 // physical addresses of stray banner copies
		sym     func(*ImageSymbols)
		ram     []elfcore.Range
		want    *Location
		wantErr string
	}{
		{name: "4-level", setup: []kernelSetup{{ko: 0x11400000, physBase: 0x6600000}},
			want: &Location{KernelOffset: 0x11400000, PhysBase: 0x6600000}},
		{name: "5-level, phys_base below zero", setup: []kernelSetup{{ko: 0x1de00000, physBase: negPB, l5: true, l5Var: 1}},
			want: &Location{KernelOffset: 0x1de00000, PhysBase: negPB, L5: true}},
		{name: "no KASLR", setup: []kernelSetup{{ko: 0, physBase: 0}},
			want: &Location{}},
		{name: "SME bit in the entries", setup: []kernelSetup{{ko: 0x4200000, physBase: 0x3e00000, sme: 1 << 47}},
			want: &Location{KernelOffset: 0x4200000, PhysBase: 0x3e00000, SMEMask: 1 << 47}},
		{name: "banner in a 4 KiB-page table", setup: []kernelSetup{{ko: 0x2c000000, physBase: 0x1000000, splitBanner: true}},
			want: &Location{KernelOffset: 0x2c000000, PhysBase: 0x1000000}},
		{name: "printk and stale copies are refuted", setup: []kernelSetup{{ko: 0x11400000, physBase: 0x6600000}},
			decoys: []uint64{0x2345678, 0x3000000 + testImage.BannerAddr%pmdSize},
			want:   &Location{KernelOffset: 0x11400000, PhysBase: 0x6600000}},
		{name: "no variable: the shape decides", setup: []kernelSetup{{ko: 0x200000, physBase: 0x800000, l5: true, noL5Var: true}},
			sym:  func(s *ImageSymbols) { s.PgtableL5 = 0 },
			want: &Location{KernelOffset: 0x200000, PhysBase: 0x800000, L5: true}},
		{name: "__pgtable_l5_enabled contradicts the tables", setup: []kernelSetup{{ko: 0x200000, physBase: 0x800000, l5Var: 1}},
			wantErr: "__pgtable_l5_enabled is 1 but the page tables have 4 levels"},
		{name: "not this kernel", wantErr: "is nowhere in the dump's RAM"},
		{name: "only copies without page tables", decoys: []uint64{0x5000000 + testImage.BannerAddr%pmdSize},
			wantErr: "no kernel image page tables fit"},
		{name: "two images", setup: []kernelSetup{{ko: 0x11400000, physBase: 0x6600000}, {ko: 0x1000000, physBase: 0x2000000}},
			wantErr: "2 kernel images of this vmlinux"},
		{name: "image outside the RAM given", setup: []kernelSetup{{ko: 0x11400000, physBase: 0x6600000}},
			ram: []elfcore.Range{{Start: 0x100000, End: 0x10000000}}, wantErr: "nowhere in the dump's RAM"},
		{name: "not a banner", sym: func(s *ImageSymbols) { s.Banner = []byte("garbage") }, wantErr: "is not a linux_banner"},
		{name: "bad link address", sym: func(s *ImageSymbols) { s.TopPgt = 0x1000 }, wantErr: "init_top_pgt is not a kernel image address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := physMem{}
			for _, k := range tc.setup {
				k.install(m)
			}
			for _, d := range tc.decoys {
				m.write(d, testImage.Banner)
			}
			sym := testImage
			if tc.sym != nil {
				tc.sym(&sym)
			}
			r := ram
			if tc.ram != nil {
				r = tc.ram
			}
			got, err := Locate(context.Background(), roMem{m}, r, sym)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.BannerPhys = 0
			if *got != *tc.want {
				t.Fatalf("got %+v, want %+v", *got, *tc.want)
			}
			// The parameters translate the banner's runtime address.
			mem, err := New(roMem{m}, got.Params(sym))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(sym.Banner))
			if _, err := mem.ReadAt(buf, int64(sym.BannerAddr+got.KernelOffset)); err != nil || string(buf) != string(sym.Banner) {
				t.Fatalf("banner through the located tables: %q, %v", buf, err)
			}
		})
	}
}

// A kernel whose banner is not congruent to its link address modulo 2 MiB
// (an image mapped with 4 KiB pages) is found by the streaming search.
func TestLocatePageAligned(t *testing.T) {
	m := physMem{}
	const ko, pb = 0x11400000, 0x6600000 + 0x5000 // sum only page-aligned
	sum := uint64(ko + pb)
	img := func(link uint64) uint64 { return link - x86.KernelTextBase + sum }
	m.write(img(testImage.BannerAddr), testImage.Banner)
	m.set(img(testImage.TopPgt)+511*8, img(testImage.Level3Pgt)|present)
	m.set(img(testImage.Level3Pgt)+510*8, img(testImage.Level2Pgt)|present)
	va := testImage.BannerAddr + ko
	pt := uint64(0x200000)
	m.set(img(testImage.Level2Pgt)+((va-x86.KernelTextBase)/pmdSize)*8, pt|present)
	base := va &^ (pmdSize - 1)
	for j := range uint64(512) {
		m.set(pt+j*8, (base+j*pageSize-x86.KernelTextBase+pb)|present)
	}
	sym := testImage
	sym.PgtableL5 = 0
	got, err := Locate(context.Background(), roMem{m}, []elfcore.Range{{Start: 0, End: 0x20000000}}, sym)
	if err != nil {
		t.Fatal(err)
	}
	if got.KernelOffset != ko || got.PhysBase != pb {
		t.Fatalf("got KERNELOFFSET %#x phys_base %#x, want %#x %#x", got.KernelOffset, got.PhysBase, ko, pb)
	}
}

func TestLocateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Locate(ctx, roMem{physMem{}}, []elfcore.Range{{Start: 0, End: 1 << 40}}, testImage)
	if err == nil || err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
