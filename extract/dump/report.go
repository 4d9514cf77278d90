package dump

import (
	"fmt"
	"time"
)

// Report says what opening an input found, repaired and could not
// repair. extract's Summary carries it into its output.
type Report struct {
	Input      string     `json:"input"`
	InputKind  SourceKind `json:"input_kind"`
	InputSize  int64      `json:"input_size"`
	Format     Format     `json:"format"`
	Release    string     `json:"release,omitempty"`
	CPUs       int        `json:"cpus"`
	CrashTime  *time.Time `json:"crash_time,omitempty"`
	Manifest   bool       `json:"manifest"`
	Prepared   string     `json:"device_prepared,omitempty"`
	VMCOREINFO string     `json:"vmcoreinfo_source"`
	CPUNotes   NoteCounts `json:"cpu_notes"`
	RAMRanges  int        `json:"ram_ranges"`
	// Parts are the files of a split dump (makedumpfile --split), in pfn
	// order, when the input is one of them.
	Parts    []string `json:"parts,omitempty"`
	Repairs  []string `json:"repairs"`
	Warnings []string `json:"warnings"`
}

// NoteCounts counts CPU notes.
type NoteCounts struct {
	Kept    int `json:"kept"`
	Rebuilt int `json:"rebuilt"`
}

func (r *Report) repair(format string, a ...any) {
	r.Repairs = append(r.Repairs, fmt.Sprintf(format, a...))
}
func (r *Report) warn(format string, a ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, a...))
}
