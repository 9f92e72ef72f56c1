package store

import (
	"errors"
	"fmt"
)

// Problem is an error of a known class (ErrNotFound, ErrConflict, a
// sentinel of another package) with a message written for the person who
// asked: a full sentence, capitalised, without package prefixes. Error
// gives the class and the message, for the log; Detail gives the message
// alone, for people. Every boundary (HTTP, CLI, panel) shows people Detail,
// never Error, and never cuts error text.
type Problem struct {
	// Err is the class or the cause; errors.Is and errors.As see through
	// to it.
	Err error
	// Message is the sentence for people.
	Message string
	// Field is the JSON name of the field at fault, or "".
	Field string
}

// Error gives "class: message", for the log.
func (p *Problem) Error() string {
	if p.Err == nil {
		return p.Message
	}
	return p.Err.Error() + ": " + p.Message
}

// Unwrap gives the class, for errors.Is.
func (p *Problem) Unwrap() error { return p.Err }

// UserMessage gives the sentence for people; see Detail.
func (p *Problem) UserMessage() string { return p.Message }

// Explain returns a *Problem of class err whose message is built like
// fmt.Sprintf: a sentence for people that says what is wrong.
func Explain(err error, format string, args ...any) error {
	return &Problem{Err: err, Message: fmt.Sprintf(format, args...)}
}

// class is a sentinel error, a failure class: its text for the log, and a
// generic sentence for people.
type class struct{ text, message string }

func (c *class) Error() string       { return c.text }
func (c *class) UserMessage() string { return c.message }

// Class returns a new sentinel error (compare it with errors.Is) whose
// Error is text, for the log, and whose UserMessage is message: what
// Detail says of an error of this class that carries no sentence of its
// own.
func Class(text, message string) error { return &class{text: text, message: message} }

// userMessager is any error that carries a sentence for people, whichever
// package made it: *Problem, *FieldError, and the typed errors of packages
// that may not import this one (they declare the same method).
type userMessager interface {
	error
	UserMessage() string
}

// Detail gives the sentence for people that err carries: the outermost
// UserMessage in its chain, and the field it names (its UserField
// method: *Problem, *FieldError), if any. ok is false when err carries none; the caller then
// says something generic about err's class, never err.Error().
func Detail(err error) (message, field string, ok bool) {
	var um userMessager
	if !errors.As(err, &um) {
		return "", "", false
	}
	if f, ok := um.(interface{ UserField() string }); ok {
		field = f.UserField()
	}
	return um.UserMessage(), field, true
}

// UserField gives the field at fault, or "".
func (p *Problem) UserField() string { return p.Field }

// UserField gives the field at fault.
func (e *FieldError) UserField() string { return e.Field }

// UserMessage gives the reason as a sentence for people: the reason's own
// sentence when it carries one, else its words (which this package writes
// for administrators) with a capital letter and a full stop.
func (e *FieldError) UserMessage() string {
	if m, _, ok := Detail(e.Err); ok {
		return m
	}
	return sentence(e.Err.Error())
}

// sentence makes words written for people into a sentence: a capital
// first letter and a final full stop. It is for text this program wrote,
// never for cutting error text apart.
func sentence(s string) string {
	if s == "" {
		return s
	}
	if c := s[0]; c >= 'a' && c <= 'z' {
		s = string(c-'a'+'A') + s[1:]
	}
	switch s[len(s)-1] {
	case '.', '!', '?':
		return s
	}
	return s + "."
}
