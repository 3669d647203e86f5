//! The one lexer and parser for brace-block configurations (ISC `dhcpd.conf`, `keepalived.conf`).
//!
//! Both formats are words, quoted strings, `{ }` blocks and comments; they differ in where a
//! statement ends (ISC: at `;`; keepalived: at the end of the line, a `{` on the same or a
//! following line opening its block), in their comment characters, in what breaks a word and in
//! string escapes. A [`Dialect`] names those differences; [`parse`] gives a statement tree with
//! every statement's file and line, `include` spliced in (loops and excessive depth refused).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::source::{
    ImportError, NOT_UTF8, ReadFn, Src, Unsupported, abridge, include_path, read_include,
};

/// What differs between the brace-block formats.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// Characters that start a comment running to the end of the line.
    pub(crate) comments: &'static str,
    /// Characters that end a word (besides white space).
    pub(crate) breaks: &'static str,
    /// Statements end at `;` (ISC); otherwise at the end of the line (keepalived).
    pub(crate) semicolons: bool,
    /// `,` is a token of its own (ISC lists: `fixed-address a, b;`).
    pub(crate) commas: bool,
    /// Quoted strings take `\` escapes and may run over lines (ISC); otherwise they end at the line.
    pub(crate) escapes: bool,
    /// `include` takes a glob in its last component (keepalived).
    pub(crate) glob_include: bool,
    /// An example for the "`{` without a statement" message.
    pub(crate) open_hint: &'static str,
}

/// ISC DHCP's `dhcpd.conf`.
pub(crate) const ISC: Dialect = Dialect {
    comments: "#",
    breaks: "{};,\"#",
    semicolons: true,
    commas: true,
    escapes: true,
    glob_include: false,
    open_hint: "a statement before it (e.g. `subnet ... netmask ... {`)",
};

/// `keepalived.conf`.
pub(crate) const KEEPALIVED: Dialect = Dialect {
    comments: "#!",
    breaks: "{}\"",
    semicolons: false,
    commas: false,
    escapes: false,
    glob_include: true,
    open_hint: "a keyword before it",
};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word.
    Word(String),
    /// A quoted string, unquoted.
    Str(String),
    Open,
    Close,
    Semi,
    Comma,
    /// The end of a line (line-ended dialects only).
    Eol,
}

#[derive(Debug, Clone)]
struct Token {
    t: Tok,
    line: usize,
}

const NEVER_CLOSED: &str = "quoted string opened on this line is never closed";

fn lex(text: &str, file: &Arc<Path>, d: &Dialect) -> Result<Vec<Token>, ImportError> {
    let mut out = Vec::new();
    let mut it = text.chars().peekable();
    let mut line = 1;
    let push = |out: &mut Vec<Token>, t: Tok, line: usize| out.push(Token { t, line });
    while let Some(c) = it.next() {
        match c {
            '\n' => {
                if !d.semicolons {
                    push(&mut out, Tok::Eol, line);
                }
                line += 1;
            }
            c if c.is_whitespace() => {}
            c if d.comments.contains(c) => {
                while it.peek().is_some_and(|c| *c != '\n') {
                    it.next();
                }
            }
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match it.next() {
                        None => return Err(Src::new(file, start).error(NEVER_CLOSED)),
                        Some('\n') if !d.escapes => {
                            return Err(Src::new(file, start).error(NEVER_CLOSED));
                        }
                        Some('"') => break,
                        Some('\\') if d.escapes => match it.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                s.push(c)
                            }
                            None => return Err(Src::new(file, start).error(NEVER_CLOSED)),
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c)
                        }
                    }
                }
                push(&mut out, Tok::Str(s), start);
            }
            '{' => push(&mut out, Tok::Open, line),
            '}' => push(&mut out, Tok::Close, line),
            ';' if d.semicolons => push(&mut out, Tok::Semi, line),
            ',' if d.commas => push(&mut out, Tok::Comma, line),
            c => {
                let mut w = String::from(c);
                while let Some(&n) = it.peek() {
                    if n.is_whitespace() || d.breaks.contains(n) {
                        break;
                    }
                    w.push(n);
                    it.next();
                }
                push(&mut out, Tok::Word(w), line);
            }
        }
    }
    Ok(out)
}

/// One statement: its words (commas kept as separators) and its block, if any.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub(crate) words: Vec<Tok>,
    pub(crate) block: Option<Vec<Stmt>>,
    pub(crate) src: Src,
}

