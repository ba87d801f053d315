//! Errors that point into a TOML document: file, line, column and key (PRODUCT.md §5, §9).

use std::ops::Range;
use std::path::{Path, PathBuf};

/// One error at a place in a file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {key}: {message}", file.display())]
pub struct LocatedError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// The key path, e.g. `metrics.labels` or `rule[2].match.destination.cidr`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl LocatedError {
    /// An error at a byte span of `text`.
    pub fn at(
        file: &Path,
        text: &str,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        Self {
            file: file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A YAML parser error's message without what a [`LocatedError`] says itself: the
/// " at line L column C" the parser appends and the key path `key` it prefixes.
pub fn yaml_message(inner: &serde_norway::Error, key: &str) -> String {
    let message = inner.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message);
    message
        .strip_prefix(&format!("{key}: "))
        .unwrap_or(message)
        .to_owned()
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Deserializes a TOML document into `T`, turning any error into a [`LocatedError`] with the
/// key path of the failing value.
pub fn from_toml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, LocatedError> {
    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| LocatedError::at(file, text, e.span(), "", e.message().trim_end()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        // `toml::Spanned` shows up as a path segment of its own; it is not part of the key.
        let key = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        LocatedError::at(file, text, inner.span(), key, inner.message().trim_end())
    })
}

/// The byte span of the value at a key path (`["metrics", "labels"]`), if the document has it.
pub fn span_of(text: &str, keys: &[&str]) -> Option<Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut value: Option<&toml::Spanned<toml::de::DeValue<'_>>> = None;
    let mut span = None;
    for k in keys {
        let next = match value.map(|v| v.get_ref()) {
            // A number picks an element of an array (`servers`, `0`, `labels`).
            Some(toml::de::DeValue::Array(a)) => a.get(k.parse::<usize>().ok()?)?,
            Some(other) => {
                let (_, v) = other
                    .as_table()?
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == *k)?;
                v
            }
            None => {
                let (_, v) = doc
                    .get_ref()
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == *k)?;
                v
            }
        };
        span = Some(next.span());
        value = Some(next);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 11), (2, 6));
    }

    #[test]
    fn span_of_finds_nested_values() {
        let t = "[metrics]\nlabels = [\"x\"]\n";
        let s = span_of(t, &["metrics", "labels"]).expect("span");
        assert_eq!(&t[s], "[\"x\"]");
        assert!(span_of(t, &["metrics", "nope"]).is_none());
    }
}
