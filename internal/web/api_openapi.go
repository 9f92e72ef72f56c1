package web

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openapiJSON describes the API (OpenAPI 3.1); a test keeps it in step
// with routes().
//
//go:embed openapi.json
var openapiJSON []byte

func (a *api) openAPI(c *call) (int, any, error) {
	return http.StatusOK, json.RawMessage(openapiJSON), nil
}
