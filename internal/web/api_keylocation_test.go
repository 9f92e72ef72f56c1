package web

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/store"
)

// A key's JSON says where its private half lives, and a key cannot be
// asked for in a PKCS#11 token this server has none of (issue 16).
func TestAPIKeyLocation(t *testing.T) {
	e := newEnv(t)
	r := e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"s1","algorithm":"ed25519"}`)
	r.want(t, http.StatusCreated, "", "")
	if !strings.Contains(string(r.body), `"location":{"backend":"sealed"}`) {
		t.Errorf("generated key does not say where it lives: %s", r.body)
	}
	r = e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"s2","algorithm":"ed25519","backend":"pkcs11"}`)
	r.want(t, http.StatusUnprocessableEntity, codeInvalid, "backend")
	if !strings.Contains(string(r.body), "No PKCS#11 token is configured") {
		t.Errorf("refusal does not say why: %s", r.body)
	}
	e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"s3","backend":"kms"}`).want(t, http.StatusUnprocessableEntity, codeInvalid, "backend")
	r = e.call(roleDomA, "GET", "/api/v1/domains/a.example/keys/s1", nil)
	r.want(t, http.StatusOK, "", "")
	if !strings.Contains(string(r.body), `"location":{"backend":"sealed"}`) {
		t.Errorf("key does not say where it lives: %s", r.body)
	}
}

// openapi.json documents every field of a key and of its location, as the
// API writes them.
func TestOpenAPIKeySchema(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	for schema, v := range map[string]any{"Key": store.Key{}, "KeyLocation": store.KeyLocation{}} {
		var fields []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			fields = append(fields, name)
		}
		var documented []string
		for name := range doc.Components.Schemas[schema].Properties {
			documented = append(documented, name)
		}
		slices.Sort(fields)
		slices.Sort(documented)
		if !slices.Equal(fields, documented) {
			t.Errorf("%s: JSON fields %v, documented %v", schema, fields, documented)
		}
	}
}

// With a token configured, the API makes keys in it; a token that cannot
// be used is a 503 that names no module, token or return value.
func TestAPIKeyInToken(t *testing.T) {
	tok := &admintest.FakeToken{}
	e := newEnvWith(t, envOptions{token: tok})
	r := e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"h1","algorithm":"ed25519","backend":"pkcs11"}`)
	r.want(t, http.StatusCreated, "", "")
	if !strings.Contains(string(r.body), `"location":{"backend":"pkcs11","token":"test-hsm","label":"dkimd h1._domainkey.a.example","object_id":"0001"}`) {
		t.Errorf("key made in the token: %s", r.body)
	}
	tok.SetDown(true)
	r = e.call(roleDomA, "POST", "/api/v1/domains/a.example/keys", `{"selector":"h2","backend":"pkcs11"}`)
	r.want(t, http.StatusServiceUnavailable, codeUnavailable, "")
	if strings.Contains(string(r.body), "module gone") || strings.Contains(string(r.body), "test-hsm") {
		t.Errorf("503 carries the token's details: %s", r.body)
	}
}
