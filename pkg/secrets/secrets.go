// Package secrets reads secrets from AWS Secrets Manager through an
// in-memory cache, so a warm Lambda container calls Secrets Manager at most
// once per secret per cache period, whatever its request rate.
package secrets

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// API is the part of the Secrets Manager client used here.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Cache serves secret values, fetching each at most once per TTL.
type Cache struct {
	api API
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	value   []byte
	fetched time.Time
}

// NewCache returns a cache over api; now may be nil for the wall clock.
func NewCache(api API, ttl time.Duration, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{api: api, ttl: ttl, now: now, entries: map[string]entry{}}
}

// Get returns the secret's current string value. Concurrent misses of one
// secret make one call.
func (c *Cache) Get(ctx context.Context, id string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok && c.now().Sub(e.fetched) < c.ttl {
		return e.value, nil
	}
	out, err := c.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", id, err)
	}
	value := []byte(aws.ToString(out.SecretString))
	if out.SecretString == nil {
		value = out.SecretBinary
	}
	c.entries[id] = entry{value: value, fetched: c.now()}
	return value, nil
}
