//! Enum values our schema may not know (PRODUCT.md §2, "Newer Hubble than our schema").
//!
//! protobuf keeps an enum field as its number, so a value that a newer Cilium added reaches us
//! intact over gRPC, and the JSON reader accepts any number too. A `hubble` CLI newer than our
//! schema may print a *name* we lack; such a name, when it is plausible (`[A-Z][A-Z0-9_]*`, at
//! most [`MAX_NAME_LEN`] bytes), is interned here: it gets a code from a reserved range of
//! negative numbers (no Cilium enum has a negative value), the flow's field holds that code like
//! any other number, and labels turn it back into the name. At most [`MAX_NAMES`] names are
//! interned per process; a further unknown name, or an implausible one (lower case, spaces,
//! control characters, too long), reads as the enum's zero value: unknown. Nothing about an enum
//! value ever makes a line unreadable.
//!
//! Labels: a value of our schema (which holds every value Cilium has released up to v1.19.4)
//! is labelled with its upstream name; an interned name with itself; any other value with its
//! number as a string (`drop_reason="250"`).

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Mutex;

use crate::api::flow::{
    DropReason, FlowType, IpVersion, L7FlowType, LostEventSource, TrafficDirection, Verdict,
};
use crate::api::relay::NodeState;

/// The most unknown names interned per process (all enums together).
pub const MAX_NAMES: usize = 256;

/// The longest unknown name that is kept as a label; a longer one reads as unknown.
pub const MAX_NAME_LEN: usize = 64;

/// The first code given to an interned name.
const NAME_BASE: i32 = i32::MIN;

/// A protobuf enum of our schema, open to values it does not list.
pub trait OpenEnum: Copy + Eq + 'static {
    /// The enum's name, which keeps interned names of different enums apart.
    const KIND: &'static str;
    /// The value of an upstream name.
    fn from_name(s: &str) -> Option<Self>;
    /// The value of a number.
    fn from_number(n: i32) -> Option<Self>;
    /// The upstream name.
    fn name(self) -> &'static str;
}

macro_rules! open_enum {
    ($($t:ty),*) => {$(
        impl OpenEnum for $t {
            const KIND: &'static str = stringify!($t);
            fn from_name(s: &str) -> Option<Self> {
                <$t>::from_str_name(s)
            }
            fn from_number(n: i32) -> Option<Self> {
                <$t>::try_from(n).ok()
            }
            fn name(self) -> &'static str {
                self.as_str_name()
            }
        }
    )*};
}
open_enum!(
    DropReason,
    Verdict,
    TrafficDirection,
    FlowType,
    L7FlowType,
    IpVersion,
    LostEventSource,
    NodeState
);

/// Interned names: (enum kind, name); the code of entry `i` is `NAME_BASE + i`.
static NAMES: Mutex<Vec<(&'static str, &'static str)>> = Mutex::new(Vec::new());

/// Whether `s` looks like a protobuf enum name as Cilium writes them.
pub fn plausible_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// The number a JSON name stands for: the schema's value, else the interned code of a
/// plausible unknown name, else 0 (unknown).
pub fn number_of_name<E: OpenEnum + Into<i32>>(s: &str) -> i32 {
    if let Some(e) = E::from_name(s) {
        return e.into();
    }
    if !plausible_name(s) {
        return 0;
    }
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let found = names.iter().position(|(k, n)| *k == E::KIND && *n == s);
    let index = match found {
        Some(i) => i,
        None if names.len() < MAX_NAMES => {
            // Leaked on purpose: at most MAX_NAMES names of at most MAX_NAME_LEN bytes, which
            // labels then borrow for the life of the process.
            names.push((E::KIND, Box::leak(s.to_owned().into_boxed_str())));
            names.len() - 1
        }
        None => return 0,
    };
    // index < MAX_NAMES, far below i32::MAX.
    NAME_BASE.saturating_add(i32::try_from(index).unwrap_or(i32::MAX))
}

/// The interned name of `code`, if it is one of `E`'s.
fn interned<E: OpenEnum>(code: i64) -> Option<&'static str> {
    let index = usize::try_from(code.checked_sub(i64::from(NAME_BASE))?).ok()?;
    if index >= MAX_NAMES {
        return None;
    }
    let names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names
        .get(index)
        .filter(|(k, _)| *k == E::KIND)
        .map(|(_, n)| *n)
}

