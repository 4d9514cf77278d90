package vmcoreinfo

import (
	"fmt"
	"ldx/elfcore/kernel/x86"
	"sort"
	"strings"
)

// Problem is one finding of Lint.
type Problem struct {
	Line     int    // 1-based line number; 0 for the text as a whole
	Key      string // key concerned, if any
	Rule     string // row of package verify's checklist ("D1", "D2", …) or "kernel"
	Severity Severity
	Msg      string
}

func (p Problem) String() string {
	where := "text"
	if p.Line > 0 {
		where = fmt.Sprintf("line %d", p.Line)
	}
	if p.Key != "" {
		where += ": " + p.Key
	}
	return fmt.Sprintf("%s: %s (%s): %s", where, p.Severity, p.Rule, p.Msg)
}

// Kernel limits on the text (include/linux/crash_core.h,
// kernel/crash_core.c vmcoreinfo_append_str).
const (
	// MaxTextLen is VMCOREINFO_BYTES: the kernel stops appending there.
	MaxTextLen = 4096
	// MaxLineLen is the longest line, '\n' included, that the kernel can
	// emit: each line is formatted with vscnprintf into a 0x50-byte buffer.
	MaxLineLen = 0x50 - 1
)

// x86 constants used by the cross-key checks.
const (
	defaultStext = x86.DefaultText
)

// knownFamilies are the FAMILY(name) key forms: the five the kernel
// emits, plus SRCFILE and LINE that makedumpfile -g writes.
var knownFamilies = map[string]bool{"SYMBOL": true, "OFFSET": true, "SIZE": true, "LENGTH": true, "NUMBER": true, "SRCFILE": true, "LINE": true}

// Lint checks the text against what the kernel emits and what the
// consumers parse (package verify, rows D1–D15): line and key syntax,
// value format per key family (table keyRules), duplicates, size limits,
// and a few cross-key consistency checks for x86_64. It does not report
// missing keys; see Missing. Problems are ordered by line.
func (in *Info) Lint() []Problem {
	var ps []Problem
	add := func(line int, key, rule string, sev Severity, format string, args ...any) {
		ps = append(ps, Problem{Line: line, Key: key, Rule: rule, Severity: sev, Msg: fmt.Sprintf(format, args...)})
	}
	first := make(map[string]int, len(in.lines))
	for i, l := range in.lines {
		n := i + 1
		if len(l.Key)+len(l.Value)+2 > MaxLineLen {
			add(n, l.Key, "kernel", Cosmetic, "line is %d bytes; the kernel formats each line in a 0x50-byte buffer and would have cut it", len(l.Key)+len(l.Value)+2)
		}
		lintKey(n, l.Key, add)
		if j, dup := first[l.Key]; dup {
			if in.lines[j].Value == l.Value {
				add(n, l.Key, "D1", Cosmetic, "duplicate of line %d (same value)", j+1)
			} else {
				add(n, l.Key, "D1", Degraded, "duplicate of line %d with a different value: crash and makedumpfile use the first (%q), drgn the last (%q)", j+1, in.lines[j].Value, l.Value)
			}
		} else {
			first[l.Key] = i
		}
		for _, f := range lintValue(ruleFor(l.Key), l.Value) {
			if f.sev >= Degraded && !f.semantic {
				f = judgeByParsers(l.Key, l.Value, f)
			}
			add(n, l.Key, f.rule, f.sev, "%s", f.msg)
		}
	}
	if n := in.TextLen(); n > MaxTextLen {
		add(0, "", "kernel", Cosmetic, "text is %d bytes, more than VMCOREINFO_BYTES (%d): the kernel would have cut it", n, MaxTextLen)
	}
	in.lintX86(add)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return ps
}

type addFunc func(line int, key, rule string, sev Severity, format string, args ...any)

