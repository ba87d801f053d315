//! The triage page (PRODUCT.md §12): `/` (the groups, newest first, with filters; or, with
//! `rule=` or `view=flows`, the kept flows), `/groups/{id}` (a group's flows and its draft
//! rule), `/flows/{uuid}` (a flow and its decision path), and the stylesheet and script under
//! `/static/`. Server-rendered, usable with JavaScript off; the script only copies the draft.

use std::fmt::Write as _;

use hyper::StatusCode;

use super::Triage;
use super::api::{Reply, reply};
use super::group::GroupView;
use super::html::{CSP, esc, frame, url, when};
use super::query::{self, Filter, pairs};
use super::store::StoredFlow;

const STYLE: &str = include_str!("static/style.css");
const SCRIPT: &str = include_str!("static/app.js");

fn page(status: StatusCode, html: String) -> Reply {
    let mut r = reply(status, "text/html; charset=utf-8", html);
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        hyper::header::HeaderValue::from_static(CSP),
    );
    h.insert(
        "x-frame-options",
        hyper::header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        "referrer-policy",
        hyper::header::HeaderValue::from_static("no-referrer"),
    );
    r
}

/// Answers `GET path?query` for the page; `None` when `path` is not one of the page's.
pub fn route(triage: &Triage, path: &str, query: &str) -> Option<Reply> {
    match path {
        "/static/style.css" => Some(reply(StatusCode::OK, "text/css; charset=utf-8", STYLE)),
        "/static/app.js" => Some(reply(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            SCRIPT,
        )),
        _ => {
            let filter = match Filter::parse(query) {
                Ok(f) => f,
                Err(e) => {
                    return Some(page(
                        StatusCode::BAD_REQUEST,
                        frame(
                            "Bad request",
                            None,
                            &format!("<p class=\"error\">{}</p>\n", esc(&e)),
                        ),
                    ));
                }
            };
            let refresh = pairs(query)
                .find(|(k, _)| k == "refresh")
                .and_then(|(_, v)| v.parse::<u32>().ok())
                .filter(|s| (5..=3600).contains(s));
            let (status, title, body) = if path == "/" {
                index(triage, &filter, query)
            } else if let Some(id) = path.strip_prefix("/groups/") {
                group(triage, &query::decode(id), &filter)
            } else if let Some(uuid) = path.strip_prefix("/flows/") {
                flow(triage, &query::decode(uuid))
            } else {
                return None;
            };
            Some(page(status, frame(&title, refresh, &body)))
        }
    }
}

type Rendered = (StatusCode, String, String);

fn filter_form(f: &Filter) -> String {
    let field = |name: &str, label: &str, v: Option<&str>| {
        format!(
            "<label>{label}<input name=\"{name}\" value=\"{}\" autocomplete=\"off\"></label>",
            esc(v.unwrap_or(""))
        )
    };
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/\">{}{}{}{}\
<button type=\"submit\">Filter</button><a class=\"clear\" href=\"/\">Clear</a></form>\n",
        field("namespace", "Namespace", f.namespace.as_deref()),
        field("workload", "Workload", f.workload.as_deref()),
        field("destination", "Destination", f.destination.as_deref()),
        field("rule", "Rule", f.rule.as_deref()),
    )
}

fn index(triage: &Triage, f: &Filter, query: &str) -> Rendered {
    let store = triage.lock();
    let (expected, unexpected) = store.counts();
    let mut body = format!(
        "<h1>Unexpected flows</h1>\n<p class=\"summary\">The store holds <b>{unexpected}</b> \
unexpected and <b>{expected}</b> expected flow(s). Groups count every unexpected flow since \
the daemon started. <a href=\"/?{}refresh=30\">Refresh every 30 s</a></p>\n{}",
        if query.is_empty() {
            String::new()
        } else {
            format!("{}&amp;", esc(query))
        },
        filter_form(f)
    );
    let view_flows = pairs(query).any(|(k, v)| k == "view" && v == "flows");
    if f.rule.is_some() || f.class.is_some() || view_flows {
        let flows = query::flows(&store, f);
        let _ = write!(
            body,
            "<h2>Flows ({})</h2>\n{}",
            flows.len(),
            flow_table(&flows)
        );
        return (StatusCode::OK, "Flows".into(), body);
    }
    let groups = query::groups(&store, f);
    if groups.is_empty() {
        body.push_str("<p class=\"empty\">No unexpected flows match. Everything counted so far was expected, or the filters are too narrow.</p>\n");
    } else {
        body.push_str(&group_table(&groups));
    }
    (StatusCode::OK, "Unexpected flows".into(), body)
}

