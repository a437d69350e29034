//go:build bench

package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// awsProxy stands in front of moto_server and counts what reaches it:
// requests by service and operation, and the DynamoDB items they read.
// Function binaries reach it through AWS_ENDPOINT_URL. It forwards one
// request at a time: moto_server does not apply concurrent requests
// atomically (see awstest.Config).
type awsProxy struct {
	URL    string
	target string
	srv    *http.Server
	client *http.Client

	forward sync.Mutex // one request at a time to moto_server

	mu        sync.Mutex
	counts    awsCounts
	inFlight  int       // calls arrived and not yet answered
	busySince time.Time // when inFlight last went from 0 to 1
}

// awsCounts is what the proxy counted.
type awsCounts struct {
	Calls     map[string]int // "dynamodb.GetItem", "secretsmanager.GetSecretValue", …
	ItemsRead int            // DynamoDB items returned or scanned by reads
	Busy      time.Duration  // time during which a call waited on moto_server (in the proxy's queue or there)
	Slow      int            // calls that took over a second, queue included
	Slowest   time.Duration  // the slowest call so far (not a difference)
}

// service sums the calls of one service ("dynamodb", "secretsmanager").
func (c awsCounts) service(name string) int {
	n := 0
	for op, v := range c.Calls {
		if strings.HasPrefix(op, name+".") {
			n += v
		}
	}
	return n
}

// minus returns c - old.
func (c awsCounts) minus(old awsCounts) awsCounts {
	d := awsCounts{Calls: map[string]int{}, ItemsRead: c.ItemsRead - old.ItemsRead, Busy: c.Busy - old.Busy, Slow: c.Slow - old.Slow, Slowest: c.Slowest}
	for op, v := range c.Calls {
		if v -= old.Calls[op]; v != 0 {
			d.Calls[op] = v
		}
	}
	return d
}

func newAWSProxy(target string) (*awsProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &awsProxy{
		URL: "http://" + ln.Addr().String(), target: target,
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}},
		counts: awsCounts{Calls: map[string]int{}},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *awsProxy) close() { p.srv.Close() }

// snapshot returns the counts so far.
func (p *awsProxy) snapshot() awsCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	c.Calls = maps.Clone(c.Calls)
	return c
}

func (p *awsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	op := operation(r)
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	// Timed from before the queue: a call waits behind the others' too.
	t0 := p.arrived()
	p.forward.Lock()
	resp, err := p.client.Do(out)
	var answer []byte
	if err == nil {
		answer, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	p.forward.Unlock()
	read := 0
	if err == nil && resp.StatusCode == http.StatusOK {
		read = itemsRead(op, answer)
	}
	// A call its caller gave up on (a function's budget) counts too: it
	// reached moto_server, which may have applied it.
	p.mu.Lock()
	took := time.Since(t0)
	if p.inFlight--; p.inFlight == 0 {
		p.counts.Busy += time.Since(p.busySince)
	}
	p.counts.Calls[op]++
	p.counts.ItemsRead += read
	p.counts.Slowest = max(p.counts.Slowest, took)
	if took > time.Second {
		p.counts.Slow++
	}
	p.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

// arrived notes a call's arrival and returns its time. Busy counts the
// time with calls in flight once, however many overlap.
func (p *awsProxy) arrived() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.inFlight == 0 {
		p.busySince = now
	}
	p.inFlight++
	return now
}

// operation names a request by its X-Amz-Target, e.g. "dynamodb.GetItem".
func operation(r *http.Request) string {
	target := r.Header.Get("X-Amz-Target")
	service, op, ok := strings.Cut(target, ".")
	if !ok {
		return "other." + r.Method + " " + r.URL.Path
	}
	if strings.HasPrefix(service, "DynamoDB_") {
		service = "dynamodb"
	}
	return strings.ToLower(service) + "." + op
}

// itemsRead counts the items a DynamoDB read answer returned or, for a
// Query or Scan, examined.
func itemsRead(op string, answer []byte) int {
	var a struct {
		Item         map[string]json.RawMessage
		Items        []json.RawMessage
		ScannedCount *int
		Responses    map[string][]json.RawMessage
	}
	switch op {
	case "dynamodb.GetItem", "dynamodb.Query", "dynamodb.Scan", "dynamodb.BatchGetItem":
	default:
		return 0
	}
	if json.Unmarshal(answer, &a) != nil {
		return 0
	}
	n := len(a.Items)
	if a.ScannedCount != nil {
		n = max(n, *a.ScannedCount)
	}
	if len(a.Item) > 0 {
		n++
	}
	for _, items := range a.Responses {
		n += len(items)
	}
	return n
}
