package kdump

import (
	"fmt"

	lzo "github.com/anchore/go-lzo"
)

// lzo1xDecompress decodes one LZO1X block (liblzo2's lzo1x_1_compress
// output, which makedumpfile -l writes per page) from src into dst and
// returns the number of bytes written. The decoder never writes past
// len(dst) nor reads past len(src); a block that does not end exactly at
// the end of src is an error too, so a descriptor's size cannot hide junk.
func lzo1xDecompress(src, dst []byte) (int, error) {
	n, err := lzo.Decompress(src, dst)
	if err != nil {
		return n, fmt.Errorf("lzo1x: %w", err)
	}
	return n, nil
}