/// An enum value as a flow carries it: possibly one the schema does not list.
///
/// Held as an `i64` so that the deprecated `drop_reason` (a `uint32`) fits as well as the
/// enum fields (`int32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Open<E> {
    raw: i64,
    _enum: PhantomData<E>,
}

impl<E: OpenEnum> Open<E> {
    /// The value of a field.
    pub fn new(raw: impl Into<i64>) -> Self {
        Self {
            raw: raw.into(),
            _enum: PhantomData,
        }
    }

    /// The number as the field holds it (an interned name's code for a name we lack).
    pub fn raw(self) -> i64 {
        self.raw
    }

    /// The schema's value, when the schema lists it.
    pub fn known(self) -> Option<E> {
        i32::try_from(self.raw).ok().and_then(E::from_number)
    }

    /// Whether the value is `e`.
    pub fn is(self, e: E) -> bool {
        self.known() == Some(e)
    }

    /// Whether the field holds 0 (absent or unknown).
    pub fn is_zero(self) -> bool {
        self.raw == 0
    }

    /// The upstream name, or the name a newer `hubble` printed; `None` for a bare number.
    pub fn name(self) -> Option<&'static str> {
        match self.known() {
            Some(e) => Some(e.name()),
            None => interned::<E>(self.raw),
        }
    }

    /// The label value: the name, else the number as a string.
    pub fn label(self) -> Cow<'static, str> {
        match self.name() {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(self.raw.to_string()),
        }
    }
}

impl<E: OpenEnum> From<E> for Open<E>
where
    E: Into<i32>,
{
    fn from(e: E) -> Self {
        Open::new(e.into())
    }
}

impl PartialEq<Open<DropReason>> for DropReason {
    fn eq(&self, other: &Open<DropReason>) -> bool {
        other.is(*self)
    }
}

impl PartialEq<DropReason> for Open<DropReason> {
    fn eq(&self, other: &DropReason) -> bool {
        self.is(*other)
    }
}

/// The drop reason of a flow. `drop_reason_desc` decides when the schema knows it; when it is
/// absent or unknown, the deprecated numeric `drop_reason` decides if the schema knows that;
/// else whichever is set, the name a newer `hubble` printed first.
pub fn drop_reason(desc: i32, numeric: u32) -> Open<DropReason> {
    let desc = Open::<DropReason>::new(desc);
    let numeric = Open::<DropReason>::new(numeric);
    let known = |v: Open<DropReason>| v.known().is_some_and(|r| r != DropReason::Unknown);
    if known(desc) {
        desc
    } else if known(numeric) {
        numeric
    } else if !desc.is_zero() {
        desc
    } else {
        numeric
    }
}

/// The `direction` label: `ingress`, `egress`, `unknown`, a newer name in lower case, or the
/// number.
pub fn direction_label(d: Open<TrafficDirection>) -> Cow<'static, str> {
    match d.known() {
        Some(TrafficDirection::Ingress) => Cow::Borrowed("ingress"),
        Some(TrafficDirection::Egress) => Cow::Borrowed("egress"),
        Some(TrafficDirection::Unknown) => Cow::Borrowed("unknown"),
        None => match d.name() {
            Some(n) => Cow::Owned(n.to_ascii_lowercase()),
            None => Cow::Owned(d.raw().to_string()),
        },
    }
}

/// A serde reader for an enum field: a name or a number, whatever the schema lists. Used by the
/// generated JSON code in place of pbjson's enum reader, which refuses values it does not know
/// (and lists every valid name in its error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonEnum<E>(pub i32, PhantomData<E>);

struct JsonEnumVisitor<E>(PhantomData<E>);

