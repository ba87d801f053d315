//! Compiled rules: what each key of a rule means for a flow ([`CompiledMatch`], [`SideMatch`],
//! tested directly), and the indexes that make finding the first matching rule cheap
//! ([`Matcher`]): every `fqdn` pattern of every rule in one `RegexSet` per side
//! ([`side_index`]), every `cidr` in one prefix index per side, the exactly-valued keys in
//! bitsets ([`prefilter`]). A flow's names and IPs are looked up once (lazily, only when a
//! candidate rule needs them) into bitsets over rules; the rules are then walked in order
//! testing only scalar fields and bits ([`walk`]).

mod bits;
mod prefilter;
mod semantics;
mod side_index;
mod walk;

pub(crate) use semantics::{CompiledMatch, SideMatch, in_force};
pub(crate) use walk::Matcher;
