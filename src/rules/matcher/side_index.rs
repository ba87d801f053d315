//! The `fqdn` and `cidr` index of one side over all rules: which rules' keys hold for a flow's
//! names and IP, as bitsets.

use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet, meta};

use super::super::cidr::CidrIndex;
use super::super::fqdn;
use super::bits::set_bit;
use super::semantics::SideMatch;
use crate::flow::Side;
use crate::names::SideNames;

/// The fqdn and cidr index of one side over all rules.
#[derive(Debug, Default)]
pub(super) struct SideIndex {
    /// Every fqdn pattern of this side, one search for all (built as `regex::RegexSet` builds
    /// its set; used directly so that the matches go to a set kept between searches).
    fqdn: Option<meta::Regex>,
    /// Pattern index in `fqdn` → rule index.
    fqdn_rule: Vec<u32>,
    cidr: CidrIndex,
}

/// The most memory the compiled fqdn patterns of all rules (one side) may take.
pub(crate) const MAX_COMPILED_BYTES: usize = 32 << 20;
/// The most memory one lazy-DFA cache of the fqdn patterns may take (a cache: when full it is
/// cleared, matching stays correct). There is one per matching thread and direction.
pub(crate) const MAX_DFA_CACHE_BYTES: usize = 4 << 20;
/// The largest total size of the fqdn patterns of all rules (one side), as regular
/// expressions: about 1,000 patterns of 255 characters full of wildcards, or about 8,000 of
/// the usual `*.example.com` kind.
pub(crate) const MAX_FQDN_REGEX_BYTES: usize = 256 << 10;

impl SideIndex {
    pub(super) fn build(sides: &[&SideMatch]) -> Result<Self, String> {
        let mut idx = SideIndex::default();
        let mut patterns = Vec::new();
        for (r, side) in sides.iter().enumerate() {
            let r = u32::try_from(r).map_err(|_| "too many rules".to_string())?;
            for c in side.cidr.iter().flatten() {
                idx.cidr.insert(*c, r);
            }
            for p in side.fqdn.iter().flatten() {
                patterns.push(p.to_regex());
                idx.fqdn_rule.push(r);
            }
        }
        let source: usize = patterns.iter().map(String::len).sum();
        if source > MAX_FQDN_REGEX_BYTES {
            // Checked before compiling: building the set takes memory in proportion to the
            // patterns' size (and their wildcards) well before the compiled-size limit is hit.
            return Err(format!(
                "the {} fqdn patterns of all rules are too large together ({} KiB as regular \
                 expressions, the limit is {} KiB): use fewer patterns or fewer wildcards",
                patterns.len(),
                source >> 10,
                MAX_FQDN_REGEX_BYTES >> 10
            ));
        }
        if !patterns.is_empty() {
            let config = meta::Config::new()
                .match_kind(MatchKind::All)
                .utf8_empty(true)
                .which_captures(WhichCaptures::None)
                .nfa_size_limit(Some(MAX_COMPILED_BYTES))
                .hybrid_cache_capacity(MAX_DFA_CACHE_BYTES);
            let set = meta::Builder::new()
                .configure(config)
                .syntax(syntax::Config::new().utf8(true))
                .build_many(&patterns)
                .map_err(|e| {
                    if e.size_limit().is_some() {
                        format!(
                            "the {} fqdn patterns compiled together exceed {} MiB: use fewer \
                             or simpler patterns",
                            patterns.len(),
                            MAX_COMPILED_BYTES >> 20
                        )
                    } else {
                        format!("fqdn patterns do not compile together: {e}")
                    }
                })?;
            idx.fqdn = Some(set);
        }
        Ok(idx)
    }

    pub(super) fn fill_cidr(&self, side: &Side<'_>, bits: &mut [u64]) {
        if let Some(ip) = side.ip {
            self.cidr.lookup(ip, |r| set_bit(bits, r));
        }
    }

    /// The rules whose `fqdn` key (this side) covers the side's names, into `strict`; and into
    /// `any` the rules whose key matches at least one of its names, aliases included (what a
    /// key would match if one name were enough). Both stay empty when the side has no name.
    pub(super) fn fill_fqdn(
        &self,
        names: &SideNames<'_>,
        strict: &mut [u64],
        any: &mut [u64],
        s: &mut Names,
    ) {
        let Some(set) = self.fqdn.as_ref() else {
            return;
        };
        let mut first = true;
        for n in names.required() {
            if !self.name_bits(set, n, s) {
                s.tmp.fill(0);
            }
            for ((st, an), t) in strict.iter_mut().zip(any.iter_mut()).zip(&s.tmp) {
                *st = if first { *t } else { *st & t };
                *an |= t;
            }
            first = false;
        }
        // CNAME targets never cover by themselves; for `any` they count like names.
        for alias in names.asked().flat_map(|a| a.aliases.iter()) {
            if self.name_bits(set, alias, s) {
                for (an, t) in any.iter_mut().zip(&s.tmp) {
                    *an |= t;
                }
            }
        }
    }

    /// The rules with a pattern (this side) matching `name`, into `s.tmp`. False, with
    /// `s.tmp` unspecified, when none does.
    fn name_bits(&self, set: &meta::Regex, name: &str, s: &mut Names) -> bool {
        if !fqdn::normalize_into(name, &mut s.buf) {
            return false;
        }
        let patterns = set.pattern_len();
        let hits = match &mut s.hits {
            Some(hits) if hits.capacity() >= patterns => {
                hits.clear();
                hits
            }
            slot => slot.insert(PatternSet::new(patterns)),
        };
        set.which_overlapping_matches(&Input::new(&s.buf), hits);
        if hits.is_empty() {
            return false;
        }
        s.tmp.fill(0);
        // The set holds `len` patterns: the walk stops at the last one.
        for p in hits.iter().take(hits.len()) {
            if let Some(&r) = self.fqdn_rule.get(p.as_usize()) {
                set_bit(&mut s.tmp, r);
            }
        }
        true
    }
}

/// Scratch space for name normalization and regex-set hits.
#[derive(Default)]
pub(super) struct Names {
    buf: String,
    /// The patterns one name matched; made for the largest set searched so far.
    hits: Option<PatternSet>,
    /// The rules one name's patterns belong to.
    pub(super) tmp: Vec<u64>,
}
