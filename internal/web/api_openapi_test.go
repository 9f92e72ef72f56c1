package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	dec := json.NewDecoder(bytes.NewReader(openapiJSON))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIMatchesRoutes keeps openapi.json in step with routes(): every
// route is documented, and every documented operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var served, documented []string
	for _, rt := range routes() {
		served = append(served, rt.method+" "+rt.path)
	}
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	for path, item := range doc.Paths {
		for m := range item {
			if slices.Contains(methods, m) {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	for _, s := range served {
		if !slices.Contains(documented, s) {
			t.Errorf("%s is served but not in openapi.json", s)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("%s is in openapi.json but not served", d)
		}
	}
	if len(served) == 0 || len(documented) == 0 {
		t.Fatalf("nothing compared")
	}
}

// TestOpenAPIErrorCodes keeps the documented error codes equal to those the
// mapper gives.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	got := doc.Components.Schemas["Error"].Properties["error"].Properties["code"].Enum
	want := errorCodes()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("documented codes %v, the API has %v", got, want)
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.call(roleNone, "GET", "/api/v1/openapi.json", nil)
	r.want(t, http.StatusOK, "", "")
	var got, want any
	r.into(t, &got)
	if err := json.Unmarshal(openapiJSON, &want); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("served document differs from openapi.json")
	}
}

// TestMethodNotAllowed tries every path with a method it does not serve.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	allowed := map[string][]string{}
	for _, rt := range routes() {
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	for path, ms := range allowed {
		concrete := strings.NewReplacer("{domain}", "a.example", "{selector}", "a1", "{name}", "alice", "{id}", e.msgID).Replace(path)
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(ms, m) {
				continue
			}
			t.Run(m+" "+path, func(t *testing.T) {
				r := e.call(roleAdmin, m, concrete, nil)
				r.want(t, http.StatusMethodNotAllowed, codeMethodNotAllowed, "")
				allow := r.header.Get("Allow")
				for _, want := range ms {
					if !strings.Contains(allow, want) {
						t.Errorf("Allow %q lacks %s", allow, want)
					}
				}
			})
		}
	}
}
