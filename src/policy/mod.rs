//! Imported CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy manifests (PRODUCT.md §4 steps
//! 2 and 3, §6 `classify.policy_files`). See docs/POLICIES.md.
//!
//! - [`yaml`]: the manifest shape and the multi-document / `kind: List` reader.
//! - [`selector`]: endpoint selectors onto the rule engine's label selectors.
//! - [`compile`]: deny rules into step-3 matchers.
//!
//! Loading is pure (text in, [`PolicySet`] out); reading files is the caller's job.

mod build;
pub mod compile;
mod model;
pub mod selector;
mod set;
pub mod yaml;

pub use model::{CCNP, CNP, Policy, PolicySource, SpecInfo};
pub use set::PolicySet;

#[cfg(test)]
mod import_tests;
#[cfg(test)]
mod tests;
