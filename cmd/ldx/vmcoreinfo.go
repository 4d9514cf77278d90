package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"ldx/extract/dump"
)

func newVMCOREINFOCmd() *cobra.Command {
	var keys []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "vmcoreinfo FILE",
		Short: "Print the dump's VMCOREINFO, or single keys",
		Long: `vmcoreinfo prints the VMCOREINFO text the kernel wrote into the dump: the
complete text as ldx reads it (recovered from the dumped memory when a
livedump device cut it off, NUL runs of repeated runs removed).

--key prints the value of one key per line, in the order asked; a key can
be given as SYMBOL(_stext) or as the bare name, which is looked up as
itself, then as SYMBOL(name), NUMBER(name), OFFSET(name), SIZE(name) and
LENGTH(name). A key that is not there is an error (exit 1) after the
values that are.

Exit codes: 0 ok, 1 failure or a missing key, 2 usage, 3 not a readable dump.`,
		Example: `  ldx vmcoreinfo vmcore
  ldx vmcoreinfo vmcore --key 'SYMBOL(_stext)' --key phys_base
  ldx vmcoreinfo vmcore --json | jq -r '.OSRELEASE'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openDump(cmd.Context(), args[0], dump.Options{})
			if err != nil {
				return err
			}
			defer d.Close()
			info := d.VMCOREINFO
			if info == nil {
				return fmt.Errorf("%s: the dump has no VMCOREINFO", args[0])
			}
			w := cmd.OutOrStdout()
			if len(keys) > 0 {
				var missing []string
				values := map[string]string{}
				var order []string
				for _, k := range keys {
					full, v, ok := lookupKey(info.Get, k)
					if !ok {
						missing = append(missing, k)
						continue
					}
					values[full] = v
					order = append(order, full)
					if !asJSON {
						fmt.Fprintln(w, v)
					}
				}
				if asJSON {
					if err := writeOrderedJSON(w, order, values); err != nil {
						return err
					}
				}
				if len(missing) > 0 {
					return fmt.Errorf("%s: VMCOREINFO has no %s", args[0], strings.Join(missing, ", "))
				}
				return nil
			}
			if asJSON {
				values := map[string]string{}
				var order []string
				for _, l := range info.Lines() {
					if _, dup := values[l.Key]; dup {
						continue // the first wins, as Get does
					}
					values[l.Key] = l.Value
					order = append(order, l.Key)
				}
				return writeOrderedJSON(w, order, values)
			}
			_, err = w.Write(info.Bytes())
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&keys, "key", "k", nil, "print only this key's value (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object of keys and values, in the text's order")
	cmd.AddCommand(newVMCOREINFOGenerateCmd()) // vmcoreinfo_generate.go
	return cmd
}

// lookupKey finds a key as given, or a bare name in the key families.
func lookupKey(get func(string) (string, bool), k string) (string, string, bool) {
	if v, ok := get(k); ok {
		return k, v, true
	}
	if strings.Contains(k, "(") {
		return "", "", false
	}
	for _, fam := range []string{"SYMBOL", "NUMBER", "OFFSET", "SIZE", "LENGTH"} {
		full := fam + "(" + k + ")"
		if v, ok := get(full); ok {
			return full, v, true
		}
	}
	return "", "", false
}

// writeOrderedJSON writes a JSON object whose members keep the given
// order (VMCOREINFO's own), which encoding/json's maps would sort.
func writeOrderedJSON(w interface{ Write([]byte) (int, error) }, order []string, values map[string]string) error {
	var b bytes.Buffer
	b.WriteString("{")
	for i, k := range order {
		if i > 0 {
			b.WriteString(",")
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(values[k])
		fmt.Fprintf(&b, "\n  %s: %s", kb, vb)
	}
	b.WriteString("\n}\n")
	_, err := w.Write(b.Bytes())
	return err
}
