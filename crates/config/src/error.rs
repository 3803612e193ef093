use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A configuration problem: what is wrong, in which file, and where in it.
///
/// Displayed as `path:line:column: section: message`, followed by the offending line.
#[derive(Debug, Clone)]
pub struct ConfigError(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    path: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    position: Option<(usize, usize)>,
    source_line: Option<String>,
    context: Option<String>,
    message: String,
}

/// What kind of problem a [`ConfigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file (or a file it names) cannot be read.
    Io,
    /// Not valid TOML.
    Syntax,
    /// Valid TOML, but a key is unknown, missing, or has the wrong type or value.
    Invalid,
    /// `type = "…"` names no known component.
    UnknownComponent,
    /// `${VAR}` names a variable that is not set and has no default.
    MissingVariable,
}

impl ConfigError {
    /// An error about the file as a whole.
    pub fn new(path: &Path, kind: ErrorKind, message: impl Into<String>) -> Self {
        ConfigError(Box::new(Inner {
            kind,
            path: path.to_path_buf(),
            position: None,
            source_line: None,
            context: None,
            message: message.into(),
        }))
    }

    pub(crate) fn at(
        path: &Path,
        text: &str,
        span: Range<usize>,
        kind: ErrorKind,
        context: Option<String>,
        message: String,
    ) -> Self {
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        ConfigError(Box::new(Inner {
            kind,
            path: path.to_path_buf(),
            position: Some((line, column)),
            source_line: Some(text[line_start..line_end].trim_end().to_string()),
            context,
            message,
        }))
    }

    pub(crate) fn from_toml(
        path: &Path,
        text: &str,
        e: &toml::de::Error,
        kind: ErrorKind,
        context: Option<String>,
    ) -> Self {
        let message = e.message().trim().to_string();
        match e.span() {
            Some(span) => ConfigError::at(path, text, span, kind, context, message),
            None => {
                let mut e = ConfigError::new(path, kind, message);
                e.0.context = context;
                e
            }
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// 1-based (line, column) of the problem, when it has one.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.0.position
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.path.display())?;
        if let Some((line, column)) = self.0.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": ")?;
        if let Some(context) = &self.0.context {
            write!(f, "{context}: ")?;
        }
        write!(f, "{}", self.0.message)?;
        if let (Some((line, _)), Some(source)) = (self.0.position, &self.0.source_line) {
            write!(f, "\n  {line:>4} | {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
