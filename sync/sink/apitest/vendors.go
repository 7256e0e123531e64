package apitest

import "encoding/json"

// pipedriveError is the body of every failed Pipedrive v1 call, as
// https://pipedrive.readme.io/docs/core-api-concepts-responses documents it.
const pipedriveError = `{"type":"object","required":["success","error"],"properties":{
 "success":{"type":"boolean","enum":[false]},
 "error":{"type":"string"},
 "error_info":{"type":"string"},
 "errorCode":{"type":"integer"},
 "data":{"nullable":true},
 "additional_data":{"nullable":true}}}`

// pipedriveStatuses are the failures Pipedrive documents for every
// endpoint (https://pipedrive.readme.io/docs/core-api-concepts-http-status-codes).
var pipedriveStatuses = []string{"400", "401", "402", "403", "404", "405", "410", "415", "422", "429", "500", "501", "502", "503"}

// PipedriveErrorResponses declares, on every operation that does not
// already, the error statuses Pipedrive's documentation lists for all
// endpoints with its error body. The published document lists few
// (mostly 200), so without this every 429 or 5xx the fakes send to test
// back-off would be a violation; with it, their bodies are still checked.
func PipedriveErrorResponses(doc map[string]any) {
	var schema map[string]any
	if err := json.Unmarshal([]byte(pipedriveError), &schema); err != nil {
		panic(err)
	}
	forEachOperation(doc, func(op map[string]any) {
		res, _ := op["responses"].(map[string]any)
		if res == nil {
			return
		}
		for _, code := range pipedriveStatuses {
			if _, ok := res[code]; !ok {
				res[code] = map[string]any{
					"description": "Pipedrive error (documented for every endpoint)",
					"content":     map[string]any{"application/json": map[string]any{"schema": schema}},
				}
			}
		}
	})
}

func forEachOperation(doc map[string]any, f func(op map[string]any)) {
	paths, _ := doc["paths"].(map[string]any)
	for _, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range []string{"get", "put", "post", "delete", "patch", "head", "options"} {
			if op, ok := item[m].(map[string]any); ok {
				f(op)
			}
		}
	}
}

// salesforceExtra holds the two REST resources mailsync uses that the
// published document leaves out (it describes sObject resources only; the
// SDK itself calls /query outside its document). They are written from
// the REST API Developer Guide v59.0: "Query" (resources_query.htm) and
// "sObject Collections" (resources_composite_sobjects_collections_create.htm),
// with the guide's limits (at most 200 records a call) and the error
// bodies the document uses for every sObject resource.
const salesforceExtra = `{
"/query": {"get": {
  "operationId": "query",
  "parameters": [{"name": "q", "in": "query", "required": true, "schema": {"type": "string", "minLength": 1}}],
  "responses": {
    "200": {"description": "QueryResult", "content": {"application/json": {"schema": {
      "type": "object", "required": ["totalSize", "done", "records"],
      "properties": {
        "totalSize": {"type": "integer"}, "done": {"type": "boolean"},
        "nextRecordsUrl": {"type": "string"},
        "records": {"type": "array", "items": {"type": "object", "required": ["attributes"],
          "properties": {"attributes": {"type": "object", "required": ["type"],
            "properties": {"type": {"type": "string"}, "url": {"type": "string"}}}}}}}}}}},
    "400": {"$ref": "#/components/responses/SalesforceErrors"},
    "401": {"$ref": "#/components/responses/SalesforceErrors"},
    "403": {"$ref": "#/components/responses/SalesforceErrors"},
    "500": {"$ref": "#/components/responses/SalesforceErrors"},
    "503": {"$ref": "#/components/responses/SalesforceErrors"}}}},
"/composite/sobjects": {"post": {
  "operationId": "sObjectCollectionsCreate",
  "requestBody": {"required": true, "content": {"application/json": {"schema": {
    "type": "object", "required": ["records"],
    "properties": {
      "allOrNone": {"type": "boolean"},
      "records": {"type": "array", "minItems": 1, "maxItems": 200, "items": {
        "type": "object", "required": ["attributes"],
        "properties": {"attributes": {"type": "object", "required": ["type"],
          "properties": {"type": {"type": "string", "minLength": 1}}}}}}}}}}},
  "responses": {
    "200": {"description": "one SaveResult per record, in order", "content": {"application/json": {"schema": {
      "type": "array", "items": {"$ref": "#/components/schemas/SaveResult"}}}}},
    "400": {"$ref": "#/components/responses/SalesforceErrors"},
    "401": {"$ref": "#/components/responses/SalesforceErrors"},
    "403": {"$ref": "#/components/responses/SalesforceErrors"},
    "500": {"$ref": "#/components/responses/SalesforceErrors"},
    "503": {"$ref": "#/components/responses/SalesforceErrors"}}}}
}`

const salesforceErrors = `{"description": "Salesforce error list", "content": {"application/json": {"schema": {
  "type": "array", "items": {"type": "object", "required": ["errorCode", "message"],
    "properties": {"errorCode": {"type": "string"}, "message": {"type": "string"},
      "fields": {"type": "array", "items": {"type": "string"}}}}}}}}`

// SalesforceQueryAndCollections adds /query and /composite/sobjects (see
// salesforceExtra) to the document.
func SalesforceQueryAndCollections(doc map[string]any) {
	var extra map[string]any
	var errs map[string]any
	if err := json.Unmarshal([]byte(salesforceExtra), &extra); err != nil {
		panic(err)
	}
	if err := json.Unmarshal([]byte(salesforceErrors), &errs); err != nil {
		panic(err)
	}
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range extra {
		paths[p] = item
	}
	comps, _ := doc["components"].(map[string]any)
	res, _ := comps["responses"].(map[string]any)
	if res == nil {
		res = map[string]any{}
		comps["responses"] = res
	}
	res["SalesforceErrors"] = errs
}
