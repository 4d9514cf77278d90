package verify

import (
	"bytes"
	"fmt"

	"ldx/vmcoreinfo"
)

// consumerKernels are the newest kernels each consumer version is known
// to read: a consumer older than the kernel it is given meets structures
// it does not know and stops. Only versions the project's test bed has run
// are listed; for others nothing is claimed.
var consumerKernels = []struct {
	consumer Consumer
	versions string             // the consumer versions the row is about
	newest   vmcoreinfo.Version // the newest kernel series they read
	what     string
}{
	// crash 8.0.2 (Debian 12) was released with Linux 6.1 support; on the
	// test bed's 6.12 kernels it stops during start-up with a vmlinux.
	{Crash, "<8.0.3", vmcoreinfo.Version{Major: 6, Minor: 1}, "stops during start-up: it predates this kernel's structures"},
}

// dumpRelease is the dumped kernel's release: OSRELEASE, else what
// init_uts_ns holds in the dumped memory.
func (c *facts) dumpRelease() (string, bool) {
	if c.info == nil {
		return "", false
	}
	if rel, ok := c.info.OSRelease(); ok {
		return rel, true
	}
	uts, ok1 := c.info.Symbol("init_uts_ns")
	name, ok2 := c.info.Offset("uts_namespace.name")
	if !ok1 || !ok2 || c.mkd == nil {
		return "", false
	}
	buf := make([]byte, 65)
	if _, err := c.mkd.ReadAt(buf, int64(uts+name+utsReleaseOff)); err != nil {
		return "", false
	}
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return string(buf), len(buf) > 0
}

// ifKnown marks an effect that holds only for known consumer versions.
func (e Effect) ifKnown() Effect { e.IfVersionKnown = true; return e }

// kernelSupportChecks is G1: whether each consumer version knows the dumped
// kernel at all. It is no defect of the dump, so it never fails the dump's
// own verdict beyond saying which tool to use instead.
func kernelSupportChecks(f *facts) []Result {
	c := f.newGroup()
	c.checkKernelSupport()
	return c.out
}

func (c *group) checkKernelSupport() {
	rel, ok := c.dumpRelease()
	if !ok {
		c.skip(G1, "the kernel release is unknown (no OSRELEASE, init_uts_ns unreadable)")
		return
	}
	v, ok := vmcoreinfo.ParseVersion(rel)
	if !ok {
		c.skip(G1, fmt.Sprintf("the kernel release %q has no version number", rel))
		return
	}
	var effects []Effect
	var found string
	for _, k := range consumerKernels {
		if k.newest.Less(v) {
			effects = append(effects, eff(k.consumer, Fatal, fmt.Sprintf("%s %s: %s (newest known: %d.%d)", k.consumer, k.versions, k.what, k.newest.Major, k.newest.Minor)).ver(k.versions).ifKnown())
			found += fmt.Sprintf("%s %s reads kernels up to %d.%d; this is %s. ", k.consumer, k.versions, k.newest.Major, k.newest.Minor, rel)
		}
	}
	if len(effects) == 0 {
		c.pass(G1, fmt.Sprintf("kernel %s: no known consumer version too old for it", rel))
		return
	}
	c.failSev(G1, Info, found[:len(found)-1], "use a newer release of the consumer (the dump itself is fine)", nowhere, effects...)
}
