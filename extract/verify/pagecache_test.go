package verify

import (
	"bytes"
	"sync"
	"testing"
)

// TestPageCacheConcurrent: page classification reads through one cache
// from every core; concurrent reads (run under -race) return the bytes
// of the data and never corrupt the cache, also when it is cleared for
// being full.
func TestPageCacheConcurrent(t *testing.T) {
	data := make([]byte, (cacheMaxPages+64)*cachePage)
	for i := range data {
		data[i] = byte(i * 7)
	}
	c := newPageCache(bytes.NewReader(data))
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 16)
			for i := 0; i < 3*cacheMaxPages; i += 3 {
				off := int64((i+w)%(cacheMaxPages+64))*cachePage + int64(w*100)
				if n, err := c.ReadAt(buf, off); err != nil || n != len(buf) || !bytes.Equal(buf, data[off:off+16]) {
					t.Errorf("worker %d: read at %#x: %d bytes, %v", w, off, n, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
}