// lintKey checks the shape of FAMILY(name) keys. Consumers look keys up by
// their exact text ("SYMBOL(_stext)="), so a malformed family key is never
// found.
func lintKey(n int, key string, add addFunc) {
	open := strings.IndexByte(key, '(')
	if open < 0 {
		if strings.IndexByte(key, ')') >= 0 {
			add(n, key, "D1", Degraded, "unbalanced ')' in key")
		}
		return
	}
	fam, inner := key[:open], key[open+1:]
	if !strings.HasSuffix(inner, ")") || strings.ContainsAny(inner[:len(inner)-1], "()") || len(inner) == 1 || fam == "" {
		add(n, key, "D1", Degraded, "malformed key: want FAMILY(name), consumers will not find it")
		return
	}
	if !knownFamilies[fam] {
		add(n, key, "D1", Cosmetic, "unknown key family %q", fam)
	}
}

type finding struct {
	sev  Severity
	rule string
	msg  string
	// semantic: a finding on what a well-formed value says (the row's
	// extra check), not on how it is written.
	semantic bool
}

// lintValue checks a value against its key's row of keyRules (nil for an
// unknown key).
func lintValue(r *keyRule, v string) []finding {
	if r == nil {
		switch {
		case v == "":
			return []finding{{Cosmetic, "D1", "empty value", false}}
		case strings.TrimSpace(v) != v:
			return []finding{{Cosmetic, "D1", "leading or trailing blanks in value", false}}
		}
		return nil
	}
	bad := func(msg string) []finding {
		return []finding{{r.sev, r.rule, msg + " (" + r.why + ")", false}}
	}
	var fs []finding
	switch r.kind {
	case ReleaseValue:
		switch {
		case v == "":
			return bad("empty value")
		case len(v) > maxRelease:
			return bad(fmt.Sprintf("%d bytes, longer than the 64 of utsname.release", len(v)))
		case strings.TrimSpace(v) != v:
			return bad("leading or trailing blanks")
		}
	case BuildIDValue:
		switch {
		case !isBuildID(v):
			return bad("not an even number of hex digits")
		case strings.ToLower(v) != v:
			fs = append(fs, finding{Cosmetic, r.rule, "uppercase hex: the kernel writes lowercase", false})
		}
		if len(v) != 40 {
			fs = append(fs, finding{Cosmetic, r.rule, fmt.Sprintf("%d hex digits: the kernel's build ID is 20 bytes (40 digits)", len(v)), false})
		}
	case HexValue:
		if strings.TrimSpace(v) != v {
			return bad("leading or trailing blanks")
		}
		digits := v
		if hasHexPrefix(v) {
			digits = v[2:]
			fs = append(fs, finding{Cosmetic, r.rule, "0x prefix: the kernel writes %lx without it (readers use strtoul base 16, which skips it)", false})
		}
		if _, ok := parseHexDigits(digits); !ok {
			if len(digits) > 16 && allHex(digits) {
				return bad("more than 16 hex digits: overflows 64 bits")
			}
			return bad("not a hex number (empty or trailing junk)")
		}
		if strings.ToLower(digits) != digits {
			fs = append(fs, finding{Cosmetic, r.rule, "uppercase hex: the kernel writes lowercase", false})
		}
	case UnsignedValue, SignedValue:
		if f, stop := lintDecimal(r, v); stop {
			return bad(f)
		} else if f != "" {
			fs = append(fs, finding{Degraded, r.rule, f, false})
		} else if r.hexOK && !hasHexPrefix(v) {
			fs = append(fs, finding{Cosmetic, r.rule, "decimal: the kernel writes this key as 0x%lx", false})
		}
	}
	if r.extra != nil {
		if sev, want := r.extra(v); sev > 0 {
			fs = append(fs, finding{sev, r.rule, "want " + want, true})
		}
	}
	return fs
}

// judgeByParsers replaces the severity of a finding on a numeric value by
// what the consumers' own parsers (ParseAll, every version modelled: the
// worst case) make of it: the worst effect among those that read the key,
// Cosmetic when all of them read the kernel's value. Findings on
// keys no modelled consumer reads keep their severity.
func judgeByParsers(key, v string, f finding) finding {
	want, have := KernelValue(key, v)
	var sev Severity
	var bad []string
	n := 0
	for _, r := range ParseAll(key, v) {
		n++
		if o, s := r.Assess(want, have); o != ReadsRight {
			sev = max(sev, s)
			bad = append(bad, r.Describe())
		}
	}
	if n == 0 {
		return f
	}
	f.sev = max(sev, Cosmetic)
	if len(bad) == 0 {
		f.msg += "; every consumer that reads it gets the kernel's value"
	} else {
		f.msg += "; " + strings.Join(bad, "; ")
	}
	return f
}

