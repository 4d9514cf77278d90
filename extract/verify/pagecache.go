package verify

import (
	"io"
	"sync"
)

// pageCache serves small reads (page-table entries, note headers,
// structure fields) from whole 4 KiB pages read once. A page-table walk
// reads eight bytes per level, and a block device is read with O_DIRECT
// in whole sectors anyway, so caching pages makes the bounded default
// checks a few dozen reads instead of thousands. Reads of more than a
// page go straight through. Page classification reads through it from
// every core at once: the map is guarded, a cached page is never changed.
type pageCache struct {
	r     io.ReaderAt
	mu    sync.Mutex
	pages map[int64]cachedPage
}

type cachedPage struct {
	data []byte // shorter than a page at the end of the data
	err  error
}

const (
	cachePage     = 4096
	cacheMaxPages = 8192 // 32 MiB
)

func newPageCache(r io.ReaderAt) *pageCache {
	return &pageCache{r: r, pages: map[int64]cachedPage{}}
}

func (c *pageCache) ReadAt(p []byte, off int64) (int, error) {
	if len(p) > cachePage || off < 0 {
		return c.r.ReadAt(p, off)
	}
	n := 0
	for n < len(p) {
		base := (off + int64(n)) &^ (cachePage - 1)
		c.mu.Lock()
		pg, ok := c.pages[base]
		c.mu.Unlock()
		if !ok {
			buf := make([]byte, cachePage)
			k, err := c.r.ReadAt(buf, base)
			if k == cachePage {
				err = nil
			} else if err == nil {
				err = io.EOF
			}
			pg = cachedPage{data: buf[:k], err: err}
			c.mu.Lock()
			if len(c.pages) >= cacheMaxPages {
				clear(c.pages)
			}
			c.pages[base] = pg
			c.mu.Unlock()
		}
		rel := off + int64(n) - base
		if rel >= int64(len(pg.data)) {
			if pg.err != nil {
				return n, pg.err
			}
			return n, io.EOF
		}
		n += copy(p[n:], pg.data[rel:])
	}
	return n, nil
}