impl Stmt {
    /// The `i`th value (commas skipped, strings unquoted).
    pub(crate) fn word(&self, i: usize) -> Option<String> {
        self.values().get(i).cloned()
    }
    /// The `i`th value, borrowed (commas skipped, strings unquoted).
    pub(crate) fn arg(&self, i: usize) -> Option<&str> {
        self.words
            .iter()
            .filter_map(|t| match t {
                Tok::Word(w) | Tok::Str(w) => Some(w.as_str()),
                _ => None,
            })
            .nth(i)
    }
    /// The words without commas, strings unquoted.
    pub(crate) fn values(&self) -> Vec<String> {
        self.words
            .iter()
            .filter_map(|t| match t {
                Tok::Word(w) | Tok::Str(w) => Some(w.clone()),
                _ => None,
            })
            .collect()
    }
    /// The first word, lower case.
    pub(crate) fn keyword(&self) -> String {
        self.word(0).unwrap_or_default().to_ascii_lowercase()
    }
    /// The block's statements (none without a block).
    pub(crate) fn children(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or_default()
    }
    /// The statement as an ISC user wrote it (strings quoted, `;` or `{ ... }`), abridged.
    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        for t in &self.words {
            match t {
                Tok::Word(w) => {
                    if !s.is_empty() {
                        s.push(' ');
                    }
                    s.push_str(w)
                }
                Tok::Str(w) => {
                    if !s.is_empty() {
                        s.push(' ');
                    }
                    s.push('"');
                    s.push_str(w);
                    s.push('"')
                }
                Tok::Comma => s.push(','),
                _ => {}
            }
        }
        if self.block.is_some() {
            s.push_str(" { ... }");
        } else {
            s.push(';');
        }
        abridge(&s)
    }
    /// The words joined by spaces (and ` { ... }` for a block), abridged: keepalived's form.
    pub(crate) fn plain_text(&self) -> String {
        let mut s = self.values().join(" ");
        if self.block.is_some() {
            s.push_str(" { ... }");
        }
        abridge(&s)
    }
}

/// Parses `text` (the contents of `file`) into statements, splicing in includes.
pub(crate) fn parse(
    text: &str,
    file: &Path,
    read: ReadFn<'_>,
    dialect: &Dialect,
) -> Result<Vec<Stmt>, ImportError> {
    parse_file(text, Arc::from(file), read, Vec::new(), dialect)
}

fn parse_file(
    text: &str,
    file: Arc<Path>,
    read: ReadFn<'_>,
    stack: Vec<Arc<Path>>,
    d: &Dialect,
) -> Result<Vec<Stmt>, ImportError> {
    let toks = lex(text, &file, d)?;
    Parser {
        toks,
        pos: 0,
        file,
        read,
        stack,
        d,
    }
    .list(None)
}

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    file: Arc<Path>,
    read: ReadFn<'a>,
    stack: Vec<Arc<Path>>,
    d: &'a Dialect,
}

impl Parser<'_> {
    fn src(&self, line: usize) -> Src {
        Src::new(&self.file, line)
    }

    /// Statements up to the `}` closing a block opened at `open` (or to the end of the file).
    fn list(&mut self, open: Option<usize>) -> Result<Vec<Stmt>, ImportError> {
        let mut out = Vec::new();
        loop {
            let Some(tok) = self.toks.get(self.pos).cloned() else {
                return match open {
                    Some(l) => Err(self
                        .src(l)
                        .error("`{` opened on this line is never closed (missing `}`)")),
                    None => Ok(out),
                };
            };
            match tok.t {
                Tok::Close => {
                    self.pos += 1;
                    return match open {
                        Some(_) => Ok(out),
                        None => Err(self
                            .src(tok.line)
                            .error("`}` without a matching `{` (one `}` too many?)")),
                    };
                }
                Tok::Semi | Tok::Eol => self.pos += 1,
                Tok::Open => {
                    return Err(self
                        .src(tok.line)
                        .error(format!("`{{` without {}", self.d.open_hint)));
                }
                _ => {
                    let st = if self.d.semicolons {
                        self.statement()?
                    } else {
                        self.line()?
                    };
                    if st.keyword() == "include" && st.block.is_none() {
                        self.include(&st, &mut out)?;
                    } else {
                        out.push(st);
                    }
                }
            }
        }
    }

    fn include(&mut self, st: &Stmt, out: &mut Vec<Stmt>) -> Result<(), ImportError> {
        let Some(target) = st.word(1) else {
            return Err(st.src.error("include needs a file name in quotes"));
        };
        let paths = if self.d.glob_include {
            expand(&self.file, &target)
        } else {
            vec![include_path(&self.file, &target)]
        };
        for path in paths {
            let text = read_include(self.read, &self.stack, &st.src, &path)?;
            let mut stack = self.stack.clone();
            stack.push(self.file.clone());
            out.extend(parse_file(
                &text,
                Arc::from(path.as_path()),
                self.read,
                stack,
                self.d,
            )?);
        }
        Ok(())
    }

    /// ISC: words up to `;`, or up to a `{ ... }` block (a `;` after the block is allowed).
    fn statement(&mut self) -> Result<Stmt, ImportError> {
        let first = self.toks[self.pos].line;
        let mut words = Vec::new();
        let unended = "statement starting on this line does not end with `;`";
        loop {
            let Some(tok) = self.toks.get(self.pos).cloned() else {
                return Err(self.src(first).error(unended));
            };
            match tok.t {
                Tok::Semi => {
                    self.pos += 1;
                    return Ok(Stmt {
                        words,
                        block: None,
                        src: self.src(first),
                    });
                }
                Tok::Open => {
                    self.pos += 1;
                    let block = self.list(Some(tok.line))?;
                    if matches!(self.toks.get(self.pos), Some(Token { t: Tok::Semi, .. })) {
                        self.pos += 1;
                    }
                    return Ok(Stmt {
                        words,
                        block: Some(block),
                        src: self.src(first),
                    });
                }
                Tok::Close => return Err(self.src(first).error(unended)),
                t => {
                    words.push(t);
                    self.pos += 1;
                }
            }
        }
    }

    /// keepalived: words to the end of the line; a `{` on the same line (or alone on a
    /// following one) opens its block.
    fn line(&mut self) -> Result<Stmt, ImportError> {
        let line = self.toks[self.pos].line;
        let mut words = Vec::new();
        while let Some(Token {
            t: t @ (Tok::Word(_) | Tok::Str(_)),
            ..
        }) = self.toks.get(self.pos)
        {
            words.push(t.clone());
            self.pos += 1;
        }
        let mut look = self.pos;
        while matches!(self.toks.get(look), Some(Token { t: Tok::Eol, .. })) {
            look += 1;
        }
        let block = match self.toks.get(look) {
            Some(Token {
                t: Tok::Open,
                line: l,
            }) => {
                let l = *l;
                self.pos = look + 1;
                Some(self.list(Some(l))?)
            }
            _ => None,
        };
        Ok(Stmt {
            words,
            block,
            src: self.src(line),
        })
    }
}

