package verify

import (
	"strings"
	"testing"
)

// TestValueEffects: D2's per-consumer effects come from each consumer's
// own parser applied to the value (crash 8.0.2 x86_64_calc_phys_base,
// makedumpfile 1.7.2 read_vmcoreinfo_long, drgn 0.0.27+ base 0).
func TestValueEffects(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  map[Consumer]Severity // consumers affected (installed versions)
		desc  []string              // substrings of the description
	}{
		{"0x1c00000", map[Consumer]Severity{Crash: Fatal}, []string{"crash 8.0.2 reads -1", "makedumpfile 1.7.2 reads 29360128 (0x1c00000) (hex fallback", "drgn <0.0.27 does not read it"}},
		{"-0x1000000", map[Consumer]Severity{Crash: Fatal}, []string{"crash 8.0.2 reads 1 ", "makedumpfile 1.7.2 reads -16777216 (-0x1000000) (hex fallback"}},
		{"0x0", map[Consumer]Severity{Crash: Fatal}, []string{"crash 8.0.2 reads -1", "makedumpfile 1.7.2 reads 0 "}},
		{"0xffffffffff000000", map[Consumer]Severity{Crash: Fatal, Makedumpfile: Fatal}, []string{"crash 8.0.2 reads -1", "makedumpfile 1.7.2 rejects it", "Invalid data"}},
		{"-16777216", nil, []string{"crash 8.0.2 reads -16777216"}},
		{"29360128 ", map[Consumer]Severity{Crash: Fatal, Makedumpfile: Fatal}, []string{"dtol", "Invalid data"}},
	} {
		effs, desc, ok := valueEffects("NUMBER(phys_base)", tc.value)
		if !ok {
			t.Fatalf("%s: not modelled", tc.value)
		}
		got := map[Consumer]Severity{}
		for _, e := range effs {
			if versionMatches(map[Consumer]string{Drgn: "0.0.22"}[e.Consumer], e.Versions) {
				got[e.Consumer] = max(got[e.Consumer], e.Severity)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: effects %v, want %v", tc.value, got, tc.want)
		}
		for c, s := range tc.want {
			if got[c] != s {
				t.Errorf("%s: %s %v, want %v (%v)", tc.value, c, got[c], s, effs)
			}
		}
		all := strings.Join(desc, "; ")
		for _, d := range tc.desc {
			if !strings.Contains(all, d) {
				t.Errorf("%s: description %q lacks %q", tc.value, all, d)
			}
		}
	}
}