fn group_table(groups: &[GroupView]) -> String {
    let mut t = String::from(
        "<div class=\"scroll\"><table class=\"groups\"><thead><tr><th>Last seen</th><th class=\"num\">Flows</th>\
<th class=\"wide\">Direction</th><th>Source</th><th>Destination</th><th>Port</th><th class=\"wide\">Verdict</th>\
<th class=\"wide\">First seen</th><th class=\"wide\">Latest flow</th></tr></thead><tbody>\n",
    );
    for g in groups {
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td class=\"num\"><a href=\"/groups/{}\">{}</a></td><td class=\"wide\">{}</td><td>{}</td>\
<td><a href=\"/groups/{}\">{}</a></td><td class=\"nowrap\">{}</td><td class=\"wide nowrap\">{}</td><td class=\"wide\">{}</td>\
<td class=\"wide\"><a class=\"uuid\" href=\"/flows/{}\">{}</a></td></tr>",
            when(g.last_seen.as_deref()),
            url(&g.id),
            g.flows,
            esc(g.direction),
            esc(&g.source),
            url(&g.id),
            esc(&g.destination),
            esc(g.port.as_deref().unwrap_or("–")),
            esc(&g.verdicts.join(", ")),
            when(g.first_seen.as_deref()),
            url(&g.sample_uuid),
            esc(&g.sample_uuid),
        );
    }
    t.push_str("</tbody></table></div>\n");
    t
}

fn flow_table(flows: &[&StoredFlow]) -> String {
    if flows.is_empty() {
        return "<p class=\"empty\">No kept flow matches.</p>\n".into();
    }
    let mut t = String::from(
        "<div class=\"scroll\"><table class=\"flows\"><thead><tr><th>Time</th><th>Source</th><th>Destination</th>\
<th class=\"wide\">Names</th><th>Verdict</th><th>Class</th><th>Reason</th><th class=\"wide\">Node</th><th>Flow</th></tr></thead><tbody>\n",
    );
    for f in flows {
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"wide\">{}</td><td>{} {}</td><td><span class=\"class {}\">{}</span></td>\
<td>{}</td><td class=\"wide\">{}</td><td><a class=\"uuid\" href=\"/flows/{}\">{}</a></td></tr>",
            when(f.time.as_deref()),
            esc(&f.source),
            esc(&f.destination),
            esc(&f.names.join(", ")),
            esc(f.verdict),
            esc(f.drop_reason.as_deref().unwrap_or("")),
            f.class,
            f.class,
            esc(&f.reason),
            esc(&f.node),
            url(&f.uuid),
            esc(&f.uuid),
        );
    }
    t.push_str("</tbody></table></div>\n");
    t
}

fn not_found(what: &str) -> Rendered {
    (
        StatusCode::NOT_FOUND,
        "Not found".into(),
        format!(
            "<h1>Not found</h1>\n<p class=\"empty\">{} <a href=\"/\">Back to the groups</a>.</p>\n",
            esc(what)
        ),
    )
}

