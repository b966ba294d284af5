//! The checkpoint (c2sp.org/tlog-checkpoint): the note text a transparency log signs for its
//! Merkle tree at one size.
//!
//! ```text
//! <origin>\n                      the log's identity, non-empty
//! <tree size>\n                   decimal, no leading zero (the empty tree is "0")
//! <root hash>\n                   standard base64 with padding of the 32-byte root
//! [<extension line>\n ...]        optional, each non-empty
//! ```
//!
//! Like any note text, a checkpoint contains no ASCII control character but the newlines. The
//! origin may contain spaces (`go.sum database tree` is one); the spec only recommends a
//! schema-less URL.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::format::hash::Hash;

/// How much of a bad line an error quotes.
const QUOTE_CHARS: usize = 64;

/// A checkpoint body is not what c2sp.org/tlog-checkpoint allows: what is wrong, on which line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The body does not end in a newline.
    #[error("the checkpoint does not end in a newline")]
    NotTerminated,
    /// Fewer than the three lines a checkpoint needs.
    #[error("the checkpoint has {lines} line(s); it needs an origin, a tree size and a root hash")]
    TooFewLines {
        /// How many lines it has.
        lines: usize,
    },
    /// The origin line is empty.
    #[error("line 1: the origin is empty")]
    EmptyOrigin,
    /// A line contains an ASCII control character (a newline, in a field given to build one).
    #[error("line {line} contains the control character U+{code:04X}")]
    ControlCharacter {
        /// The line, from 1.
        line: usize,
        /// The character's code point.
        code: u32,
    },
    /// The tree size line is not a decimal number without leading zeros that fits in a u64.
    #[error("line 2: the tree size {text:?} is {problem}")]
    BadSize {
        /// The line (at most its first 64 characters).
        text: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The root hash line is not standard, padded, canonical base64.
    #[error("line 3: the root hash {text:?} is not standard base64 with padding")]
    RootNotBase64 {
        /// The line (at most its first 64 characters).
        text: String,
    },
    /// The root hash is not 32 bytes.
    #[error("line 3: the root hash is {len} bytes; a SHA-256 root is 32")]
    RootWrongLength {
        /// Its length in bytes.
        len: usize,
    },
    /// An extension line is empty.
    #[error("line {line}: an extension line is empty")]
    EmptyExtension {
        /// The line, from 1.
        line: usize,
    },
}

/// A checkpoint: a log's origin, its tree size and root hash, and optional extension lines.
/// Built by [`Checkpoint::new`] or [`Checkpoint::parse`], it is always valid, so
/// [`to_body`](Checkpoint::to_body) always gives a body that `parse` reads back to it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint of the log `origin` for a tree of `size` leaves with this root hash.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Checkpoint, CheckpointError> {
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        check_line(1, origin)?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// This checkpoint with one more extension line (non-empty; no newline or other control
    /// character).
    pub fn with_extension(mut self, line: &str) -> Result<Checkpoint, CheckpointError> {
        let number = 4 + self.extensions.len();
        if line.is_empty() {
            return Err(CheckpointError::EmptyExtension { line: number });
        }
        check_line(number, line)?;
        self.extensions.push(line.to_string());
        Ok(self)
    }

    /// Reads a checkpoint body strictly: at least three lines, each ending in a newline; a
    /// non-empty origin; the size in decimal without a sign or leading zeros; the root in
    /// canonical standard base64 with padding, of exactly 32 bytes; non-empty extension lines;
    /// no control character.
    pub fn parse(body: &str) -> Result<Checkpoint, CheckpointError> {
        let lines: Vec<&str> = body
            .strip_suffix('\n')
            .ok_or(CheckpointError::NotTerminated)?
            .split('\n')
            .collect();
        if lines.len() < 3 {
            return Err(CheckpointError::TooFewLines { lines: lines.len() });
        }
        let mut checkpoint =
            Checkpoint::new(lines[0], parse_size(lines[1])?, parse_root(lines[2])?)?;
        for line in &lines[3..] {
            checkpoint = checkpoint.with_extension(line)?;
        }
        Ok(checkpoint)
    }

    /// The body: origin, size and root lines, then the extension lines, each with its newline.
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.as_bytes())
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size: how many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree at that size.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The extension lines, without their newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("origin", &self.origin)
            .field("size", &self.size)
            .field("root", &STANDARD.encode(self.root.as_bytes()))
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// Decimal digits without a sign or a leading zero ("0" alone is the empty tree), in a u64.
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let bad = |problem| CheckpointError::BadSize {
        text: quote(line),
        problem,
    };
    if line.is_empty() {
        return Err(bad("empty"));
    }
    if !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not only decimal digits"));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(bad("written with a leading zero"));
    }
    line.parse().map_err(|_| bad("larger than 2^64 - 1"))
}

