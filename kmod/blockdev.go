package kmod

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// BlockDevice is the dump device as the block layer describes it.
type BlockDevice struct {
	// Path is as given; Resolved is absolute with symlinks resolved, and
	// is what the kernel is given as `output`.
	Path, Resolved string
	Node           DevNode
	// Name is the kernel's name (sdb, loop3, nvme0n1p2).
	Name string
	// SysDir is the device's directory under Paths.SysDevBlock.
	SysDir      string
	IsPartition bool
	// Parts are the partitions of a whole disk.
	Parts []BlockPart
	// Holders are the md/dm/LVM devices stacked on the device or one of
	// its partitions, with their dm names where known.
	Holders []string
	RO      bool
	// Serial and WWID identify the hardware, where sysfs says.
	Serial, WWID string
	// WriteZeroesMax and DiscardMax are the queue limits: non-zero when
	// the device can zero (or discard) a range without writing it.
	WriteZeroesMax, DiscardMax uint64
}

// BlockPart is a partition of the device.
type BlockPart struct {
	Name         string
	Major, Minor uint32
}

// probeDevice describes the device at path. A path that does not exist
// is an error; anything else that is not a block device is returned with
// Node.Block false, for the preflight check to refuse.
func probeDevice(h *Host, path string) (*BlockDevice, error) {
	d := &BlockDevice{Path: path}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if d.Resolved, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, err
	}
	if d.Node, err = h.StatDevice(d.Resolved); err != nil {
		return nil, err
	}
	if !d.Node.Block {
		return d, nil
	}
	d.SysDir = filepath.Join(h.Paths.SysDevBlock, fmt.Sprintf("%d:%d", d.Node.Major, d.Node.Minor))
	if _, err := os.Stat(d.SysDir); err != nil {
		return d, fmt.Errorf("%s: the block layer does not know device %d:%d: %w", path, d.Node.Major, d.Node.Minor, err)
	}
	d.Name = ueventName(d.SysDir)
	if _, err := os.Stat(filepath.Join(d.SysDir, "partition")); err == nil {
		d.IsPartition = true
	}
	diskDir := d.SysDir
	if d.IsPartition {
		if real, err := filepath.EvalSymlinks(d.SysDir); err == nil {
			diskDir = filepath.Dir(real)
		}
	} else {
		ents, _ := os.ReadDir(d.SysDir)
		for _, e := range ents {
			sub := filepath.Join(d.SysDir, e.Name())
			if _, err := os.Stat(filepath.Join(sub, "partition")); err != nil {
				continue
			}
			maj, min, ok := devNumber(filepath.Join(sub, "dev"))
			if ok {
				d.Parts = append(d.Parts, BlockPart{Name: e.Name(), Major: maj, Minor: min})
			}
		}
	}
	d.Holders = holders(d.SysDir)
	for _, p := range d.Parts {
		for _, hname := range holders(filepath.Join(d.SysDir, p.Name)) {
			d.Holders = append(d.Holders, hname+" on "+p.Name)
		}
	}
	if s, _ := readString(filepath.Join(d.SysDir, "ro")); s == "1" {
		d.RO = true
	}
	d.Serial, _ = readString(filepath.Join(diskDir, "device", "serial"))
	if d.WWID, _ = readString(filepath.Join(diskDir, "wwid")); d.WWID == "" {
		d.WWID, _ = readString(filepath.Join(diskDir, "device", "wwid"))
	}
	d.WriteZeroesMax = readUint(filepath.Join(diskDir, "queue", "write_zeroes_max_bytes"))
	d.DiscardMax = readUint(filepath.Join(diskDir, "queue", "discard_max_bytes"))
	return d, nil
}

func readUint(path string) uint64 {
	s, _ := readString(path)
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

func ueventName(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "uevent"))
	for _, l := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			return n
		}
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Base(real)
	}
	return filepath.Base(dir)
}

func devNumber(path string) (uint32, uint32, bool) {
	s, err := readString(path)
	if err != nil {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(s, ":")
	maj, e1 := strconv.ParseUint(a, 10, 32)
	min, e2 := strconv.ParseUint(b, 10, 32)
	return uint32(maj), uint32(min), ok && e1 == nil && e2 == nil
}

// holders lists a device's holders (dm-0 (vg-lv), md127).
func holders(dir string) []string {
	ents, _ := os.ReadDir(filepath.Join(dir, "holders"))
	var out []string
	for _, e := range ents {
		n := e.Name()
		if dm, _ := readString(filepath.Join(dir, "holders", n, "dm", "name")); dm != "" {
			n += " (" + dm + ")"
		}
		out = append(out, n)
	}
	return out
}

// names are the kernel names of the device and its partitions.
func (d *BlockDevice) names() []string {
	n := []string{d.Name}
	for _, p := range d.Parts {
		n = append(n, p.Name)
	}
	return n
}

// refersTo reports whether a path in /proc/mounts or /proc/swaps names
// the device or one of its partitions: by device number where the path
// can be stat'ed, else by kernel name.
func (d *BlockDevice) refersTo(h *Host, source string) bool {
	if !strings.HasPrefix(source, "/") {
		return false
	}
	if n, err := h.StatDevice(source); err == nil && n.Block {
		if n.Major == d.Node.Major && n.Minor == d.Node.Minor {
			return true
		}
		for _, p := range d.Parts {
			if n.Major == p.Major && n.Minor == p.Minor {
				return true
			}
		}
		return false
	}
	name := source
	if r, err := filepath.EvalSymlinks(source); err == nil {
		name = r
	}
	return slices.Contains(d.names(), filepath.Base(name))
}

// uses lists what on the system uses the device: mounts, swap, holders.
func (d *BlockDevice) uses(h *Host) []string {
	var out []string
	if b, err := os.ReadFile(h.Paths.Mounts); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			fs := strings.Fields(l)
			if len(fs) >= 2 && d.refersTo(h, unescapeMount(fs[0])) {
				out = append(out, fmt.Sprintf("%s is mounted on %s", fs[0], unescapeMount(fs[1])))
			}
		}
	}
	if b, err := os.ReadFile(h.Paths.Swaps); err == nil {
		for i, l := range strings.Split(string(b), "\n") {
			fs := strings.Fields(l)
			if i > 0 && len(fs) >= 1 && d.refersTo(h, unescapeMount(fs[0])) {
				out = append(out, fmt.Sprintf("%s is active swap", fs[0]))
			}
		}
	}
	for _, hd := range d.Holders {
		out = append(out, "held by "+hd+" (md, dm or LVM)")
	}
	return out
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// DiskStat is the part of /sys/block/…/stat that shows writes.
type DiskStat struct {
	WriteIOs, WriteSectors, InFlight uint64
}

// Stat reads the device's I/O counters.
func (d *BlockDevice) Stat() (DiskStat, error) {
	s, err := readString(filepath.Join(d.SysDir, "stat"))
	if err != nil {
		return DiskStat{}, err
	}
	fs := strings.Fields(s)
	if len(fs) < 9 {
		return DiskStat{}, fmt.Errorf("%s/stat: %d fields, want at least 9", d.SysDir, len(fs))
	}
	n := func(i int) uint64 { v, _ := strconv.ParseUint(fs[i], 10, 64); return v }
	return DiskStat{WriteIOs: n(4), WriteSectors: n(6), InFlight: n(8)}, nil
}
