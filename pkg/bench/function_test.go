//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// lambdaFlags are the Makefile's build flags (LAMBDA_FLAGS).
var lambdaFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}

// helloPkg is the cold-start baseline, a hello-world aws-lambda-go function.
const helloPkg = "./pkg/bench/internal/hello"

// functionNames lists the Lambda functions: the Makefile's FUNCTIONS
// (dir=LogicalId pairs), so that the local server and the demo, which are
// no functions, stay out.
func functionNames(root string) ([]string, error) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return nil, err
	}
	_, list, ok := strings.Cut(string(makefile), "\nFUNCTIONS :=")
	if !ok {
		return nil, errors.New("the Makefile sets no FUNCTIONS")
	}
	var names []string
	for _, line := range strings.Split(list, "\n") {
		more := strings.HasSuffix(line, "\\")
		for _, pair := range strings.Fields(strings.TrimSuffix(line, "\\")) {
			dir, _, _ := strings.Cut(pair, "=")
			names = append(names, dir)
		}
		if !more {
			break
		}
	}
	slices.Sort(names)
	return names, nil
}

// build compiles the functions and hello for goos/goarch as the Makefile
// does, into dir/<name>; it returns the binaries by name.
func build(ctx context.Context, root, dir, goos, goarch string, names []string) (map[string]string, error) {
	args := append([]string{"build"}, lambdaFlags...)
	args = append(args, "-o", dir+string(filepath.Separator))
	for _, n := range names {
		args = append(args, "./functions/"+n)
	}
	args = append(args, helloPkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build for %s/%s: %v\n%s", goos, goarch, err, out)
	}
	bins := map[string]string{}
	for _, n := range append(slices.Clone(names), "hello") {
		bins[n] = filepath.Join(dir, n)
	}
	return bins, nil
}

// lambdaEnv is the environment Lambda gives a provided.al2023 function of
// the template (128 MB, JSON logs), plus the function's settings.
func lambdaEnv(name, runtimeAPI string, settings map[string]string) []string {
	env := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME":        name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_LAMBDA_LOG_FORMAT":           "JSON",
		"AWS_LAMBDA_LOG_LEVEL":            "INFO",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "bench",
		"AWS_REGION":                      "us-east-1",
		"AWS_DEFAULT_REGION":              "us-east-1",
		"AWS_ACCESS_KEY_ID":               "test",
		"AWS_SECRET_ACCESS_KEY":           "test",
		"AWS_SESSION_TOKEN":               "test",
		// Nothing from the machine's ~/.aws, as in Lambda.
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"TZ":                          ":UTC",
		"_HANDLER":                    "bootstrap",
	}
	for k, v := range settings {
		env[k] = v
	}
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// process is a function binary running against its own runtime API.
type process struct {
	name    string
	cmd     *exec.Cmd
	api     *runtimeAPI
	started time.Time
	exited  chan struct{}
	log     *os.File
}

// start execs bin as Lambda does, with settings added to the Lambda
// environment; its output goes to logPath.
func start(name, bin, logPath string, settings map[string]string) (*process, error) {
	api, err := newRuntimeAPI()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		api.close()
		return nil, err
	}
	p := &process{name: name, api: api, exited: make(chan struct{}), log: logFile}
	p.cmd = exec.Command(bin)
	p.cmd.Env = lambdaEnv(name, api.addr, settings)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		api.close()
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// invoke sends one event and waits for the answer.
func (p *process) invoke(ctx context.Context, payload []byte) (*invocation, error) {
	inv := p.api.enqueue(payload)
	if err := p.api.wait(ctx, inv, p.exited); err != nil {
		return inv, fmt.Errorf("%s: %w%s", p.name, err, p.logTail())
	}
	return inv, nil
}

// stop kills the process, as Lambda does when it retires a sandbox.
func (p *process) stop() {
	p.cmd.Process.Kill()
	<-p.exited
	p.api.close()
	p.log.Close()
}

// logTail is the end of the function's output, for error messages.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return ""
	}
	return "\nfunction output (whole log: " + p.log.Name() + "):\n" + string(b)
}

// lastError is the err of the function's last ERROR log line (its logs
// are JSON), "" if none.
func (p *process) lastError() string {
	b, _ := os.ReadFile(p.log.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var l struct{ Level, Message, Err string }
		if json.Unmarshal([]byte(lines[i]), &l) == nil && l.Level == "ERROR" {
			return l.Message + ": " + l.Err
		}
	}
	return ""
}

// peakRSS is the process's resident set high-water mark (VmHWM).
func (p *process) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
}

// cpuTime is the CPU time the process used so far (user + system).
func (p *process) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after it. utime and stime are fields 14 and 15, in clock ticks.
	_, rest, _ := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", p.cmd.Process.Pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", p.cmd.Process.Pid)
	}
	const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * clockTick, nil
}

// coldStart is one start of a function to its first answer.
type coldStart struct {
	init  time.Duration  // exec to the first GET …/next: Lambda's Init Duration
	first time.Duration  // the first invocation
	total time.Duration  // exec to the first answer
	aws   time.Duration  // of total, spent waiting on moto_server (set by the caller)
	calls map[string]int // the AWS calls of that wait, by operation (set by the caller)
}

// startCold starts bin with the first event already queued, as a cold
// invocation is, and measures it; the process is stopped unless keep.
func startCold(ctx context.Context, name, bin, logPath string, settings map[string]string, event []byte, check func([]byte) error) (coldStart, *process, error) {
	p, err := start(name, bin, logPath, settings)
	if err != nil {
		return coldStart{}, nil, err
	}
	inv, err := p.invoke(ctx, event)
	if err == nil && check != nil {
		if err = check(inv.body); err != nil {
			err = fmt.Errorf("%s: first answer: %w%s", name, err, p.logTail())
		}
	}
	if err != nil {
		p.stop()
		return coldStart{}, nil, err
	}
	return coldStart{
		init:  p.api.initEnded().Sub(p.started),
		first: inv.duration(),
		total: inv.answered.Sub(p.started),
	}, p, nil
}