/// Statements (at any depth) whose words hold U+FFFD: bytes that were not UTF-8 outside a
/// comment (inside comments they are harmless and not reported). `keepalived` chooses the form
/// of the statement in the message.
pub(crate) fn not_utf8(stmts: &[Stmt], keepalived: bool, out: &mut Vec<Unsupported>) {
    for st in stmts {
        let bad = st.words.iter().any(|t| match t {
            Tok::Word(w) | Tok::Str(w) => w.contains('\u{FFFD}'),
            _ => false,
        });
        if bad {
            let text = if keepalived {
                st.plain_text()
            } else {
                st.text()
            };
            out.push(st.src.unsupported(text, NOT_UTF8));
        }
        not_utf8(st.children(), keepalived, out);
    }
}

/// keepalived's `include` takes a glob; the `*` and `?` of the last component are expanded here.
fn expand(from: &Path, pattern: &str) -> Vec<PathBuf> {
    let p = include_path(from, pattern);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![p];
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|x| {
                    x.file_name().is_some_and(|n| {
                        glob_match(name.as_bytes(), n.to_string_lossy().as_bytes())
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_match(&p[1..], s) || (!s.is_empty() && glob_match(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob_match(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob_match(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_read(_: &Path) -> std::io::Result<String> {
        Err(std::io::ErrorKind::NotFound.into())
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*.conf", b"a.conf"));
        assert!(!glob_match(b"*.conf", b"a.conf~"));
        assert!(glob_match(b"v?.conf", b"v1.conf"));
    }

    #[test]
    fn both_dialects_give_the_same_tree_for_the_same_shape() {
        let isc = "a 1;\n# c\nb \"x y\" {\n  c 2, 3;\n};\n";
        let ka = "a 1\n! c\nb \"x y\"\n{\n  c 2 3\n}\n";
        for (t, d) in [(isc, &ISC), (ka, &KEEPALIVED)] {
            let s = parse(t, Path::new("f"), &no_read, d).unwrap();
            assert_eq!(s.len(), 2);
            assert_eq!(s[0].values(), ["a", "1"]);
            assert_eq!(s[1].values(), ["b", "x y"]);
            assert_eq!(s[1].src.line, 3);
            assert_eq!(s[1].children()[0].values(), ["c", "2", "3"]);
            assert_eq!(s[1].children()[0].src.line, 4 + usize::from(!d.semicolons));
        }
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a {\n b;\n", Path::new("f"), &no_read, &ISC).unwrap_err();
        assert_eq!(e.line(), 1);
        let e = parse("x\n}\n", Path::new("f"), &no_read, &KEEPALIVED).unwrap_err();
        assert_eq!(e.line(), 2);
        let e = parse("a \"b\nc\n", Path::new("f"), &no_read, &KEEPALIVED).unwrap_err();
        assert!(e.to_string().contains("never closed"), "{e}");
    }
}