/// Canonical standard base64 with padding, of exactly 32 bytes.
fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| CheckpointError::RootNotBase64 { text: quote(line) })?;
    let root: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| CheckpointError::RootWrongLength { len: bytes.len() })?;
    Ok(Hash(root))
}

/// `Err` if the line contains an ASCII control character (the newline included).
fn check_line(number: usize, line: &str) -> Result<(), CheckpointError> {
    match line.bytes().find(|&b| b < 0x20) {
        None => Ok(()),
        Some(b) => Err(CheckpointError::ControlCharacter {
            line: number,
            code: u32::from(b),
        }),
    }
}

/// At most the first 64 characters of `line`, for an error message.
fn quote(line: &str) -> String {
    let mut quoted: String = line.chars().take(QUOTE_CHARS).collect();
    if quoted.len() < line.len() {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of c2sp.org/tlog-checkpoint.
    const SPEC_BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    const ROOT: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    fn body(size: &str, root: &str) -> String {
        format!("example.com/log\n{size}\n{root}\n")
    }

    #[test]
    fn the_spec_example_parses_and_is_written_back() {
        let c = Checkpoint::parse(SPEC_BODY).unwrap();
        assert_eq!(c.origin(), "example.com/behind-the-sofa");
        assert_eq!(c.size(), 20_852_163);
        assert_eq!(c.root().as_bytes()[..4], [0x0a, 0xc5, 0x18, 0x6a]);
        assert!(c.extensions().is_empty());
        assert_eq!(c.to_body(), SPEC_BODY);
    }

    #[test]
    fn checkpoints_with_extensions_round_trip() {
        let c = Checkpoint::new("go.sum database tree", 0, Hash([0xab; 32]))
            .unwrap()
            .with_extension("Timestamp: 1689748607742585419")
            .unwrap()
            .with_extension("\u{2014} looks like a signature, but is an extension")
            .unwrap();
        let body = c.to_body();
        assert_eq!(
            body,
            "go.sum database tree\n0\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\nTimestamp: 1689748607742585419\n\u{2014} looks like a signature, but is an extension\n"
        );
        assert_eq!(Checkpoint::parse(&body).unwrap(), c);
        let max = Checkpoint::new("o", u64::MAX, Hash::ZERO).unwrap();
        assert_eq!(Checkpoint::parse(&max.to_body()).unwrap().size(), u64::MAX);
    }

    #[test]
    fn a_size_with_a_leading_zero_sign_or_overflow_is_refused() {
        let problem = |size: &str| match Checkpoint::parse(&body(size, ROOT)) {
            Err(CheckpointError::BadSize { problem, .. }) => problem,
            other => panic!("{size:?}: {other:?}"),
        };
        assert_eq!(problem("020852163"), "written with a leading zero");
        assert_eq!(problem("00"), "written with a leading zero");
        assert_eq!(problem(""), "empty");
        for s in ["+5", "-1", " 5", "5 ", "0x10", "1_000", "١٢", "5\u{fe0f}"] {
            assert_eq!(problem(s), "not only decimal digits", "{s:?}");
        }
        assert_eq!(problem("18446744073709551616"), "larger than 2^64 - 1");
        assert_eq!(Checkpoint::parse(&body("0", ROOT)).unwrap().size(), 0);
        assert_eq!(
            Checkpoint::parse(&body("18446744073709551615", ROOT))
                .unwrap()
                .size(),
            u64::MAX
        );
        let e = Checkpoint::parse(&body("020852163", ROOT)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: the tree size \"020852163\" is written with a leading zero"
        );
    }

    #[test]
    fn a_root_with_wrong_padding_alphabet_or_length_is_refused() {
        let err = |root: &str| Checkpoint::parse(&body("1", root)).unwrap_err();
        for root in [
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I", // no padding
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I==", // too much
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=", // the unused bits set
            "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=", // the URL-safe alphabet
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I= ", // a trailing space
            " CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        ] {
            assert!(
                matches!(err(root), CheckpointError::RootNotBase64 { .. }),
                "{root:?}"
            );
        }
        assert_eq!(
            err("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw=="),
            CheckpointError::RootWrongLength { len: 31 }
        );
        assert_eq!(
            err("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA"),
            CheckpointError::RootWrongLength { len: 33 }
        );
        assert_eq!(
            err("YmFuYW5hcw=="),
            CheckpointError::RootWrongLength { len: 7 }
        );
    }

    #[test]
    fn an_empty_extension_line_is_refused() {
        assert_eq!(
            Checkpoint::parse(&format!("{SPEC_BODY}\n")).unwrap_err(),
            CheckpointError::EmptyExtension { line: 4 }
        );
        assert_eq!(
            Checkpoint::parse(&format!("{SPEC_BODY}ext\n\nmore\n")).unwrap_err(),
            CheckpointError::EmptyExtension { line: 5 }
        );
        let c = Checkpoint::parse(SPEC_BODY).unwrap();
        assert_eq!(
            c.clone().with_extension("").unwrap_err(),
            CheckpointError::EmptyExtension { line: 4 }
        );
        assert_eq!(
            c.with_extension("a\nb").unwrap_err(),
            CheckpointError::ControlCharacter { line: 4, code: 10 }
        );
    }

    #[test]
    fn malformed_bodies_are_refused_with_the_line() {
        let err = |b: &str| Checkpoint::parse(b).unwrap_err();
        assert_eq!(err(SPEC_BODY.trim_end()), CheckpointError::NotTerminated);
        assert_eq!(err(""), CheckpointError::NotTerminated);
        assert_eq!(err("\n"), CheckpointError::TooFewLines { lines: 1 });
        assert_eq!(err("o\n5\n"), CheckpointError::TooFewLines { lines: 2 });
        assert_eq!(err(&format!("\n5\n{ROOT}\n")), CheckpointError::EmptyOrigin);
        assert_eq!(
            err(&format!("o\r\n5\n{ROOT}\n")),
            CheckpointError::ControlCharacter { line: 1, code: 13 }
        );
        assert_eq!(
            err(&format!("o\n5\n{ROOT}\nx\ty\n")),
            CheckpointError::ControlCharacter { line: 4, code: 9 }
        );
        assert!(matches!(
            err(&format!("o\n5\r\n{ROOT}\n")),
            CheckpointError::BadSize { .. }
        ));
        assert_eq!(
            Checkpoint::new("", 1, Hash::ZERO).unwrap_err(),
            CheckpointError::EmptyOrigin
        );
        assert_eq!(
            Checkpoint::new("a\nb", 1, Hash::ZERO).unwrap_err(),
            CheckpointError::ControlCharacter { line: 1, code: 10 }
        );
        // An error quotes at most 64 characters of a huge line.
        let e = err(&format!("o\n{}\n{ROOT}\n", "9".repeat(1 << 20)));
        assert!(e.to_string().len() < 200, "{e}");
        // Odd Unicode in the origin is the log's business.
        let c = Checkpoint::parse(&format!("\u{202e}ログ \u{2014}+\u{85}\n5\n{ROOT}\n")).unwrap();
        assert_eq!(c.origin(), "\u{202e}ログ \u{2014}+\u{85}");
    }
}