impl<E: OpenEnum + Into<i32>> serde::de::Visitor<'_> for JsonEnumVisitor<E> {
    type Value = JsonEnum<E>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a {} name or number", E::KIND)
    }

    fn visit_str<Er: serde::de::Error>(self, v: &str) -> Result<Self::Value, Er> {
        Ok(JsonEnum(number_of_name::<E>(v), PhantomData))
    }

    fn visit_i64<Er: serde::de::Error>(self, v: i64) -> Result<Self::Value, Er> {
        // Out of int32 (no protobuf enum can hold it): unknown.
        Ok(JsonEnum(i32::try_from(v).unwrap_or(0), PhantomData))
    }

    fn visit_u64<Er: serde::de::Error>(self, v: u64) -> Result<Self::Value, Er> {
        Ok(JsonEnum(i32::try_from(v).unwrap_or(0), PhantomData))
    }

    fn visit_f64<Er: serde::de::Error>(self, v: f64) -> Result<Self::Value, Er> {
        let n = <i32 as crate::api::json::FromJson>::from_f64(v).unwrap_or(0);
        Ok(JsonEnum(n, PhantomData))
    }

    fn visit_unit<Er: serde::de::Error>(self) -> Result<Self::Value, Er> {
        Ok(JsonEnum(0, PhantomData))
    }
}

impl<'de, E: OpenEnum + Into<i32>> serde::Deserialize<'de> for JsonEnum<E> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonEnumVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<E: OpenEnum + Into<i32>>(json: &str) -> Result<i32, String> {
        serde_json::from_str::<JsonEnum<E>>(json)
            .map(|v| v.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn released_values_have_their_upstream_names() {
        for (n, name) in [
            (199, "IGMP_HANDLED"),
            (200, "IGMP_SUBSCRIBED"),
            (201, "MULTICAST_HANDLED"),
            (205, "DROP_PUNT_PROXY"),
        ] {
            assert_eq!(Open::<DropReason>::new(n).label(), name);
            assert_eq!(read::<DropReason>(&format!("\"{name}\"")), Ok(n));
        }
        // Never released: a number.
        assert_eq!(Open::<DropReason>::new(206).label(), "206");
        assert_eq!(Open::<DropReason>::new(250).label(), "250");
    }

    #[test]
    fn json_reads_any_number_and_plausible_names() {
        assert_eq!(read::<DropReason>("250"), Ok(250));
        assert_eq!(read::<DropReason>("-3"), Ok(-3));
        assert_eq!(read::<DropReason>("1e2"), Ok(100));
        assert_eq!(read::<DropReason>("null"), Ok(0));
        // Beyond int32 (no enum can hold it) and implausible names: unknown.
        assert_eq!(read::<DropReason>("4294967296"), Ok(0));
        assert_eq!(read::<DropReason>("\"not a name\""), Ok(0));
        assert_eq!(read::<DropReason>("\"drop_lower\""), Ok(0));
        assert_eq!(read::<DropReason>("\"199\""), Ok(0));
        assert_eq!(
            read::<DropReason>(&format!("\"{}\"", "A".repeat(65))),
            Ok(0)
        );
        let code = read::<DropReason>("\"DROP_FROM_THE_FUTURE\"").expect("reads");
        assert!(code < 0);
        assert_eq!(
            read::<DropReason>("\"DROP_FROM_THE_FUTURE\""),
            Ok(code),
            "one code per name"
        );
        assert_eq!(
            Open::<DropReason>::new(code).label(),
            "DROP_FROM_THE_FUTURE"
        );
        // The same code is not a name of another enum.
        assert_eq!(Open::<Verdict>::new(code).label(), code.to_string());
        // Not an enum at all: a short error, not a list of every name.
        let err = read::<DropReason>("{}").expect_err("an object is no enum");
        assert!(err.len() < 100, "{err}");
    }

    #[test]
    fn drop_reason_desc_decides_unless_unknown() {
        let r = |d, n| drop_reason(d, n).label();
        assert_eq!(r(133, 181), "POLICY_DENIED");
        assert_eq!(r(0, 181), "POLICY_DENY");
        assert_eq!(r(250, 199), "IGMP_HANDLED");
        assert_eq!(r(250, 0), "250");
        assert_eq!(r(0, 251), "251");
        assert_eq!(r(0, u32::MAX), u32::MAX.to_string());
        assert_eq!(drop_reason(0, 0).name(), Some("DROP_REASON_UNKNOWN"));
    }

    #[test]
    fn directions_label_in_lower_case() {
        assert_eq!(direction_label(Open::new(1)), "ingress");
        assert_eq!(direction_label(Open::new(0)), "unknown");
        assert_eq!(direction_label(Open::new(7)), "7");
        let code = number_of_name::<TrafficDirection>("SIDEWAYS");
        assert_eq!(direction_label(Open::new(code)), "sideways");
    }
}
