// Package secrets keeps JSON documents in AWS Secrets Manager (Document) or,
// locally, in private files (File). Callers read at cold start and keep
// what they read in memory: a warm Lambda container does not call Secrets
// Manager per request.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// API is the part of the Secrets Manager client a Document uses.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// Document is a JSON document kept in a secret: the config secret, or one
// the application itself writes (the Zoho token). It is read directly,
// uncached: its users keep what they read in memory.
type Document struct {
	API API
	ID  string
}

// Load decodes the secret's JSON into v. An empty document ("" or "{}")
// leaves v unchanged.
func (d Document) Load(ctx context.Context, v any) error {
	out, err := d.API.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(d.ID)})
	if err != nil {
		return fmt.Errorf("read secret %s: %w", d.ID, err)
	}
	if s := aws.ToString(out.SecretString); s != "" {
		return decode([]byte(s), v, "secret "+d.ID)
	}
	return nil
}

// Save replaces the secret's value with v as JSON.
func (d Document) Save(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := d.API.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(d.ID), SecretString: aws.String(string(b))}); err != nil {
		return fmt.Errorf("write secret %s: %w", d.ID, err)
	}
	return nil
}

// File is a JSON document in a local file readable by its owner only: the
// local process's stand-in for a Document.
type File struct{ Path string }

// Load decodes the file into v; a missing file leaves v unchanged.
func (f File) Load(_ context.Context, v any) error {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	return decode(b, v, f.Path)
}

// decode unmarshals the document named name into v. Its error does not
// carry JSON's, which may quote the secret content.
func decode(b []byte, v any, name string) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: the document is not the expected JSON", name)
	}
	return nil
}

// Save writes v to the file atomically, mode 0600.
func (f File) Save(_ context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.Path)
}
