//! `--explain` for an `fqdn` key (PRODUCT.md §5): each name the key had to cover and where it
//! came from, and what kept a name from counting: another asked name behind a shared IP, a
//! CNAME target standing alone, an untrusted server, an expired TTL.

use std::fmt::Write as _;

use super::super::fqdn::FqdnPattern;
use super::text::list;
use crate::flow::Side;
use crate::names::{Asked, display_name, same_name};

/// A Unix time as RFC 3339 (whole seconds), for `--explain`.
fn when(t: f64) -> String {
    crate::output::rfc3339(&pbjson_types::Timestamp {
        // `as` saturates: a time from the wire at the ends of the range prints, never panics.
        seconds: t.floor() as i64,
        nanos: 0,
    })
}

/// What was found about a side's names: the facts that held and those that did not.
struct Findings<'p> {
    patterns: &'p [FqdnPattern],
    ok: Vec<String>,
    bad: Vec<String>,
}

impl Findings<'_> {
    /// The pattern (as written) that covers `name`, if one does.
    fn cover(&self, name: &str) -> Option<&str> {
        self.patterns
            .iter()
            .find(|p| p.matches(name))
            .map(|p| p.display())
    }
}

/// Why an `fqdn` key did or did not cover a side (PRODUCT.md §5): each name it had to cover
/// and where it came from; what kept a name from counting (another name behind a shared IP, a
/// CNAME target standing alone, an untrusted server, an expired TTL).
pub(super) fn explain_fqdn(
    ps: &[FqdnPattern],
    side: &Side<'_>,
    time: Option<f64>,
) -> (bool, String) {
    let n = &side.names;
    let mut f = Findings {
        patterns: ps,
        ok: Vec::new(),
        bad: Vec::new(),
    };
    let asked: Vec<Asked<'_>> = n.asked().collect();
    asked_names(&mut f, &asked, side, time);
    if let Some(q) = n.query {
        match f.cover(q).map(str::to_owned) {
            Some(p) => {
                f.ok.push(format!("{p} ~ {} (the DNS query)", display_name(q)))
            }
            None => f.bad.push(format!(
                "{} (the DNS query) is not covered",
                display_name(q)
            )),
        }
    }
    flow_names(&mut f, &asked, n.flow);
    let any = !asked.is_empty() || n.query.is_some() || n.flow.iter().any(|f| !f.is_empty());
    if any && f.bad.is_empty() {
        return (true, f.ok.join(", "));
    }
    if !any {
        no_name(&mut f, side, time);
    }
    if let Some(i) = n.ignored {
        f.bad.push(format!(
            "the answer for {} from {} (at {}) was not learned: not a trusted DNS server \
             (dns.servers)",
            display_name(&i.name),
            i.server,
            when(i.at)
        ));
    }
    let mut detail = format!(
        "{} !~ {}",
        list(ps.iter().map(|p| p.display())),
        f.bad.join("; ")
    );
    if !f.ok.is_empty() {
        let _ = write!(detail, "; covered: {}", f.ok.join(", "));
    }
    (false, detail)
}

/// The live asked names: each covered or not (with a CNAME target that alone would have
/// matched), and, when several are behind the IP and one is not covered, that all must be.
fn asked_names(f: &mut Findings<'_>, asked: &[Asked<'_>], side: &Side<'_>, time: Option<f64>) {
    let before = f.bad.len();
    for a in asked {
        let name = display_name(a.name);
        let left = time.map_or(0.0, |t| (a.expires - t).max(0.0));
        let how = if asked.len() > 1 {
            format!("asked {}, ttl {left:.0}s left", when(a.asked_at))
        } else {
            format!("ttl {left:.0}s left")
        };
        if let Some(p) = f.cover(a.name).map(str::to_owned) {
            f.ok.push(format!("{p} ~ {name} (learned from DNS, {how})"));
            continue;
        }
        let mut why = format!("{name} (learned from DNS, {how}) is not covered");
        let alias = a.aliases.iter().find_map(|x| f.cover(x).map(|p| (x, p)));
        if let Some((alias, p)) = alias {
            let _ = write!(
                why,
                "; its CNAME target {} ~ {p} is an alias, which never covers by itself",
                display_name(alias)
            );
        }
        f.bad.push(why);
    }
    if asked.len() > 1 && f.bad.len() > before {
        let ip = side.ip.map_or("this IP".to_string(), |ip| ip.to_string());
        f.bad.insert(
            before,
            format!(
                "the pod asked for {} names that resolved to {ip}: every one must be covered",
                asked.len()
            ),
        );
    }
}

/// The names on the flow: said already (an asked name), excused (a CNAME target of an asked
/// name), covered, or not.
fn flow_names(f: &mut Findings<'_>, asked: &[Asked<'_>], names: &[String]) {
    for n in names.iter().filter(|n| !n.is_empty()) {
        if asked.iter().any(|a| same_name(a.name, n)) {
            continue;
        }
        if let Some(a) = asked.iter().find(|a| a.has_alias(n)) {
            f.ok.push(format!(
                "{} (on the flow) is a CNAME target of {}",
                display_name(n),
                display_name(a.name)
            ));
            continue;
        }
        match f.cover(n).map(str::to_owned) {
            Some(p) => {
                f.ok.push(format!("{p} ~ {} (name on the flow)", display_name(n)))
            }
            None => f.bad.push(format!(
                "{} (name on the flow) is not covered",
                display_name(n)
            )),
        }
    }
}

/// No name at all: say so, and why learned names did not count (no time, expired answers).
fn no_name(f: &mut Findings<'_>, side: &Side<'_>, time: Option<f64>) {
    let ip = side.ip.map_or("it".to_string(), |ip| ip.to_string());
    f.bad.push(format!("no name known for {ip}"));
    if time.is_none() {
        f.bad
            .push("the flow has no time to judge learned names by".into());
    }
    if let (Some(l), Some(t)) = (side.names.learned, time) {
        for a in l.iter().filter(|a| !a.live_at(t)) {
            f.bad.push(format!(
                "{} was learned from DNS but its answer expired {:.0}s before the flow \
                 (asked {}, ttl {:.0}s)",
                display_name(a.name),
                t - a.expires,
                when(a.asked_at),
                a.expires - a.asked_at
            ));
        }
    }
}
