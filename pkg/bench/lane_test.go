//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hitl-bridge/hitl-bridge/pkg/app/apptest"
	"github.com/hitl-bridge/hitl-bridge/pkg/awstest"
	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

// lane is one moto_server behind its counting proxy, with the clients the
// harness uses on it. moto_server takes about 20 ms for the store's Record,
// so the long runs go on two lanes side by side to fit the run in ten
// minutes; the table of 10,000 closed sessions has a lane of its own, so
// that its items slow no other step.
type lane struct {
	proxy  *awsProxy
	db     *dynamodb.Client // through the proxy: counted
	direct *dynamodb.Client // straight to moto_server: setup and peeks
	sm     *secretsmanager.Client
}

func (b *bench) newLane(endpoint string) (*lane, error) {
	proxy, err := newAWSProxy(endpoint)
	if err != nil {
		return nil, err
	}
	b.t.Cleanup(proxy.close)
	l := &lane{
		proxy:  proxy,
		db:     dynamodb.NewFromConfig(awstest.Config(proxy.URL)),
		direct: dynamodb.NewFromConfig(awstest.Config(endpoint)),
		sm:     secretsmanager.NewFromConfig(awstest.Config(endpoint)),
	}
	b.lanes = append(b.lanes, l)
	return l, nil
}

// launchMoto starts another moto_server on a free loopback port (awstest
// keeps one per test binary); stop, or the end of the test, stops it.
func (b *bench) launchMoto() (endpoint string, stop func(), err error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	var once sync.Once
	stop = func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	b.t.Cleanup(stop)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return "http://" + addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("moto_server did not listen on %s within 30s", addr)
}

// launchEnv is a bridge, through the counted client, on a lane of its
// own: a moto_server that stop ends.
func (b *bench) launchEnv(p provider) (*env, func(), error) {
	endpoint, stop, err := b.launchMoto()
	if err != nil {
		return nil, nil, err
	}
	l, err := b.newLane(endpoint)
	if err != nil {
		stop()
		return nil, nil, err
	}
	e, err := b.newEnv(l, p, counted)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return e, stop, nil
}

// newTable creates a fresh table with the store's schema on l.
func (b *bench) newTable(l *lane) (string, error) {
	name := fmt.Sprintf("bench-%d-%d", b.began.Unix(), b.tables.Add(1))
	return name, dynamo.CreateTable(b.ctx, l.direct, name)
}

// env is a bridge on moto with its simulators, and the settings of its
// functions.
type env struct {
	*apptest.Env
	lane     *lane
	table    string
	settings map[string]string
}

// storeAPI gives the client a bridge's store uses on a table of l.
type storeAPI func(l *lane, table string) (dynamo.API, error)

// counted is the client the proxy counts.
func counted(l *lane, _ string) (dynamo.API, error) { return l.db, nil }

// newEnv starts a bridge on a fresh table of l through api, and stores its
// config secret in l's moto_server for the functions.
func (b *bench) newEnv(l *lane, p provider, api storeAPI) (*env, error) {
	table, err := b.newTable(l)
	if err != nil {
		return nil, err
	}
	db, err := api(l, table)
	if err != nil {
		return nil, err
	}
	e := apptest.New(b.t, dynamo.New(db, table))
	doc, err := p.secret(e.Config.Secret).Document()
	if err != nil {
		return nil, err
	}
	secret, err := l.sm.CreateSecret(b.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("hitl-bridge/config-" + table), SecretString: aws.String(string(doc))})
	if err != nil {
		return nil, fmt.Errorf("create the config secret: %w", err)
	}
	settings := functionSettings(e, p, l.proxy.URL, table, aws.ToString(secret.ARN))
	if p.documents != nil {
		docs, err := p.documents(b.ctx, e)
		if err != nil {
			return nil, err
		}
		for name, v := range docs {
			raw, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			doc, err := l.sm.CreateSecret(b.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(strings.ToLower(name) + "-" + table), SecretString: aws.String(string(raw))})
			if err != nil {
				return nil, fmt.Errorf("create the secret of %s: %w", name, err)
			}
			settings[name] = aws.ToString(doc.ARN)
		}
	}
	return &env{Env: e, lane: l, table: table, settings: settings}, nil
}

// roundTrip is the median time of a GetItem to l's moto_server through
// its proxy.
func (b *bench) roundTrip(ctx context.Context, l *lane) (time.Duration, error) {
	table, err := b.newTable(l)
	if err != nil {
		return 0, err
	}
	var rtt []time.Duration
	for range 50 {
		t0 := time.Now()
		if _, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: dynamoKey("USER#none", "USER")}); err != nil {
			return 0, err
		}
		rtt = append(rtt, time.Since(t0))
	}
	return median(rtt), nil
}