fn group(triage: &Triage, id: &str, f: &Filter) -> Rendered {
    let store = triage.lock();
    let by_id = Filter {
        group: Some(id.to_string()),
        limit: query::MAX_LIMIT,
        ..f.clone()
    };
    let Some(g) = query::groups(
        &store,
        &Filter {
            namespace: None,
            workload: None,
            destination: None,
            since: None,
            ..by_id.clone()
        },
    )
    .into_iter()
    .next() else {
        return not_found("No such group: it was evicted, or the daemon restarted.");
    };
    let flows = query::flows(
        &store,
        &Filter {
            class: None,
            rule: None,
            namespace: None,
            workload: None,
            destination: None,
            since: None,
            ..by_id
        },
    );
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/\">Groups</a> › group {}</p>\n<h1>{} → {}{}</h1>\n\
<dl class=\"facts\"><dt>Direction</dt><dd>{}</dd><dt>Flows</dt><dd>{} since start, {} kept</dd>\
<dt>First seen</dt><dd>{}</dd><dt>Last seen</dt><dd>{}</dd><dt>Verdicts</dt><dd>{}</dd></dl>\n",
        esc(&g.id),
        esc(&g.source),
        esc(&g.destination),
        g.port
            .as_deref()
            .map(|p| format!(" <span class=\"port\">{}</span>", esc(p)))
            .unwrap_or_default(),
        esc(g.direction),
        g.flows,
        g.kept,
        when(g.first_seen.as_deref()),
        when(g.last_seen.as_deref()),
        esc(&g.verdicts.join(", ")),
    );
    body.push_str(&draft_box(&g, f));
    let _ = write!(
        body,
        "<h2>Kept flows ({})</h2>\n{}",
        flows.len(),
        flow_table(&flows)
    );
    (StatusCode::OK, format!("Group {}", g.id), body)
}

fn draft_box(g: &GroupView, f: &Filter) -> String {
    format!(
        "<section class=\"draft\"><h2>Draft rule</h2>\n<p>If this traffic is blocked on purpose, \
add this rule to a rule file (then <code>hubble-noise check</code>). Fill in who owns it and why; \
it expires in {} days.</p>\n\
<form method=\"get\" action=\"/groups/{}\" class=\"fill\">\
<label>Owner<input name=\"owner\" value=\"{}\" autocomplete=\"off\"></label>\
<label>Comment<input name=\"comment\" value=\"{}\" autocomplete=\"off\"></label>\
<label>Expires in days<input name=\"expires_in_days\" type=\"number\" min=\"1\" max=\"3650\" value=\"{}\"></label>\
<button type=\"submit\">Update</button></form>\n\
<textarea id=\"draft\" class=\"rule\" readonly rows=\"{}\" spellcheck=\"false\">{}</textarea>\n\
<button type=\"button\" class=\"copy\" data-copy=\"draft\" hidden>Copy rule</button></section>\n",
        f.days,
        url(&g.id),
        esc(f.owner.as_deref().unwrap_or("")),
        esc(f.comment.as_deref().unwrap_or("")),
        f.days,
        g.draft_rule.lines().count().clamp(4, 40),
        esc(&g.draft_rule),
    )
}

fn flow(triage: &Triage, uuid: &str) -> Rendered {
    let store = triage.lock();
    let Some(f) = store.flow(uuid) else {
        return not_found(
            "No such flow in the store: it was evicted, or it was expected and not kept.",
        );
    };
    let mut facts = String::new();
    let rows: [(&str, String); 12] = [
        ("Time", f.time.clone().unwrap_or_default()),
        ("Node", f.node.clone()),
        ("Verdict", f.verdict.to_string()),
        ("Drop reason", f.drop_reason.clone().unwrap_or_default()),
        ("Direction", f.direction.clone()),
        ("Source", f.source.clone()),
        ("Destination", f.destination.clone()),
        ("Names", f.names.join(", ")),
        ("Reason", f.reason.clone()),
        ("Rule", f.rule.clone().unwrap_or_default()),
        ("Decided by", f.attribution.to_string()),
        ("Flows", f.flows.to_string()),
    ];
    for (k, v) in rows {
        let _ = write!(facts, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    }
    let links = match (&f.group, &f.rule) {
        (Some(g), _) => format!(
            "<p><a href=\"/groups/{}\">Its group and a draft rule</a></p>\n",
            url(g)
        ),
        (None, Some(r)) => format!(
            "<p><a href=\"/?rule={}\">Other flows this rule decided</a></p>\n",
            url(r)
        ),
        _ => String::new(),
    };
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/\">Groups</a> › flow</p>\n<h1>Flow <span class=\"uuid\">{}</span> \
<span class=\"class {}\">{}</span></h1>\n<dl class=\"facts\">{facts}</dl>\n{links}\
<h2>Decision path</h2>\n<pre class=\"explain\">{}</pre>\n",
        esc(&f.uuid),
        f.class,
        f.class,
        esc(&f.explain.join("\n")),
    );
    (StatusCode::OK, format!("Flow {}", f.uuid), body)
}
