package main

import (
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// printTable prints an aligned, borderless ASCII table for people: no box
// characters (serial consoles, logs), headers exactly as given (tablewriter
// v1 would upper-case them and turn "_" into spaces, mangling field names
// like p_vaddr). rightAlign lists the columns holding numbers.
func printTable(w io.Writer, header []string, rows [][]string, rightAlign ...int) error {
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignLeft
	}
	for _, c := range rightAlign {
		if c < len(align) {
			align[c] = tw.AlignRight
		}
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders:  tw.BorderNone,
			Symbols:  tw.NewSymbols(tw.StyleASCII),
			Settings: tw.Settings{Separators: tw.Separators{BetweenColumns: tw.Off}, Lines: tw.Lines{ShowHeaderLine: tw.On}},
		})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
	)
	t.Header(header)
	for _, r := range rows {
		if err := t.Append(append([]string(nil), r...)); err != nil {
			return err
		}
	}
	return t.Render()
}
