//! How `--explain` writes values: lists in brackets, empty values as `(none)`.

/// `[a, b]`.
pub(super) fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// A value in quotes, or `(none)` when empty.
pub(super) fn quoted(s: &str) -> String {
    if s.is_empty() {
        "(none)".into()
    } else {
        format!("{s:?}")
    }
}
