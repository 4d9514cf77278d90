package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"ldx/elfcore/kernel/printk"
	"ldx/extract/dump"
)

func newDmesgCmd() *cobra.Command {
	var o printk.FormatOptions
	var asJSON bool
	var dopt dump.Options
	cmd := &cobra.Command{
		Use:   "dmesg FILE",
		Short: "Print the kernel log from the dump's printk ring buffer",
		Long: `dmesg prints the kernel log held in the dump, using VMCOREINFO alone (no
vmlinux): the lockless printk ring of Linux 5.10+ and the structured log_buf
of 3.5–5.9. Every virtual address is translated through the dump's own page
tables, as makedumpfile does.

The output is makedumpfile --dump-dmesg's, record for record: timestamps as
[%5lu.%06lu], continuation lines indented under the text, bytes that are
not printable ASCII as \xNN. --caller adds the caller id the way the
kernel's console prints it ([  T123] for a task, [    C1] for a CPU) and
--seq the record's sequence number.

Records that cannot be read — overwritten while memory was captured,
reserved by a writer that had not finished, corrupt — are skipped and
counted on standard error; the walk is bounded by the ring's size whatever
its indices say.

Exit codes: 0 ok (even with skipped records), 1 no log could be read, 2
usage, 3 not a readable dump.`,
		Example: `  ldx dmesg vmcore | tail
  ldx dmesg --caller --seq /dev/sdb
  ldx dmesg vmcore --json | jq -r '.records[].text'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openDump(cmd.Context(), args[0], dopt)
			if err != nil {
				return err
			}
			defer d.Close()
			log, err := readLog(d)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), dmesgJSON(log))
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			var buf []byte
			for i := range log.Records {
				buf = printk.AppendText(buf[:0], &log.Records[i], o)
				if _, err := w.Write(buf); err != nil {
					return err
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if o.Caller && len(log.Records) > 0 && !log.Records[0].HasCaller {
				fmt.Fprintln(cmd.ErrOrStderr(), "ldx: dmesg: this kernel does not record caller ids (no OFFSET(printk_info.caller_id) in VMCOREINFO)")
			}
			reportSkipped(cmd.ErrOrStderr(), log)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Caller, "caller", false, "show the caller id (thread or CPU) of each record")
	f.BoolVar(&o.Seq, "seq", false, "show each record's sequence number")
	f.BoolVar(&asJSON, "json", false, "print the records and what was skipped as JSON")
	zeroExcludedFlag(cmd, &dopt)
	return cmd
}

// readLog reads the printk ring of a dump through its page tables.
func readLog(d *dump.Dump) (*printk.Log, error) {
	m, err := kernelMem(d)
	if err != nil {
		return nil, err
	}
	log, err := printk.Read(m, d.VMCOREINFO, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the kernel log: %w", d.Source.Path, err)
	}
	return log, nil
}

// reportSkipped says on w how many records were left out and why.
func reportSkipped(w io.Writer, log *printk.Log) {
	if n := log.SkippedTotal(); n > 0 {
		var parts []string
		for _, reason := range slices.Sorted(func(yield func(string) bool) {
			for k := range log.Skipped {
				if !yield(k) {
					return
				}
			}
		}) {
			parts = append(parts, fmt.Sprintf("%d %s", log.Skipped[reason], reason))
		}
		fmt.Fprintf(w, "ldx: dmesg: %d of %d records skipped: %s\n", n, n+len(log.Records), strings.Join(parts, ", "))
	}
	for _, p := range log.Problems {
		fmt.Fprintf(w, "ldx: dmesg: %s\n", p)
	}
}

type dmesgRecord struct {
	Seq       uint64 `json:"seq"`
	SeqKnown  bool   `json:"seq_known"`
	TsNsec    uint64 `json:"ts_nsec"`
	Time      string `json:"time"`
	Caller    string `json:"caller,omitempty"`
	Text      string `json:"text"`
	Subsystem string `json:"subsystem,omitempty"`
	Device    string `json:"device,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

type dmesgRing struct {
	Addr     hexU64 `json:"addr"`
	Descs    hexU64 `json:"descs,omitempty"`
	Infos    hexU64 `json:"infos,omitempty"`
	Text     hexU64 `json:"text"`
	Count    uint64 `json:"count,omitempty"`
	TextSize uint64 `json:"text_size"`
	Head     uint64 `json:"head"`
	Tail     uint64 `json:"tail"`
}

type dmesgOutput struct {
	Format   printk.Format  `json:"format"`
	Ring     dmesgRing      `json:"ring"`
	Records  []dmesgRecord  `json:"records"`
	Skipped  map[string]int `json:"skipped"`
	Problems []string       `json:"problems"`
}

// dmesgJSON converts a Log for --json. Text is escaped as in the text
// output (non-printable bytes as \xNN), so it is valid UTF-8 and lossless.
func dmesgJSON(log *printk.Log) *dmesgOutput {
	r := log.Ring
	out := &dmesgOutput{Format: log.Format, Skipped: log.Skipped, Problems: log.Problems,
		Ring:    dmesgRing{hexU64(r.Addr), hexU64(r.Descs), hexU64(r.Infos), hexU64(r.Text), r.Count, r.TextSize, r.Head, r.Tail},
		Records: make([]dmesgRecord, len(log.Records))}
	if out.Skipped == nil {
		out.Skipped = map[string]int{}
	}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	for i := range log.Records {
		rec := &log.Records[i]
		out.Records[i] = dmesgRecord{Seq: rec.Seq, SeqKnown: rec.SeqKnown, TsNsec: rec.TsNsec,
			Time:   fmt.Sprintf("%d.%06d", rec.TsNsec/1e9, rec.TsNsec%1e9/1e3),
			Caller: rec.CallerString(), Text: printk.EscapeText(rec.Text), Subsystem: rec.Subsystem, Device: rec.Device, Truncated: rec.Truncated}
	}
	return out
}
