//! The JSON API (PRODUCT.md §12, docs/API.md): `GET /api/v1/flows`, `/api/v1/flows/{uuid}`,
//! `/api/v1/groups`. Field names are stable: a change is a new version of the API.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use super::Triage;
use super::query::{self, Filter};

/// A response of the triage routes.
pub type Reply = Response<Full<Bytes>>;

/// A response with `status`, `content_type` and `body`, never cached.
pub fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn to_json(status: StatusCode, v: &impl Serialize) -> Reply {
    match serde_json::to_vec_pretty(v) {
        Ok(mut body) => {
            body.push(b'\n');
            reply(status, "application/json", body)
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn error(status: StatusCode, msg: &str) -> Reply {
    to_json(status, &json!({ "error": msg }))
}

/// Answers `GET path?query` under `/api/v1/`; `None` when `path` is not an API path.
pub fn route(triage: &Triage, path: &str, query: &str) -> Option<Reply> {
    let rest = path.strip_prefix("/api/v1/")?;
    let filter = match Filter::parse(query) {
        Ok(f) => f,
        Err(e) => return Some(error(StatusCode::BAD_REQUEST, &e)),
    };
    let store = triage.lock();
    Some(match rest {
        "flows" => {
            let flows: Vec<Value> = query::flows(&store, &filter)
                .into_iter()
                .map(|f| {
                    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
                    if let Some(o) = v.as_object_mut() {
                        o.remove("explain");
                    }
                    v
                })
                .collect();
            to_json(StatusCode::OK, &json!({ "flows": flows }))
        }
        "groups" => to_json(
            StatusCode::OK,
            &json!({ "groups": query::groups(&store, &filter) }),
        ),
        _ => match rest.strip_prefix("flows/") {
            Some(uuid) => match store.flow(&query::decode(uuid)) {
                Some(f) => to_json(StatusCode::OK, f),
                None => error(
                    StatusCode::NOT_FOUND,
                    "no such flow in the store (evicted, or never unexpected)",
                ),
            },
            None => error(StatusCode::NOT_FOUND, "no such endpoint"),
        },
    })
}
