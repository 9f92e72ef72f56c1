package dkim

import "fmt"

// classError is a failure class of this package, one of its Err values:
// Error gives "dkim: " and the words, for logs and errors.Is; Result.Reason
// gives the words alone.
type classError struct{ words string }

func sentinel(words string) error { return &classError{words: words} }

func (e *classError) Error() string { return "dkim: " + e.words }

// detailError is an error of a class with what this case adds to it:
// "l=5, canonical body is 3 bytes". The parts stay apart, so that no
// caller cuts them out of the text again.
type detailError struct {
	class error
	// sep joins the class and the detail in Error: ": " or " ".
	sep, detail string
	// cause, when set, is the error of another package the detail says
	// (a signer's), kept so that errors.Is and errors.As find it too.
	cause error
}

// errorf gives an error of class (errors.Is matches it) whose detail is
// built like fmt.Sprintf.
func errorf(class error, sep, format string, args ...any) error {
	return &detailError{class: class, sep: sep, detail: fmt.Sprintf(format, args...)}
}

func (e *detailError) Error() string { return e.class.Error() + e.sep + e.detail }
func (e *detailError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.class}
	}
	return []error{e.class, e.cause}
}

// Describe says an error of this package in words for people, without
// the "dkim: " its Error has for logs: "key record has a wrong v= tag:
// v=DKIM2, want v=DKIM1". It builds the words from the error's parts,
// never by cutting its text; an error of another package says itself.
func Describe(err error) string { return reason(err) }

// reason is Describe.
func reason(err error) string {
	switch e := err.(type) {
	case *detailError:
		return reason(e.class) + e.sep + e.detail
	case *classError:
		return e.words
	}
	return err.Error()
}
