//! The OpenAPI 3.1 document of the screening API, built from the Rust types' JSON
//! Schemas (the same ones `pipeline/schema/` holds), so it cannot drift from the code.

use serde_json::{json, Map, Value};

use super::{ApiError, BatchResponse, RedactRequest, RedactResponse};
use crate::contract::{InputPost, ScreenedRecord};

/// The named schemas of the API, with their own `$defs` moved into the document's
/// `components/schemas` (OpenAPI resolves `$ref`s from the document root).
fn component_schemas() -> Map<String, Value> {
    let mut out = Map::new();
    let schemas = [
        ("InputPost", schemars::schema_for!(InputPost)),
        ("ScreenedRecord", schemars::schema_for!(ScreenedRecord)),
        ("ApiError", schemars::schema_for!(ApiError)),
        ("BatchResponse", schemars::schema_for!(BatchResponse)),
        ("RedactRequest", schemars::schema_for!(RedactRequest)),
        ("RedactResponse", schemars::schema_for!(RedactResponse)),
    ];
    for (name, schema) in schemas {
        let mut value = schema.to_value();
        if let Some(obj) = value.as_object_mut() {
            obj.remove("$schema");
            if let Some(Value::Object(defs)) = obj.remove("$defs") {
                for (def, schema) in defs {
                    out.insert(def, schema);
                }
            }
        }
        out.insert(name.to_string(), value);
    }
    let mut all = Value::Object(out);
    rewrite_refs(&mut all);
    match all {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/$defs/") {
                    *r = format!("#/components/schemas/{name}");
                }
            }
            m.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_body(name: &str) -> Value {
    json!({ "content": { "application/json": { "schema": schema_ref(name) } } })
}

fn error_responses(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut m = Map::new();
    let mut add = |code: &str, what: &str| {
        let mut r = json_body("ApiError");
        r["description"] = json!(what);
        m.insert(code.to_string(), r);
    };
    add("401", "no valid API key (`Authorization: Bearer <key>`)");
    add(
        "413",
        "body over the size limit, or a batch over `max_batch` posts",
    );
    add(
        "415",
        "the body is not sent as `Content-Type: application/json`",
    );
    add(
        "429",
        "this key's rate limit is reached (`rate_limited`), or this address sent too many \
         requests without a valid key (`too_many_failed_keys`); `Retry-After` says when to retry",
    );
    add(
        "503",
        "the screening queue is full or the request timed out (`Retry-After`)",
    );
    add(
        "500",
        "screening or storing the records failed (`processing_failed`, `unavailable`)",
    );
    for (code, what) in extra {
        add(code, what);
    }
    m
}

/// The whole document, for a server taking at most `max_batch` posts per batch.
pub fn document(max_batch: usize) -> Value {
    let mut screen = error_responses(&[
        ("400", "invalid UTF-8 or malformed JSON (`malformed_json`, `invalid_utf8`)"),
        (
            "422",
            "a post the contract refuses: `missing_field`, `invalid_field`, `empty_text`, `identifier_in_id`",
        ),
    ]);
    let mut ok = json_body("ScreenedRecord");
    ok["description"] = json!("the screened record (redacted text, risk, route)");
    screen.insert("200".into(), ok);

    let mut batch = error_responses(&[("400", "the body is not a JSON array")]);
    let mut ok = json_body("BatchResponse");
    ok["description"] =
        json!("one result per post, in order: a record, or the post's rejection in place");
    batch.insert("200".into(), ok);

    let mut redact = error_responses(&[
        ("400", "malformed JSON"),
        ("422", "not `{\"text\", \"lang\"?}`"),
    ]);
    let mut ok = json_body("RedactResponse");
    ok["description"] = json!("the text with identifiers replaced, and where they were");
    redact.insert("200".into(), ok);

    let mut input_array = json!({ "type": "array", "items": schema_ref("InputPost") });
    input_array["maxItems"] = json!(max_batch);

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vigie screening API",
            "version": crate::contract::VIGIE_VERSION,
            "description": "Screens health-worker posts before they are shown: patient identifiers redacted, misinformation and rumour signals judged, routing to moderators. Answers carry redacted text only."
        },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/v1/screen": { "post": {
                "operationId": "screen",
                "summary": "Screen one post",
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref("InputPost") } } },
                "responses": screen
            } },
            "/v1/screen/batch": { "post": {
                "operationId": "screenBatch",
                "summary": "Screen several posts in one request",
                "requestBody": { "required": true, "content": { "application/json": { "schema": input_array } } },
                "responses": batch
            } },
            "/v1/redact": { "post": {
                "operationId": "redact",
                "summary": "Redact identifiers from a text (rules only, no model)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref("RedactRequest") } } },
                "responses": redact
            } },
            "/healthz": { "get": { "operationId": "health", "security": [], "summary": "The process is up", "responses": { "200": { "description": "ok" } } } },
            "/readyz": { "get": { "operationId": "ready", "security": [], "summary": "The model is loaded and requests are served", "responses": { "200": { "description": "ready" } } } },
            "/metrics": { "get": { "operationId": "metrics", "security": [], "summary": "Prometheus metrics (OpenMetrics text)", "responses": { "200": { "description": "metrics" } } } },
            "/openapi.json": { "get": { "operationId": "openapi", "security": [], "summary": "This document", "responses": { "200": { "description": "the OpenAPI document" } } } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "An API key from `[serve] api_key_sha256` or `$VIGIE_API_KEYS`" } },
            "schemas": component_schemas()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_operation_answers() {
        let doc = document(64);
        assert_eq!(doc["openapi"], "3.1.0");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 10);
        for r in &found {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("200"), "{method} {path}");
                assert!(op["operationId"].is_string(), "{method} {path}");
            }
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in ["InputPost", "ScreenedRecord", "Risk", "Channel", "ApiError"] {
            assert!(schemas.contains_key(name), "{name}");
        }
    }
}
