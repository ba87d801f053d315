//! The rule file (PRODUCT.md §5): parsing with spans, validation, and compiled matchers.
//!
//! INTERFACE CONTRACT (the rest of the crate codes against exactly this):
//!
//! - `RuleSource { path, text, inline }`: one TOML document. `inline = true` for `config.toml`
//!   itself, whose `[[rule]]` tables are read and whose other top-level keys are ignored (the
//!   config loader validates them); `inline = false` for a rule file, where any top-level key
//!   other than `rule` is an error.
//! - `RuleSet::load(&[RuleSource]) -> Result<RuleSet, RuleErrors>`: all sources, in order, into
//!   one ordered list; nothing is partially loaded.
//! - `RuleSet::first_match(&FlowCtx) -> Option<usize>`: index of the first rule that matches;
//!   a rule whose `expires` is before `ctx.time` (or any rule with `expires` when `ctx.time` is
//!   `None`) does not match.
//! - `RuleSet::rules() -> &[Rule]`: metadata of each rule, in order.
//! - `glob::Glob`: `*` globs (also used for `classify.expected_log_tags`).

pub mod cidr;
mod compile;
pub mod endpoint;
pub(crate) mod expires;
pub mod explain;
mod file;
pub mod fqdn;
pub mod glob;
pub mod labels;
mod load;
mod matcher;
pub mod port;
mod rule;
mod set;

pub use compile::MAX_PATTERN;
pub use explain::Check;
pub use load::{MAX_FILE_BYTES, MAX_NAME, MAX_RULES};
pub use rule::{Class, Rule, RuleError, RuleErrors, RuleSource};
pub use set::RuleSet;

#[cfg(test)]
mod tests;
