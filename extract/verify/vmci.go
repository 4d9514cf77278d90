package verify

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"ldx/elfcore/kernel/x86"
	"ldx/vmcoreinfo"
)

// lineProblem is one line of VMCOREINFO text that a strict parser (drgn,
// makedumpfile) does not read as the kernel meant it.
type lineProblem struct {
	line int    // 1-based
	off  int    // offset in the text
	key  string // the line's key, if it has one
	kind string // "nul", "cr", "no-newline", "empty", "malformed", "garbage"
	msg  string
}

// lineReport is what scanLines found.
type lineReport struct {
	// info holds every line a consumer can still recognise (keys of
	// lines with a stray CR or a leading NUL run included), so that the
	// key checks see what is present and Lint what is malformed.
	info     *vmcoreinfo.Info
	problems []lineProblem
	// ignored counts the bytes after the text stopped being text (K-1:
	// the note ran into unrelated memory).
	ignored int
}

// scanLines splits VMCOREINFO text the way consumers meet it, line by line,
// instead of stopping at the first defect as vmcoreinfo.ParseLenient does:
// makedumpfile and drgn look each key up in the whole text, so one bad line
// does not hide the ones after it — except where the text stops being text.
func scanLines(text []byte) *lineReport {
	lr := &lineReport{}
	var kept bytes.Buffer
	pos, lineNo := 0, 0
	for pos < len(text) {
		lineNo++
		nl := bytes.IndexByte(text[pos:], '\n')
		noNL := nl < 0
		if noNL {
			nl = len(text) - pos
		}
		line := text[pos : pos+nl]
		start := pos
		pos += nl + 1
		add := func(kind, key, msg string) {
			lr.problems = append(lr.problems, lineProblem{line: lineNo, off: start, key: key, kind: kind, msg: msg})
		}
		if z := len(line) - len(bytes.TrimLeft(line, "\x00")); z > 0 {
			if z == len(line) && (noNL || bytes.Count(text[start:], []byte{0}) == len(text)-start) {
				add("garbage", "", fmt.Sprintf("%d NUL bytes to the end of the note", len(text)-start))
				lr.ignored = len(text) - start
				break
			}
			add("nul", keyOf(line[z:]), fmt.Sprintf("%d NUL bytes before the line (a repeated livedump in one boot leaves them before CRASHTIME, K-6); makedumpfile and drgn do not see its key", z))
			line = line[z:]
		}
		if bytes.HasSuffix(line, []byte("\r")) {
			line = line[:len(line)-1]
			add("cr", keyOf(line), "CRLF line ending")
		}
		if len(line) == 0 {
			add("empty", "", "empty line")
			continue
		}
		if i := bytes.IndexFunc(line, func(r rune) bool { return r < 0x20 || r >= 0x7f }); i >= 0 {
			add("garbage", keyOf(line), fmt.Sprintf("byte %#02x at offset %d: the text runs into other data; %d bytes from here on are not text", line[i], start+i, len(text)-start))
			lr.ignored = len(text) - start
			break
		}
		eq := bytes.IndexByte(line, '=')
		if eq <= 0 || vmcoreinfo.ValidLine(string(line[:eq]), string(line[eq+1:])) != nil {
			add("malformed", "", fmt.Sprintf("not KEY=VALUE: %q", truncate(string(line), 40)))
			continue
		}
		if noNL {
			add("no-newline", string(line[:eq]), "the last line has no newline: drgn ignores it")
		}
		kept.Write(line)
		kept.WriteByte('\n')
	}
	lr.info, _ = vmcoreinfo.ParseLenient(kept.Bytes())
	return lr
}

