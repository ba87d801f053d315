//! Generated protobuf types (prost), gRPC client (tonic) and JSON (pbjson) for the
//! subset of Hubble's API in `proto/`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `flow`: the flow record and its parts.
pub mod flow {
    include!(concat!(env!("OUT_DIR"), "/flow.rs"));
    include!(concat!(env!("OUT_DIR"), "/flow.serde.rs"));
}

/// Package `relay`: node status events sent by hubble-relay.
pub mod relay {
    include!(concat!(env!("OUT_DIR"), "/relay.rs"));
    include!(concat!(env!("OUT_DIR"), "/relay.serde.rs"));
}

/// Package `observer`: the `GetFlows` service.
pub mod observer {
    include!(concat!(env!("OUT_DIR"), "/observer.rs"));
    include!(concat!(env!("OUT_DIR"), "/observer.serde.rs"));
}

/// JSON numbers as protobuf's JSON mapping writes them: a number, or a string holding one
/// (64-bit integers are strings). Used by the generated `*.serde.rs` in place of pbjson's
/// reader, which is several times slower.
pub mod json {
    use std::fmt;
    use std::marker::PhantomData;
    use std::str::FromStr;

    use serde::de::{self, Deserializer, Visitor};

    /// A number read from either form.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Number<T>(pub T);

    /// The number types protobuf fields use.
    pub trait FromJson: Sized + FromStr {
        /// From a JSON unsigned integer.
        fn from_u64(v: u64) -> Option<Self>;
        /// From a JSON negative integer.
        fn from_i64(v: i64) -> Option<Self>;
        /// From a JSON float.
        fn from_f64(v: f64) -> Option<Self>;
    }

    macro_rules! int {
        ($($t:ty),*) => {$(
            impl FromJson for $t {
                fn from_u64(v: u64) -> Option<Self> {
                    <$t>::try_from(v).ok()
                }
                fn from_i64(v: i64) -> Option<Self> {
                    <$t>::try_from(v).ok()
                }
                fn from_f64(v: f64) -> Option<Self> {
                    // Integral floats (`1.0`, `1e3`) are accepted, like protobuf's JSON.
                    let fits = v.fract() == 0.0 && v >= <$t>::MIN as f64 && v <= <$t>::MAX as f64;
                    fits.then(|| v as $t)
                }
            }
        )*};
    }
    int!(u32, i32, u64, i64);

    macro_rules! float {
        ($($t:ty),*) => {$(
            impl FromJson for $t {
                fn from_u64(v: u64) -> Option<Self> {
                    Some(v as $t)
                }
                fn from_i64(v: i64) -> Option<Self> {
                    Some(v as $t)
                }
                fn from_f64(v: f64) -> Option<Self> {
                    Some(v as $t)
                }
            }
        )*};
    }
    float!(f32, f64);

    struct V<T>(PhantomData<T>);

    impl<T: FromJson> Visitor<'_> for V<T> {
        type Value = Number<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a string holding a number")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            T::from_u64(v)
                .map(Number)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            T::from_i64(v)
                .map(Number)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            T::from_f64(v)
                .map(Number)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.trim()
                .parse()
                .map(Number)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    impl<'de, T: FromJson> serde::Deserialize<'de> for Number<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(V(PhantomData))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::Number;

        #[test]
        fn numbers_and_strings_both_read() {
            let n: Number<u64> = serde_json::from_str("\"452417\"").expect("string");
            assert_eq!(n.0, 452_417);
            let n: Number<u32> = serde_json::from_str("443").expect("number");
            assert_eq!(n.0, 443);
            let n: Number<i32> = serde_json::from_str("-5").expect("negative");
            assert_eq!(n.0, -5);
            let n: Number<u32> = serde_json::from_str("1e2").expect("integral float");
            assert_eq!(n.0, 100);
            assert!(serde_json::from_str::<Number<u32>>("-1").is_err());
            assert!(serde_json::from_str::<Number<u32>>("4294967296").is_err());
            assert!(serde_json::from_str::<Number<u32>>("\"x\"").is_err());
            assert!(serde_json::from_str::<Number<u32>>("1.5").is_err());
        }
    }
}
