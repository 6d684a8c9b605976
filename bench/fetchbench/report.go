package fetchbench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes the result as a table: one row per size.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "size\traw MB/s\tdecrypted MB/s\tdecrypted/raw\tfetches each\t\n")
	for _, s := range r.Sizes {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f\t%d\t\n", sizeName(s.Bytes), s.Raw.MBps, s.Decrypted.MBps, s.Ratio, len(s.Raw.Seconds))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\nmedians; the sides alternate, each fetch into a fresh receiver, connected before the clock starts")
	return err
}

func sizeName(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}
