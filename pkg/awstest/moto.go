package awstest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
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

// start launches moto_server, retrying when the free port found was taken
// before moto_server could bind it.
func start(path string) (string, error) {
	var err error
	for range 3 {
		var url string
		if url, err = launch(path); err == nil {
			return url, nil
		}
	}
	return "", err
}

func launch(path string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = sysProcAttr()
	out := &tail{max: 4096}
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

	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			return "", fmt.Errorf("moto_server exited: %s", out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return "", fmt.Errorf("moto_server did not listen on %s within 30s: %s", addr, out)
		}
	}
	server.mu.Lock()
	server.cmd = cmd
	server.mu.Unlock()
	return "http://" + addr, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last max bytes written to it: moto_server's log, for the
// error message when it fails to start.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
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