// lintDecimal checks a decimal-family value. It returns a message and
// stop=true for a value that consumers reject or read differently, or a
// message with stop=false for a value that is read but is not the kernel's
// format.
func lintDecimal(r *keyRule, v string) (msg string, stop bool) {
	switch {
	case v == "":
		return "empty value", true
	case strings.TrimSpace(v) != v:
		return "leading or trailing blanks: drgn (\"number in VMCOREINFO is invalid\") and makedumpfile (\"Invalid data\") reject trailing junk", true
	case hasHexPrefix(v):
		if _, ok := parseHexDigits(v[2:]); !ok {
			return "not a hex number after 0x", true
		}
		if r.hexOK {
			return "", false
		}
		return "0x-hex where the kernel writes decimal", false
	}
	s := v
	if r.kind == SignedValue && s[0] == '-' && hasHexPrefix(s[1:]) {
		if _, ok := parseHexDigits(s[3:]); !ok {
			return "not a hex number after -0x", true
		}
		return "negative 0x-hex where the kernel writes %ld", false
	}
	if s[0] == '-' {
		if r.kind == UnsignedValue {
			return "negative value where the kernel writes %lu", true
		}
		s = s[1:]
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		if allHex(s) {
			return "hex digits without 0x", true
		}
		return "not a decimal number (trailing junk?): drgn and makedumpfile reject it", true
	}
	if len(s) > 1 && s[0] == '0' {
		return "leading zero: drgn and libkdumpfile (base 0) read octal, makedumpfile reads decimal", true
	}
	if r.kind == UnsignedValue {
		if _, ok := parseDecimalDigits(s); !ok {
			return "out of range for 64 bits", true
		}
	} else if _, ok := parseSigned(v); !ok {
		return "out of range for a signed 64-bit value", true
	}
	return "", false
}

// lintX86 checks consistency between keys of an x86_64 kernel, recognised
// by SYMBOL(init_top_pgt) or SYMBOL(init_level4_pgt), which only x86_64
// emits.
func (in *Info) lintX86(add addFunc) {
	root := KeyInitTopPgt
	if !in.Has(root) {
		root = KeyInitLevel4Pgt
		if !in.Has(root) {
			return
		}
	}
	line := func(key string) int { return in.Index(key) + 1 }
	if ps, ok := in.PageSize(); ok && ps != 4096 {
		add(line(KeyPageSize), KeyPageSize, "D4", Fatal, "PAGESIZE=%d on x86_64, want 4096", ps)
	}
	if top, ok := in.Symbol(root[len("SYMBOL(") : len(root)-1]); ok {
		if sw, ok := in.Symbol("swapper_pg_dir"); ok && sw != top {
			add(max(line(KeySwapperPgDir), line(root)), KeySwapperPgDir, "D5", Fatal,
				"SYMBOL(swapper_pg_dir)=%x differs from %s=%x: drgn walks from the first, makedumpfile and libkdumpfile from the second", sw, root, top)
		}
	}
	off, ok := in.KernelOffset()
	if !ok {
		return
	}
	if off%(2<<20) != 0 && off%4096 == 0 {
		add(line(KeyKernelOffset), KeyKernelOffset, "D8", Degraded, "KERNELOFFSET=%x is not 2 MiB-aligned, as x86_64 KASLR always is", off)
	}
	if st, ok := in.Symbol("_stext"); ok && off%4096 == 0 {
		if link := st - off; link != defaultStext && x86.IsImageAddr(link) {
			add(max(line(KeyStext), line(KeyKernelOffset)), KeyStext, "D8", Cosmetic,
				"SYMBOL(_stext) - KERNELOFFSET = %#x, not the usual %#x (non-default CONFIG_PHYSICAL_START?): check it equals the vmlinux's _stext", link, uint64(defaultStext))
		} else if !x86.IsImageAddr(link) {
			add(max(line(KeyStext), line(KeyKernelOffset)), KeyStext, "D8", Fatal,
				"SYMBOL(_stext) - KERNELOFFSET = %#x is below __START_KERNEL_map: the two disagree", link)
		}
	}
}
