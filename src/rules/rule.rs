//! A rule's identity and metadata (what `check`, the metrics and `--explain` show), the class
//! it assigns, the documents rules come from, and the errors of loading them.

use std::path::PathBuf;

/// The class a rule assigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Blocked on purpose.
    Expected,
    /// Needs a look.
    Unexpected,
}

impl Class {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Expected => "expected",
            Class::Unexpected => "unexpected",
        }
    }
}

/// One TOML document that holds rules.
#[derive(Clone, Debug)]
pub struct RuleSource {
    /// Path as given (used in error messages).
    pub path: PathBuf,
    /// The document text.
    pub text: String,
    /// True for `config.toml` (only `[[rule]]` is read), false for a rule file.
    pub inline: bool,
}

/// A rule's metadata.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique name, `[a-z0-9._-]+`.
    pub name: String,
    /// The class it assigns.
    pub class: Class,
    /// The `reason` label value (defaults to the name).
    pub reason: String,
    /// Owner (required for expected rules).
    pub owner: Option<String>,
    /// Comment (required for expected rules).
    pub comment: Option<String>,
    /// Expiry in Unix seconds.
    pub expires: Option<f64>,
    /// The file it came from and its line.
    pub file: PathBuf,
    /// 1-based line of its `[[rule]]` header.
    pub line: usize,
}

/// One error in a rule document: file, line, column, key and message.
pub type RuleError = crate::located::LocatedError;

/// Every error found while loading.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RuleErrors(pub Vec<RuleError>);
