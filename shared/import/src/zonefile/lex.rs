//! Zone-file tokens: one [`Entry`] per logical line (joined across parentheses), each word with
//! its line and column; `;` comments dropped, quoted strings kept with their escapes.

use super::{Pos, ZoneFileError};

/// One word of a record, as written (escapes kept: `\.`, `\"`, `\065`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, without the quotes of a quoted string.
    pub text: String,
    /// Written in double quotes.
    pub quoted: bool,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters) of its first character (the quote for a string).
    pub column: usize,
}

/// One logical record or directive: the words of a line, joined across `( ... )`.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) line: usize,
    /// The line starts with white space: the owner is the previous record's.
    pub(crate) blank_owner: bool,
    pub(crate) words: Vec<Word>,
}

pub(crate) fn lex(text: &str, at: &Pos) -> Result<Vec<Entry>, ZoneFileError> {
    let err = |line: usize, column: usize, message: &str, fix: &str| {
        at.at(line, column).error(message, fix)
    };
    let mut out = Vec::new();
    let (mut line, mut col) = (1, 0);
    let mut cur: Option<Entry> = None;
    let mut paren: Option<(usize, usize)> = None;
    let mut at_line_start = true;
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        col += 1;
        if at_line_start && paren.is_none() {
            at_line_start = false;
            if cur.is_none() {
                cur = Some(Entry {
                    line,
                    blank_owner: c == ' ' || c == '\t',
                    words: Vec::new(),
                });
            }
        }
        match c {
            '\n' => {
                line += 1;
                col = 0;
                at_line_start = true;
                if paren.is_none()
                    && let Some(e) = cur.take()
                    && !e.words.is_empty()
                {
                    out.push(e);
                }
            }
            ';' => {
                while it.peek().is_some_and(|c| *c != '\n') {
                    it.next();
                }
            }
            '(' => {
                if paren.is_some() {
                    return Err(err(
                        line,
                        col,
                        "nested `(`: close the first one with `)`",
                        "remove this `(` or add the missing `)` before it",
                    ));
                }
                paren = Some((line, col));
            }
            ')' => {
                if paren.take().is_none() {
                    return Err(err(
                        line,
                        col,
                        "`)` without a matching `(`",
                        "remove the `)` or open the record's data with `(`",
                    ));
                }
            }
            '"' => {
                let (start, scol) = (line, col);
                let mut s = String::new();
                loop {
                    col += 1;
                    match it.next() {
                        None | Some('\n') => {
                            return Err(err(
                                start,
                                scol,
                                "quoted string opened on this line is never closed",
                                "end the string with `\"` on the same line (write `\\\"` for a quote inside it)",
                            ));
                        }
                        Some('"') => break,
                        Some('\\') => {
                            s.push('\\');
                            col += 1;
                            match it.next() {
                                Some('\n') | None => {
                                    return Err(err(
                                        start,
                                        scol,
                                        "quoted string opened on this line is never closed",
                                        "end the string with `\"` on the same line",
                                    ));
                                }
                                Some(c) => s.push(c),
                            }
                        }
                        Some(c) => s.push(c),
                    }
                }
                if let Some(e) = cur.as_mut() {
                    e.words.push(Word {
                        text: s,
                        quoted: true,
                        line: start,
                        column: scol,
                    });
                }
            }
            c if c.is_whitespace() => {}
            c => {
                let scol = col;
                let mut w = String::from(c);
                if c == '\\'
                    && let Some(n) = it.next()
                {
                    col += 1;
                    if n == '\n' {
                        return Err(err(
                            line,
                            col - 1,
                            "`\\` at the end of a line",
                            "remove the `\\` or join the lines",
                        ));
                    }
                    w.push(n);
                }
                while let Some(&n) = it.peek() {
                    if n.is_whitespace() || "();\"".contains(n) {
                        break;
                    }
                    it.next();
                    col += 1;
                    w.push(n);
                    if n == '\\'
                        && let Some(&e) = it.peek()
                        && e != '\n'
                    {
                        it.next();
                        col += 1;
                        w.push(e);
                    }
                }
                if let Some(e) = cur.as_mut() {
                    e.words.push(Word {
                        text: w,
                        quoted: false,
                        line,
                        column: scol,
                    });
                }
            }
        }
    }
    if let Some((l, c)) = paren {
        return Err(err(
            l,
            c,
            "`(` opened on this line is never closed (missing `)`)",
            "add `)` after the record's last field",
        ));
    }
    if let Some(e) = cur.take()
        && !e.words.is_empty()
    {
        out.push(e);
    }
    Ok(out)
}
