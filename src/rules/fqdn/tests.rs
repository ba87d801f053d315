use super::*;
use crate::names::{display_name, normalize, same_name};
use proptest::prelude::*;
use regex::Regex;

/// The compiled (hot-path) form: the regex against the normalized name.
fn by_regex(pattern: &str, name: &str) -> bool {
    let p = FqdnPattern::new(pattern).expect("valid pattern");
    let re = Regex::new(&p.to_regex()).expect("regex compiles");
    let mut buf = String::new();
    normalize_into(name, &mut buf) && re.is_match(&buf)
}

/// The direct (explain) form.
fn direct(pattern: &str, name: &str) -> bool {
    FqdnPattern::new(pattern)
        .expect("valid pattern")
        .matches(name)
}

/// Cilium's own answers (written by tests/peers/matchpattern with Cilium's Go code): every
/// pattern of its test vectors and API examples against every name, both forms.
#[test]
fn every_pattern_against_every_name_as_cilium_answers() {
    let table = include_str!("../../../tests/fixtures/matchpattern/table.tsv");
    let mut rows = 0;
    let mut wrong = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [pattern, name, valid, want] = cols[..] else {
            panic!("malformed table row {line:?}");
        };
        rows += 1;
        let ours = FqdnPattern::new(pattern);
        if valid == "0" {
            if ours.is_ok() {
                wrong.push(format!("{pattern:?}: Cilium refuses it, we accept it"));
            }
            continue;
        }
        if ours.is_err() {
            wrong.push(format!("{pattern:?}: Cilium accepts it, we refuse it"));
            continue;
        }
        let want = want == "1";
        for (how, got) in [
            ("regex", by_regex(pattern, name)),
            ("direct", direct(pattern, name)),
        ] {
            if got != want {
                wrong.push(format!(
                    "{pattern:?} vs {name:?} ({how}): Cilium says {want}, we say {got}"
                ));
            }
        }
    }
    assert!(rows > 2000, "the table has {rows} rows");
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "{} differences:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_lone_star_matches_the_root_and_well_formed_names_only() {
    for p in ["*", "**", "*.", "***."] {
        assert!(by_regex(p, "."), "{p} root");
        assert!(direct(p, "."), "{p} root");
        for n in ["io", "cilium.io.", "_srv._tcp.cilium.io", "A-B.c_D"] {
            assert!(by_regex(p, n) && direct(p, n), "{p} {n}");
        }
        for n in ["", ".io", "a..b", "a b.io", "ci*lium.io", "é.io", "a.b.."] {
            assert!(!by_regex(p, n) && !direct(p, n), "{p} {n}");
        }
    }
}

#[test]
fn an_empty_name_is_no_name_and_a_name_over_255_characters_never_matches() {
    assert!(!by_regex("*", "") && !direct("*", ""));
    let long = format!("{}.io", "a".repeat(253));
    assert!(!by_regex("*", &long) && !direct("*", &long));
    let fits = format!("{}.io", "a".repeat(252));
    assert!(by_regex("*", &fits) && direct("*", &fits));
    assert!(by_regex("*.io", &format!("{fits}.")));
}

#[test]
fn patterns_the_crd_refuses_are_refused_with_the_reason() {
    for (p, why) in [
        ("", "empty fqdn pattern"),
        ("a b.com", "invalid character ' '"),
        ("exa$mple.com", "invalid character '$'"),
        ("a..b", "empty label"),
        (".a.com", "empty label"),
        (".", "empty label"),
        ("a.com..", "empty label"),
    ] {
        let e = FqdnPattern::new(p).expect_err(p);
        assert!(e.contains(why), "{p:?}: {e}");
    }
    assert!(FqdnPattern::new(&"a".repeat(256)).is_err());
    assert!(FqdnPattern::new(&"a".repeat(255)).is_ok());
    // Cilium accepts these; a `**` after the start is a plain `*`.
    for p in ["a.**.com", "***.a", "**.", "**foo.com"] {
        assert!(FqdnPattern::new(p).is_ok(), "{p}");
    }
    assert!(direct("a.**.com", "a.b.com") && !direct("a.**.com", "a.b.c.com"));
}

#[test]
fn same_name_ignores_case_and_one_trailing_dot() {
    assert!(same_name("API.vendor.io.", "api.Vendor.IO"));
    assert!(!same_name("api.vendor.io..", "api.vendor.io"));
    assert_eq!(display_name("Api.Vendor.IO."), "api.vendor.io");
    assert_eq!(display_name("."), ".");
    assert_eq!(normalize("A.b").as_deref(), Some("a.b."));
    assert_eq!(normalize(""), None);
}

/// The regression that made this matcher linear: the old one recursed on every `*`, which is
/// exponential for `*a*a*…*b` against a long run of `a` (reached through `--explain` on every
/// unmatched flow). Correctness only here; speed is for the benchmarks.
#[test]
fn many_stars_against_a_long_label_is_answered() {
    let pattern = format!("{}b", "*a".repeat(60));
    let p = FqdnPattern::new(&pattern).expect("valid");
    let name = "a".repeat(250);
    assert!(!p.matches(&name));
    assert!(p.matches(&format!("{}b", "a".repeat(200))));
}

/// A plain oracle: Cilium's regex written the way Cilium writes it, stars expanded one by
/// one (no collapsing), matched against the normalized name.
fn oracle(pattern: &str, name: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let star_only = p.trim_end_matches('.').bytes().all(|c| c == b'*');
    let re = if star_only {
        r"(^([-a-zA-Z0-9_]+[.])+$)|(^[.]$)".to_string()
    } else {
        let p = if p.ends_with('.') { p } else { format!("{p}.") };
        let mut s = p.replace('.', "[.]");
        let stars = s.bytes().take_while(|c| *c == b'*').count();
        if stars >= 2 && s[stars..].starts_with("[.]") {
            s = format!(
                "([-a-zA-Z0-9_]+([.][-a-zA-Z0-9_]+){{0,}})[.]{}",
                &s[stars + 3..]
            );
        }
        let s = Regex::new(r"[*]+")
            .expect("regex")
            .replace_all(&s, "[-a-zA-Z0-9_]*")
            .into_owned();
        format!("^{s}$")
    };
    let mut buf = String::new();
    normalize_into(name, &mut buf) && Regex::new(&re).expect("oracle regex").is_match(&buf)
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    let label =
        prop::collection::vec(prop_oneof!["[abx*]", "[-_1]", "[A]"], 1..4).prop_map(|v| v.concat());
    (0usize..4, prop::collection::vec(label, 1..4), any::<bool>()).prop_map(|(stars, ls, dot)| {
        let body = ls.join(".");
        let pre = match stars {
            2 => "**.",
            3 => "***.",
            _ => "",
        };
        format!("{pre}{body}{}", if dot { "." } else { "" })
    })
}

proptest! {
    #[test]
    fn regex_direct_and_oracle_agree(
        p in pattern_strategy(),
        n in "[abxAB1_ *-]{0,3}(\\.[abxAB1_ -]{0,3}){0,4}\\.{0,2}",
    ) {
        prop_assume!(FqdnPattern::new(&p).is_ok());
        let want = oracle(&p, &n);
        prop_assert_eq!(by_regex(&p, &n), want, "regex: pattern {} name {:?}", p, n);
        prop_assert_eq!(direct(&p, &n), want, "direct: pattern {} name {:?}", p, n);
    }
}