func keyOf(line []byte) string {
	if i := bytes.IndexByte(line, '='); i > 0 {
		return string(line[:i])
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// dmesgCritical are the memory-model keys makedumpfile's initial() cannot
// do without, whatever the mode (get_mem_type, get_mem_section,
// check_release); the rest of D12 serves -d filtering only.
var dmesgCritical = map[string]bool{
	"SYMBOL(mem_section)": true, "SIZE(mem_section)": true, "OFFSET(mem_section.section_mem_map)": true,
	"SIZE(page)": true, "OFFSET(page.flags)": true, "OFFSET(page._refcount)": true, "OFFSET(page.mapping)": true,
	vmcoreinfo.KeyInitUtsNs: true,
	// Not OFFSET(uts_namespace.name): check_release falls back to a
	// built-in offset without it.
}

// parsers returns the consumers that read key and reject a malformed
// value of it (makedumpfile's and drgn's strict number readers), from the
// table of vmcoreinfo.Readers; OSRELEASE, which both read as text, too.
func parsers(key string) []Consumer {
	var out []Consumer
	seen := map[Consumer]bool{}
	add := func(k Consumer) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if key == vmcoreinfo.KeyOSRelease {
		return []Consumer{Makedumpfile, Drgn}
	}
	for _, r := range vmcoreinfo.Readers(key) {
		switch {
		case r.PresenceOnly || r.Versions != "":
		case r.Consumer == vmcoreinfo.Makedumpfile:
			add(Makedumpfile)
		case r.Consumer == vmcoreinfo.Drgn:
			add(Drgn)
		}
	}
	return out
}

// valueEffects applies each consumer's own parser (vmcoreinfo.ParseAll)
// to the value of key and compares what it gets with what the kernel
// meant (vmcoreinfo.KernelValue). It returns an effect for each consumer
// that rejects, misreads or drops the value, and a description of what
// every consumer makes of it. modelled is false when no consumer's reader
// for key is known (text keys, keys only other consumers read).
func valueEffects(key, value string) (effects []Effect, desc []string, modelled bool) {
	rs := vmcoreinfo.ParseAll(key, value)
	if len(rs) == 0 {
		return nil, nil, false
	}
	want, have := vmcoreinfo.KernelValue(key, value)
	for _, r := range rs {
		desc = append(desc, r.Describe())
		o, sev := r.Assess(want, have)
		if o == vmcoreinfo.ReadsRight {
			continue
		}
		what := fmt.Sprintf("%s=%q: %s", key, value, r.Describe())
		switch {
		case o == vmcoreinfo.Rejects && r.Consumer == vmcoreinfo.Makedumpfile:
			what += "; read_vmcoreinfo fails, and with it the whole run"
		case o == vmcoreinfo.Rejects && r.Consumer == vmcoreinfo.Drgn:
			what += "; the core does not open"
		case o == vmcoreinfo.Misreads && have:
			what += fmt.Sprintf(", not the kernel's %s", kernelValueText(r, want))
		}
		e := eff(r.Consumer, sev, what)
		if r.Versions != "" {
			e = e.ver(r.Versions)
		}
		if r.NoVmlinux {
			e = e.onlyNovm()
		}
		effects = append(effects, e)
	}
	desc = append(desc, vmcoreinfo.NotReadBy(rs)...)
	return effects, desc, true
}

// kernelValueText formats the kernel's value the way r's value is shown.
func kernelValueText(r vmcoreinfo.Reading, want uint64) string {
	r.Got = want
	if vmcoreinfo.KindOf(r.Key) == vmcoreinfo.SignedValue {
		r.Signed = true
	}
	return r.FormatGot()
}

// vmcoreinfoChecks is group D: the VMCOREINFO text, line by line and key
// by key.
func vmcoreinfoChecks(f *facts) []Result {
	c := f.newGroup()
	c.checkVMCOREINFO()
	return c.out
}

func (c *group) checkVMCOREINFO() {
	if c.info == nil {
		for _, id := range []ID{D1, D2, D3, D4, D5, D6, D7, D8, D9, D10, D11, D12, D13} {
			c.skip(id, "no VMCOREINFO note (C3)")
		}
		return
	}
	descOff := c.vmci.Off + 24 // "VMCOREINFO\0\0" after the 12-byte header
	c.checkLines(descOff)

	lint := c.info.Lint()
	byRule := map[string][]vmcoreinfo.Problem{}
	for _, p := range lint {
		rule := p.Rule
		if !strings.HasPrefix(rule, "D") || rule == "D14" || rule == "D1" {
			rule = "D2"
		}
		byRule[rule] = append(byRule[rule], p)
	}
	c.checkValueFormats(byRule["D2"], descOff)

	for _, rule := range []ID{D3, D4, D5, D6, D7, D8, D9, D10, D11, D12, D13} {
		c.checkKeys(rule, c.missing[string(rule)], byRule[string(rule)])
	}
}

// checkLines is D1.
func (c *group) checkLines(descOff int64) {
	lr := c.lines
	if len(lr.problems) == 0 {
		c.pass(D1, fmt.Sprintf("%d lines, each KEY=VALUE\\n", c.info.Len()))
		return
	}
	var msgs []string
	var effects []Effect
	worst := map[Consumer]Severity{}
	add := func(k Consumer, s Severity, what string) {
		if s > worst[k] {
			worst[k] = s
			effects = slices.DeleteFunc(effects, func(e Effect) bool { return e.Consumer == k })
			effects = append(effects, eff(k, s, what))
		}
	}
	for _, p := range lr.problems {
		msgs = append(msgs, fmt.Sprintf("line %d: %s", p.line, p.msg))
		switch p.kind {
		case "garbage":
			add(Makedumpfile, Degraded, "reads nothing after the text stops being text")
			add(Drgn, Degraded, "reads nothing after the text stops being text")
		case "cr":
			// Every consumer's value runs to the '\n': the CR is part of it.
			if v, ok := c.info.Get(p.key); ok {
				if effs, _, ok := valueEffects(p.key, v+"\r"); ok {
					for _, e := range effs {
						if e.Versions == "" && e.Scope == "" {
							add(e.Consumer, e.Severity, e.What)
						}
					}
					break
				}
			}
			for _, k := range parsers(p.key) {
				add(k, Fatal, fmt.Sprintf("rejects %s's value with the CR after it", p.key))
			}
		case "nul":
			for _, k := range parsers(p.key) {
				if p.key != vmcoreinfo.KeyCrashTime {
					add(k, Fatal, fmt.Sprintf("does not find %s behind the NUL bytes", p.key))
				}
			}
			add(Makedumpfile, Cosmetic, "does not see the line behind the NUL bytes")
		case "no-newline":
			if slices.Contains(parsers(p.key), Drgn) {
				add(Drgn, Fatal, fmt.Sprintf("ignores the last line, %s, because it has no newline", p.key))
			} else {
				add(Drgn, Cosmetic, "ignores the last line because it has no newline")
			}
		default:
			add(Makedumpfile, Cosmetic, "skips lines it cannot parse")
		}
	}
	if len(msgs) > 4 {
		msgs = append(msgs[:4], fmt.Sprintf("… (%d problems)", len(lr.problems)))
	}
	p := lr.problems[0]
	fix := "`ldx extract` rewrites the text line by line in the kernel's format"
	if c.livedump {
		fix = "`ldx extract` takes the complete text from the dumped memory and removes NUL runs (K-1, K-6)"
	}
	c.failSev(D1, Cosmetic, strings.Join(msgs, "; "), fix, at(fmt.Sprintf("VMCOREINFO line %d", p.line), descOff+int64(p.off)), effects...)
}

// checkValueFormats is D2: each malformed value is run through the
// parsers of the consumers that read its key; a consumer that rejects or
// misreads it is affected, one that reads the kernel's value is not (the
// check still fails, cosmetic: the text is not in the kernel's format).
func (c *group) checkValueFormats(ps []vmcoreinfo.Problem, descOff int64) {
	if len(ps) == 0 {
		c.pass(D2, "every value in the kernel's format")
		return
	}
	var msgs []string
	var effects []Effect
	sev := Cosmetic
	byLine := map[int][]vmcoreinfo.Problem{}
	var lines []int
	for _, p := range ps {
		if _, ok := byLine[p.Line]; !ok {
			lines = append(lines, p.Line)
		}
		byLine[p.Line] = append(byLine[p.Line], p)
	}
	for _, n := range lines {
		lps := byLine[n]
		var parts []string
		for _, p := range lps {
			parts = append(parts, p.String())
		}
		effs, desc, ok := c.lineEffects(lps)
		effects = append(effects, effs...)
		for _, e := range effs {
			sev = max(sev, e.Severity)
		}
		if !ok {
			for _, p := range lps {
				sev = max(sev, p.Severity)
			}
		}
		if len(desc) > 0 {
			parts = append(parts, strings.Join(desc, "; "))
		}
		msgs = append(msgs, strings.Join(parts, " — "))
	}
	if len(msgs) > 4 {
		msgs = append(msgs[:4], fmt.Sprintf("… (%d problems)", len(ps)))
	}
	c.failSev(D2, sev, strings.Join(msgs, "; "), "write the values as the kernel does (`ldx extract` keeps the kernel's text)",
		at(fmt.Sprintf("VMCOREINFO line %d", ps[0].Line), descOff+int64(c.lineOffset(ps[0].Line))), effects...)
}

// lineEffects is what the consumers make of the value of the line the
// problems ps (all of one line) are about: valueEffects for the keys whose
// readers are modelled; for the others (OSRELEASE and other text keys),
// the strict readers that look the key up, at the problem's severity.
func (c *facts) lineEffects(ps []vmcoreinfo.Problem) (effects []Effect, desc []string, modelled bool) {
	p := ps[0]
	if p.Line > 0 && p.Key != "" && p.Line <= c.info.Len() {
		if l := c.info.Line(p.Line - 1); l.Key == p.Key {
			if effects, desc, ok := valueEffects(l.Key, l.Value); ok {
				return effects, desc, true
			}
		}
	}
	seen := map[Consumer]bool{}
	for _, p := range ps {
		if p.Severity <= vmcoreinfo.Cosmetic {
			continue
		}
		for _, k := range parsers(p.Key) {
			if !seen[k] {
				seen[k] = true
				effects = append(effects, eff(k, p.Severity, fmt.Sprintf("rejects or misreads %s: %s", p.Key, p.Msg)))
			}
		}
	}
	return effects, nil, false
}

// lineOffset returns the offset in the note text of line n of c.info
// (approximate when lines were dropped or repaired; the first such
// problem is named in D1).
func (c *facts) lineOffset(n int) int {
	idx := bytes.Index(c.vmci.Desc, []byte(c.info.Line(max(n-1, 0)).String()))
	return max(idx, 0)
}

// keyNames lists the keys of requirements, with their alternatives.
func keyNames(rs []vmcoreinfo.Requirement) []string {
	var out []string
	for _, r := range rs {
		k := r.Key
		if len(r.Alt) > 0 {
			k += " (or " + strings.Join(r.Alt, ", ") + ")"
		}
		out = append(out, k)
	}
	return out
}

// checkKeys is D3–D13: the keys of one checklist row, missing or
// malformed, with what each consumer does without them.
func (c *group) checkKeys(rule ID, missing []vmcoreinfo.Requirement, lint []vmcoreinfo.Problem) {
	var effects []Effect
	var parts []string
	if len(missing) > 0 {
		names := keyNames(missing)
		if len(names) > 6 {
			names = append(names[:6], fmt.Sprintf("… (%d keys)", len(missing)))
		}
		parts = append(parts, "missing: "+strings.Join(names, ", "))
		effects = append(effects, c.missingEffects(rule, missing)...)
	}
	for _, p := range lint {
		effs, desc, _ := c.lineEffects([]vmcoreinfo.Problem{p})
		parts = append(parts, p.String())
		if len(desc) > 0 {
			parts[len(parts)-1] += " — " + strings.Join(desc, "; ")
		}
		effects = append(effects, effs...)
	}
	if len(parts) == 0 {
		c.pass(rule, c.presentSummary(rule))
		return
	}
	fix := "the kernel emits these keys; a VMCOREINFO without them was cut or rewritten: use the kernel's own text"
	if c.livedump {
		fix = "`ldx extract` recovers the complete VMCOREINFO from the dumped memory (K-1)"
	}
	sev := None
	if len(effects) == 0 {
		sev = Cosmetic
	}
	c.failSev(rule, sev, strings.Join(parts, "; "), fix, at("VMCOREINFO", c.vmci.Off+24), effects...)
}

// presentSummary describes the keys of a passing row.
func (c *facts) presentSummary(rule ID) string {
	get := func(k string) string {
		v, _ := c.info.Get(k)
		return k + "=" + v
	}
	switch rule {
	case D3:
		return get(vmcoreinfo.KeyOSRelease)
	case D4:
		return get(vmcoreinfo.KeyPageSize)
	case D5:
		return get(vmcoreinfo.KeySwapperPgDir)
	case D6:
		if c.info.Has(vmcoreinfo.KeyInitTopPgt) {
			return get(vmcoreinfo.KeyInitTopPgt)
		}
		return get(vmcoreinfo.KeyInitLevel4Pgt)
	case D7:
		return get(vmcoreinfo.KeyPhysBase)
	case D8:
		return get(vmcoreinfo.KeyKernelOffset) + ", " + get(vmcoreinfo.KeyStext)
	case D9:
		return get(vmcoreinfo.KeyPgtableL5)
	case D10:
		return get(vmcoreinfo.KeySmeMask)
	case D13:
		return get(vmcoreinfo.KeyBuildID)
	}
	return "all present"
}

// missingEffects says what each consumer does without the keys of a row.
func (c *facts) missingEffects(rule ID, missing []vmcoreinfo.Requirement) []Effect {
	has := func(key string) bool {
		for _, r := range missing {
			if r.Key == key {
				return true
			}
		}
		return false
	}
	switch rule {
	case D3:
		return []Effect{
			eff(Crash, Fatal, "`crash --osrelease` prints \"unknown\"; --log: \"cannot determine kernel version\" (with a vmlinux crash reads linux_banner instead)").onlyNovm(),
			eff(Makedumpfile, Fatal, "read_vmcoreinfo_basic_info fails: \"Invalid format in …\""),
			eff(Drgn, Fatal, "\"VMCOREINFO does not contain valid OSRELEASE\""),
			eff(Libkdumpfile, Degraded, "cannot tell the kernel version"),
		}
	case D4:
		return []Effect{
			eff(Makedumpfile, Fatal, "read_vmcoreinfo_basic_info fails without PAGESIZE"),
			eff(Drgn, Fatal, "\"VMCOREINFO does not contain valid PAGESIZE\""),
			eff(Crash, Cosmetic, "only `crash --log` needs it (\"cannot determine page size\")"),
		}
	case D5:
		return []Effect{eff(Drgn, Fatal, "\"VMCOREINFO does not contain valid swapper_pg_dir\": no page-table walks")}
	case D6:
		return []Effect{
			eff(Makedumpfile, Fatal, "every virtual read walks from it: \"Can't get the symbol of init_level4_pgt/init_top_pgt.\""),
			eff(Libkdumpfile, Fatal, "\"Cannot determine root page table\" (unless CR3 is known)"),
		}
	case D7:
		if c.image != nil {
			return []Effect{
				eff(Crash, Cosmetic, "derives phys_base from the kernel-image PT_LOAD (x86_64_calc_phys_base)"),
				eff(Makedumpfile, Cosmetic, "derives phys_base from the kernel-image PT_LOAD (get_phys_base_x86_64)"),
				eff(Drgn, Cosmetic, "reads the root table through the kernel-image segment instead"),
			}
		}
		return []Effect{
			eff(Crash, Fatal, "no kernel-image PT_LOAD to derive phys_base from: \"cannot determine physical base address: defaulting to 0\""),
			eff(Makedumpfile, Fatal, "no kernel-image PT_LOAD to derive phys_base from: every translation is wrong"),
			eff(Drgn, Fatal, "\"recursive address translation\": the root table is reachable neither physically nor virtually"),
			eff(Libkdumpfile, Fatal, "cannot map the kernel text"),
		}
	case D8:
		off, haveOff := c.info.KernelOffset()
		stext, haveStext := c.info.Symbol("_stext")
		kaslr := (haveOff && off != 0) || (haveStext && stext != x86.DefaultText) || (!haveOff && !haveStext)
		if !kaslr {
			return []Effect{eff(Crash, Cosmetic, "the kernel is not relocated (KERNELOFFSET 0), nothing to do")}
		}
		var e []Effect
		if has(vmcoreinfo.KeyKernelOffset) || has(vmcoreinfo.KeyStext) {
			e = append(e, eff(Crash, Fatal, "KERNELOFFSET enables its KASLR check and SYMBOL(_stext) gives the relocation (symbols.c kaslr_init, derive_kaslr_offset); without them the vmlinux stays unrelocated: \"vmlinux and DUMP do not match!\""))
		}
		if has(vmcoreinfo.KeyKernelOffset) {
			e = append(e, eff(Drgn, Fatal, "takes the vmlinux bias from KERNELOFFSET: every symbol resolves to its unrelocated address"))
		}
		return e
	case D9:
		return []Effect{
			eff(Crash, Degraded, "assumes 4-level paging (wrong on LA57 machines)"),
			eff(Makedumpfile, Degraded, "assumes 4-level paging (wrong on LA57 machines)"),
			eff(Drgn, Degraded, "assumes 4-level paging (wrong on LA57 machines)"),
			eff(Libkdumpfile, Degraded, "guesses the paging depth"),
		}
	case D10:
		return []Effect{
			eff(Makedumpfile, Degraded, "does not strip the SME bit from page-table entries (wrong on SME hosts)"),
			eff(Crash, Degraded, "does not strip the SME bit (wrong on SME hosts)"),
		}
	case D11:
		return []Effect{
			eff(Crash, Degraded, "falls back to built-in layout defaults"),
			eff(Makedumpfile, Degraded, "falls back to built-in layout defaults"),
			eff(Drgn, Degraded, "falls back to built-in sparsemem defaults"),
		}
	case D12:
		var critical, filtering []string
		for _, r := range missing {
			if dmesgCritical[r.Key] {
				critical = append(critical, r.Key)
			} else {
				filtering = append(filtering, r.Key)
			}
		}
		var e []Effect
		if len(critical) > 0 {
			e = append(e, eff(Makedumpfile, Fatal, fmt.Sprintf("initial() builds the mem_map and checks the release for -d 31 and --dump-dmesg alike; without %s: \"Can't distinguish the memory type.\" / \"Can't get the symbol of system_utsname.\"", strings.Join(critical, ", "))))
		} else if len(filtering) > 0 {
			e = append(e, eff(Makedumpfile, Degraded, fmt.Sprintf("without %s, -d filtering cannot classify some pages (--dump-dmesg is unaffected)", strings.Join(filtering, ", "))))
		}
		return e
	case D13:
		return []Effect{eff(Drgn, Degraded, "cannot match the vmlinux by build ID, only by OSRELEASE")}
	}
	return nil
}
