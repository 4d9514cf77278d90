package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// qmpClient is a minimal QMP client: one command at a time, events dropped.
// It is enough for qmp_capabilities, dump-guest-memory and query-dump, and
// avoids a dependency for a test helper.
type qmpClient struct {
	conn net.Conn
	mu   sync.Mutex // one command in flight
	resp chan qmpMessage
	done chan struct{}
	err  error // set before done is closed
}

type qmpMessage struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	QMP   json.RawMessage `json:"QMP"`
}

// dialQMP connects to QEMU's QMP socket (retrying until QEMU has created
// it), reads the greeting and negotiates capabilities.
func dialQMP(ctx context.Context, socket string, qemuDone <-chan struct{}) (*qmpClient, error) {
	var conn net.Conn
	for {
		var err error
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", socket)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("QMP %s: %w", socket, ctx.Err())
		case <-qemuDone:
			return nil, fmt.Errorf("QMP %s: QEMU exited", socket)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c := &qmpClient{conn: conn, resp: make(chan qmpMessage, 1), done: make(chan struct{})}
	greeting := make(chan struct{})
	go c.readLoop(greeting)
	select {
	case <-greeting:
	case <-c.done:
		return nil, fmt.Errorf("QMP greeting: %w", c.err)
	case <-ctx.Done():
		conn.Close()
		return nil, ctx.Err()
	}
	if _, err := c.execute(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *qmpClient) readLoop(greeting chan struct{}) {
	defer close(c.done)
	sc := bufio.NewScanner(c.conn)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		var m qmpMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			c.err = fmt.Errorf("QMP: bad message %q: %w", sc.Text(), err)
			return
		}
		switch {
		case m.QMP != nil:
			if greeting != nil {
				close(greeting)
				greeting = nil
			}
		case m.Event != "":
			// Events (DUMP_COMPLETED, RESUME, ...) are not needed: state
			// is polled.
		default:
			c.resp <- m
		}
	}
	c.err = sc.Err()
	if c.err == nil {
		c.err = fmt.Errorf("QMP connection closed")
	}
}

// execute runs one QMP command and returns its "return" value.
func (c *qmpClient) execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	select {
	case m := <-c.resp:
		if m.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	case <-c.done:
		return nil, fmt.Errorf("QMP %s: %w", cmd, c.err)
	case <-ctx.Done():
		// The answer may still arrive; the connection is no longer usable
		// in step, so close it.
		c.conn.Close()
		return nil, fmt.Errorf("QMP %s: %w", cmd, ctx.Err())
	}
}

func (c *qmpClient) close() error { return c.conn.Close() }
