package hitl

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for the bot-facing APIs; each maps to one HTTP status.
type Code string

const (
	CodeInvalid         Code = "invalid_argument"
	CodeUnauthenticated Code = "unauthenticated"
	CodeNotFound        Code = "not_found"
	CodeConflict        Code = "conflict"
	CodeTooLarge        Code = "payload_too_large"
	CodeRateLimited     Code = "rate_limited"
	CodeProvider        Code = "provider_error"
	// CodeUnavailable: the bridge cannot serve the call right now (no
	// provider token can be had); the caller should retry after RetryAfter.
	CodeUnavailable Code = "unavailable"
	// CodeNoAgent: the bot asked not to queue, and no agent accepts chats.
	CodeNoAgent  Code = "no_agent"
	CodeInternal Code = "internal"
)

// Error is an error with a code and a message safe to show to the caller.
// The wrapped cause is for logs only.
type Error struct {
	Code    Code
	Message string
	Err     error
	// RetryAfter, when set, tells the caller when trying again makes sense
	// (the Retry-After header).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted public message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error carrying cause for the logs and msg for the caller.
func Wrap(code Code, cause error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: cause}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the public message of err: the *Error message, or a
// generic one that reveals nothing internal.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != CodeInternal {
		return e.Message
	}
	return "internal error"
}

// Sentinel errors shared by adapters.
var (
	// ErrNotFound is returned by stores for a missing item.
	ErrNotFound = &Error{Code: CodeNotFound, Message: "not found"}
	// ErrExists is returned by stores when a create finds the item present.
	ErrExists = &Error{Code: CodeConflict, Message: "already exists"}
	// ErrConversationEnded is returned by providers when the provider
	// conversation can no longer take messages (LiveChat chat_inactive, a
	// closed Zoho conversation).
	ErrConversationEnded = &Error{Code: CodeConflict, Message: "the provider conversation has ended"}
	// ErrRateLimited is returned by providers that still refuse after their
	// bounded retries.
	ErrRateLimited = &Error{Code: CodeRateLimited, Message: "the provider is rate limiting requests"}
)

// RetryAfter returns the RetryAfter of the first *Error in err's chain
// that has one, or zero.
func RetryAfter(err error) time.Duration {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return 0
		}
		if e.RetryAfter > 0 {
			return e.RetryAfter
		}
		err = e.Err
	}
	return 0
}
