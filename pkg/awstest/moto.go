package awstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"
)

// server is the test binary's one moto_server.
var server struct {
	once sync.Once
	url  string
	err  error

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Endpoint returns the URL of the test binary's moto_server, starting it on
// a free loopback port on first use. The server ends with the test binary:
// on Linux the kernel kills it when the binary exits; use Run in TestMain to
// stop it explicitly elsewhere.
func Endpoint(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("moto_server is not on PATH and CI=true requires it (pip install 'moto[server]')")
		}
		t.Skip("moto_server is not on PATH; skipping the AWS integration test")
	}
	server.once.Do(func() { server.url, server.err = start(path) })
	if server.err != nil {
		t.Fatalf("start moto_server: %v", server.err)
	}
	return server.url
}

// Run runs the tests and then stops moto_server if they started it. Use it
// as: func TestMain(m *testing.M) { os.Exit(awstest.Run(m)) }.
func Run(m *testing.M) int {
	code := m.Run()
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.cmd != nil {
		server.cmd.Process.Kill()
		server.cmd = nil
	}
	return code
}

// start launches moto_server on a port it chooses itself (-p 0) and reads
// the port from its log: a port found free beforehand can be taken by
// another process before moto_server binds it, and the test would then talk
// to whatever listens there.
func start(path string) (string, error) {
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", "0")
	cmd.SysProcAttr = sysProcAttr()
	out := &tail{max: 4096, found: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, out

	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// The parent-death signal is tied to the thread that started the
		// child: keep this goroutine, and so its thread, alive until the
		// server exits.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return "", err
	}
	var url string
	select {
	case url = <-out.found:
	case <-exited:
		return "", fmt.Errorf("moto_server exited: %s", out)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return "", fmt.Errorf("moto_server did not report its address within 30s: %s", out)
	}
	server.mu.Lock()
	server.cmd = cmd
	server.mu.Unlock()
	return url, nil
}

// listening is the line werkzeug logs once moto_server accepts connections.
var listening = regexp.MustCompile(`Running on (http://127\.0\.0\.1:\d+)`)

// tail keeps the last max bytes written to it: moto_server's log, for the
// error message when it fails to start.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
	// found receives moto_server's URL once its log names it.
	found chan string
	sent  bool
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if m := listening.FindSubmatch(w.buf); m != nil && !w.sent {
		w.sent = true
		w.found <- string(m[1])
	}
	if len(w.buf) > w.max {
		w.buf = w.buf[len(w.buf)-w.max:]
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(bytes.TrimSpace(w.buf))
}
