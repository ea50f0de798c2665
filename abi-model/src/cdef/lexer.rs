//! The C lexer: turns declaration text into tokens with line:column positions.
//!
//! It follows LuaJIT's `lj_cparse.c` lexer: identifiers (bytes >= 0x80 count as identifier
//! characters), integer literals with C suffixes, string and character literals with C escapes
//! (plus `\e`), `//` and `/* */` comments, backslash-newline continuations, the multi-character
//! operators `|| && == != <= >= << >> ->`, and `$` parameters. Everything else is a one-character
//! token. An embedded NUL ends the text, as it does for LuaJIT's C string.

use std::borrow::Cow;

use super::parser::{keyword_of, Kw};
use super::{CParam, CdefError, TYPE_PARAM_EXPECTED};
use crate::QualType;

/// A token's kind, with its value when it has one besides its text ([`Token::text`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword (the keyword is [`Token::kw`]); the text is its name.
    Ident,
    /// An integer literal (or character constant, or `$` number parameter).
    Int(IntLit),
    /// A string literal; the text is its contents.
    Str,
    /// A `$` type parameter.
    TypeParam(QualType),
    /// An operator or other punctuation: `(`, `||`, `->`, also any unknown character; the
    /// text is its characters.
    Punct,
    /// End of the text.
    Eof,
}

/// Where a token's text is. Most are a slice of the declaration text (or of a `$` name, or
/// static), so that a token owns nothing and is copied, never dropped; the few the lexer has
/// to build (a string with escapes, a name or number across a backslash-newline, a
/// character constant's character) are kept by the lexer for the parse ([`Lexer::text`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Text<'a> {
    /// A slice of the declaration text, of a `$` name, or a static string.
    Slice(&'a str),
    /// The index of a text the lexer built.
    Built(u32),
}

/// An integer literal's value and C type class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IntLit {
    /// The value, sign-extended for signed classes.
    pub value: u64,
    /// 32 or 64.
    pub width: u32,
    /// Signed?
    pub signed: bool,
    /// `L` suffix (its width depends on the target's `long`).
    pub long_suffix: bool,
}

/// A token with where it starts and its text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Token<'a> {
    pub tok: Tok,
    /// The keyword an identifier is, found once when it is read (never for a `$` name).
    pub kw: Option<Kw>,
    pub line: u32,
    pub col: u32,
    /// An identifier's name, a string's contents, the punctuation's characters; for the
    /// others what LuaJIT shows for them in "near '...'" (a number as written, `$`, `<eof>`).
    pub text: Text<'a>,
    /// The token came from a `$` parameter (a name parameter is never a keyword).
    pub from_param: bool,
    /// The source line it starts on with backslash-newlines joined (the line a `#` directive
    /// spans), unaffected by `#line`.
    pub joined_line: u32,
}

impl Token<'_> {
    /// A token to write over (the end of the text at no position).
    pub fn blank() -> Self {
        Token { tok: Tok::Eof, kw: None, line: 0, col: 0, text: Text::Slice(""), from_param: false, joined_line: 0 }
    }

    /// Is this the punctuation `p`? (Known punctuation is always a slice.)
    #[inline]
    pub fn is(&self, p: &str) -> bool {
        self.tok == Tok::Punct && matches!(self.text, Text::Slice(s) if s == p)
    }

    /// Makes this token the punctuation `p`, shown as itself.
    pub fn set_punct(&mut self, p: &'static str) {
        self.tok = Tok::Punct;
        self.kw = None;
        self.text = Text::Slice(p);
    }
}

pub(crate) struct Lexer<'a> {
    /// The text not read yet (a `Chars` rather than a `Peekable` so that [`Lexer::next_token`]
    /// can take an identifier as one slice).
    chars: std::str::Chars<'a>,
    /// Physical line (1-based) and column (1-based) of the next character.
    line: u32,
    col: u32,
    /// Added to physical line numbers (`#line` directives).
    line_delta: i64,
    /// Backslash-newlines removed so far, and before the token being read.
    splices: u32,
    splices_at_start: u32,
    params: &'a [CParam],
    next_param: usize,
    /// Inside a skipped function body: malformed numbers are not errors (LuaJIT's
    /// `CPARSE_MODE_SKIP`).
    pub skipping: bool,
    /// The texts of tokens that are no slice ([`Text::Built`]).
    built: Vec<String>,
}

/// A [`Lexer`]'s position and state ([`Lexer::mark`]), without its built texts: a mark is
/// cheap however many the parse has built.
pub(crate) struct Mark<'a> {
    chars: std::str::Chars<'a>,
    line: u32,
    col: u32,
    line_delta: i64,
    splices: u32,
    splices_at_start: u32,
    next_param: usize,
    /// How many texts were built.
    built: usize,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, params: &'a [CParam]) -> Lexer<'a> {
        Lexer {
            chars: src.chars(),
            line: 1,
            col: 1,
            line_delta: 0,
            splices: 0,
            splices_at_start: 0,
            params,
            next_param: 0,
            skipping: false,
            built: Vec::new(),
        }
    }

    /// Where the lexer is, to read from there again ([`Lexer::reset`]; [`Lexer::skipping`]
    /// is the caller's).
    pub fn mark(&self) -> Mark<'a> {
        Mark {
            chars: self.chars.clone(),
            line: self.line,
            col: self.col,
            line_delta: self.line_delta,
            splices: self.splices,
            splices_at_start: self.splices_at_start,
            next_param: self.next_param,
            built: self.built.len(),
        }
    }

    /// Goes back to `mark`, forgetting the texts built since (no token read since is used
    /// again).
    pub fn reset(&mut self, mark: Mark<'a>) {
        self.chars = mark.chars;
        self.line = mark.line;
        self.col = mark.col;
        self.line_delta = mark.line_delta;
        self.splices = mark.splices;
        self.splices_at_start = mark.splices_at_start;
        self.next_param = mark.next_param;
        self.built.truncate(mark.built);
    }

    /// A token's text.
    pub fn text<'s>(&'s self, t: &Token<'a>) -> &'s str {
        match t.text {
            Text::Slice(s) => s,
            Text::Built(i) => &self.built[i as usize],
        }
    }

    /// The text shown for a token after "near": its own, but `$` for a `$` parameter.
    pub fn shown<'s>(&'s self, t: &Token<'a>) -> &'s str {
        if t.from_param {
            "$"
        } else {
            self.text(t)
        }
    }

    /// A token's text, borrowed from the declaration when it is a slice of it.
    pub fn text_cow(&self, t: &Token<'a>) -> Cow<'a, str> {
        match t.text {
            Text::Slice(s) => Cow::Borrowed(s),
            Text::Built(i) => Cow::Owned(self.built[i as usize].clone()),
        }
    }

    /// Where `text` is kept: itself when borrowed, else with the lexer.
    fn keep(&mut self, text: Cow<'a, str>) -> Text<'a> {
        match text {
            Cow::Borrowed(s) => Text::Slice(s),
            Cow::Owned(s) => {
                self.built.push(s);
                Text::Built((self.built.len() - 1) as u32)
            }
        }
    }

    /// Number of `$` parameters consumed so far.
    pub fn params_used(&self) -> usize {
        self.next_param
    }

    /// The logical line number of physical line `physical`.
    #[inline]
    fn logical(&self, physical: u32) -> u32 {
        // Most texts have no `#line`.
        if self.line_delta == 0 {
            return physical;
        }
        (physical as i64 + self.line_delta).clamp(1, u32::MAX as i64) as u32
    }

    /// Renumbers lines so that the line holding `tok` becomes `line` (`#line`).
    pub fn renumber(&mut self, tok: &mut Token, line: u32) {
        let physical = tok.line as i64 - self.line_delta;
        self.line_delta = line as i64 - physical;
        tok.line = line;
    }

    fn peek(&mut self) -> Option<char> {
        loop {
            match self.chars.clone().next() {
                Some('\0') | None => return None,
                Some('\\') => {
                    // Backslash-newline is removed before tokenizing.
                    let mut ahead = self.chars.clone();
                    ahead.next();
                    match ahead.clone().next() {
                        Some('\n') | Some('\r') => {
                            let first = ahead.next();
                            if let (Some(f), Some(s)) = (first, ahead.clone().next()) {
                                if (s == '\n' || s == '\r') && s != f {
                                    ahead.next();
                                }
                            }
                            self.chars = ahead;
                            self.line += 1;
                            self.splices += 1;
                            self.col = 1;
                        }
                        _ => return Some('\\'),
                    }
                }
                Some(c) => return Some(c),
            }
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.chars.next();
        if c == '\n' || c == '\r' {
            // "\r\n" and "\n\r" are one line break.
            if let Some(n) = self.chars.clone().next() {
                if (n == '\n' || n == '\r') && n != c {
                    self.chars.next();
                }
            }
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn error(&self, line: u32, col: u32, message: &str, near: Option<&str>) -> CdefError {
        CdefError { line: self.logical(line), col, message: message.to_string(), token: near.map(str::to_string) }
    }

    /// The next token.
    #[inline]
    pub fn next_token(&mut self) -> Result<Token<'a>, CdefError> {
        let mut plain = Token::blank();
        if self.plain_token_into(&mut plain) {
            return Ok(plain);
        }
        self.general_token()
    }

    /// [`Lexer::next_token`] for what [`Lexer::plain_token_into`] leaves (after a line break
    /// or comment, the plain path is tried again).
    pub fn general_token(&mut self) -> Result<Token<'a>, CdefError> {
        let mut first = true;
        loop {
            if !first {
                let mut plain = Token::blank();
                if self.plain_token_into(&mut plain) {
                    return Ok(plain);
                }
            }
            first = false;
            let Some(c) = self.peek() else {
                self.splices_at_start = self.splices;
                return Ok(self.make(Tok::Eof, self.line, self.col, Cow::Borrowed("<eof>")));
            };
            let (line, col) = (self.line, self.col);
            self.splices_at_start = self.splices;
            if c.is_whitespace() {
                self.bump();
                continue;
            }
            if c == '/' {
                self.bump();
                match self.peek() {
                    Some('*') => {
                        self.bump();
                        self.block_comment();
                        continue;
                    }
                    Some('/') => {
                        while let Some(c) = self.peek() {
                            if c == '\n' || c == '\r' {
                                break;
                            }
                            self.bump();
                        }
                        continue;
                    }
                    _ => return Ok(self.punct("/", line, col)),
                }
            }
            if is_ident_char(c) {
                // An ASCII name ended by an ASCII character other than a backslash (which may
                // splice lines) is one slice of the text.
                let rest = self.chars.as_str();
                let n = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
                if n > 0 && rest.as_bytes().get(n).is_none_or(|&b| b.is_ascii() && b != b'\\') {
                    let s = &rest[..n];
                    self.chars = rest[n..].chars();
                    self.col += n as u32;
                    if c.is_ascii_digit() {
                        return self.number(Cow::Borrowed(s), line, col);
                    }
                    return Ok(self.ident(Cow::Borrowed(s), line, col));
                }
                // Room for most names without growing.
                let mut s = String::with_capacity(16);
                while let Some(c) = self.peek().filter(|&c| is_ident_char(c)) {
                    s.push(c);
                    self.bump();
                }
                if c.is_ascii_digit() {
                    return self.number(Cow::Owned(s), line, col);
                }
                return Ok(self.ident(Cow::Owned(s), line, col));
            }
            if c == '"' || c == '\'' {
                return self.string(c, line, col);
            }
            if c == '$' {
                self.bump();
                return self.param(line, col);
            }
            self.bump();
            let second = match c {
                '|' => Some('|'),
                '&' => Some('&'),
                '=' | '!' => Some('='),
                '-' => Some('>'),
                _ => None,
            };
            if let Some(second) = second.filter(|&s| self.peek() == Some(s)) {
                self.bump();
                return Ok(self.punct(two_char_op(c, second), line, col));
            }
            if (c == '<' || c == '>') && (self.peek() == Some('=') || self.peek() == Some(c)) {
                let second = self.bump().unwrap_or(c);
                return Ok(self.punct(two_char_op(c, second), line, col));
            }
            let p = match one_char_punct(c) {
                Some(p) => Cow::Borrowed(p),
                None => Cow::Owned(c.to_string()),
            };
            return Ok(self.make(Tok::Punct, line, col, p));
        }
    }

    /// The common cases of [`Lexer::next_token`] read straight from the text's bytes into
    /// `tok`, none of which can hold a backslash-newline: an ASCII name or number ended by an
    /// ASCII character other than a backslash, punctuation that is never the start of a
    /// longer token or comment, a string of printable ASCII without escapes, and the end of
    /// the text, each after any spaces and tabs. False leaves
    /// everything else (and `tok`) to the general path, character by character, with at most
    /// the spaces and tabs read.
    ///
    /// It writes over the parser's current token rather than returning a new one, so that the
    /// most frequent tokens are not moved through `Result`s.
    #[inline]
    pub fn plain_token_into(&mut self, tok: &mut Token<'a>) -> bool {
        let mut rest = self.chars.as_str();
        let blanks = rest.bytes().take_while(|&b| b == b' ' || b == b'\t').count();
        if blanks > 0 {
            rest = &rest[blanks..];
            self.chars = rest.chars();
            self.col += blanks as u32;
        }
        let bytes = rest.as_bytes();
        let Some(&first) = bytes.first() else {
            // The end of the text (an embedded NUL is the general path's).
            self.splices_at_start = self.splices;
            *tok = self.make(Tok::Eof, self.line, self.col, Cow::Borrowed("<eof>"));
            return true;
        };
        let (n, kind, kw, text) = match first {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'0'..=b'9' => {
                let mut n = 1;
                while n < bytes.len() && NAME_BYTE[bytes[n] as usize] {
                    n += 1;
                }
                if !bytes.get(n).is_none_or(|&b| b.is_ascii() && b != b'\\') {
                    return false;
                }
                let s = &rest[..n];
                if first.is_ascii_digit() {
                    // A malformed number is the general path's (error, or 0 when skipping).
                    let Some(lit) = parse_int_literal(s) else { return false };
                    (n, Tok::Int(lit), None, s)
                } else {
                    (n, Tok::Ident, keyword_of(s), s)
                }
            }
            b'(' | b')' | b',' | b';' | b'*' | b'[' | b']' | b'{' | b'}' | b'.' | b'?' | b':' | b'~' | b'^' | b'%'
            | b'+' | b'#' => (1, Tok::Punct, None, &ASCII[first as usize..first as usize + 1]),
            b'"' => {
                // Printable ASCII without a backslash up to the closing quote: the text itself.
                let len =
                    bytes[1..].iter().take_while(|&&b| b != b'"' && b != b'\\' && (b' '..=b'~').contains(&b)).count();
                if bytes.get(1 + len) != Some(&b'"') {
                    return false;
                }
                (len + 2, Tok::Str, None, &rest[1..1 + len])
            }
            _ => return false,
        };
        let (line, col) = (self.line, self.col);
        self.splices_at_start = self.splices;
        self.chars = rest[n..].chars();
        self.col += n as u32;
        *tok = Token {
            tok: kind,
            kw,
            line: self.logical(line),
            col,
            text: Text::Slice(text),
            from_param: false,
            joined_line: line - self.splices,
        };
        true
    }

    /// Is the next token `,` or `)`, after spaces and tabs only? A look ahead at the text
    /// that reads nothing (false does not mean it is not: a comment or line break may come
    /// first).
    pub fn next_is_list_separator(&self) -> bool {
        let rest = self.chars.as_str().as_bytes();
        let blanks = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        matches!(rest.get(blanks), Some(b',' | b')'))
    }

    /// Reads the `,` or `)` that [`Lexer::next_is_list_separator`] finds, with the spaces and
    /// tabs before it, without making a token of it; `None`, reading nothing, when there is
    /// none.
    pub fn take_list_separator(&mut self) -> Option<u8> {
        let rest = self.chars.as_str();
        let blanks = rest.bytes().take_while(|&b| b == b' ' || b == b'\t').count();
        let separator = *rest.as_bytes().get(blanks).filter(|&&b| b == b',' || b == b')')?;
        self.chars = rest[blanks + 1..].chars();
        self.col += blanks as u32 + 1;
        Some(separator)
    }

    /// Reads the punctuation `p` (one that is never the start of a longer token: `(` or `)`)
    /// when it comes next after spaces and tabs only, without making a token of it; its line
    /// and column, or `None`, reading nothing.
    pub fn take_punct(&mut self, p: u8) -> Option<(u32, u32)> {
        debug_assert!(p == b'(' || p == b')');
        let rest = self.chars.as_str();
        let blanks = rest.bytes().take_while(|&b| b == b' ' || b == b'\t').count();
        if rest.as_bytes().get(blanks) != Some(&p) {
            return None;
        }
        let at = (self.logical(self.line), self.col + blanks as u32);
        self.chars = rest[blanks + 1..].chars();
        self.col += blanks as u32 + 1;
        Some(at)
    }

    /// A token of text `text`.
    fn make(&mut self, tok: Tok, line: u32, col: u32, text: Cow<'a, str>) -> Token<'a> {
        let joined_line = line - self.splices_at_start;
        let text = self.keep(text);
        Token { tok, kw: None, line: self.logical(line), col, text, from_param: false, joined_line }
    }

    /// An identifier read from the text, with the keyword it is.
    fn ident(&mut self, name: Cow<'a, str>, line: u32, col: u32) -> Token<'a> {
        let kw = keyword_of(&name);
        let mut t = self.make(Tok::Ident, line, col, name);
        t.kw = kw;
        t
    }

    fn punct(&mut self, p: &'static str, line: u32, col: u32) -> Token<'a> {
        self.make(Tok::Punct, line, col, Cow::Borrowed(p))
    }

    fn block_comment(&mut self) {
        let mut star = false;
        while let Some(c) = self.bump() {
            if star && c == '/' {
                return;
            }
            star = c == '*';
        }
    }

    /// `$`: the next parameter, as LuaJIT's `cp_param` reads it.
    fn param(&mut self, line: u32, col: u32) -> Result<Token<'a>, CdefError> {
        if let Some(c) = self.peek().filter(|&c| is_ident_char(c) || c == '$') {
            // "$xyz" is reserved for future extensions.
            return Err(self.error(line, col, "syntax error", Some(&c.to_string())));
        }
        let Some(p) = self.params.get(self.next_param) else {
            return Err(self.error(line, col, "wrong number of type parameters", None));
        };
        self.next_param += 1;
        let (tok, text) = match p {
            CParam::Type(q) => (Tok::TypeParam(*q), "$"),
            CParam::Int(v) => {
                let fits = i32::try_from(*v).is_ok();
                let lit =
                    IntLit { value: *v as u64, width: if fits { 32 } else { 64 }, signed: true, long_suffix: false };
                (Tok::Int(lit), "$")
            }
            // A name is its own text, but shown as `$` (LuaJIT's "near '$'").
            CParam::Name(s) => (Tok::Ident, s.as_str()),
            CParam::Invalid => return Err(self.error(line, col, TYPE_PARAM_EXPECTED, None)),
        };
        let mut t = self.make(tok, line, col, Cow::Borrowed(text));
        t.from_param = true;
        Ok(t)
    }

    fn number(&mut self, lexeme: Cow<'a, str>, line: u32, col: u32) -> Result<Token<'a>, CdefError> {
        match parse_int_literal(&lexeme) {
            Some(lit) => Ok(self.make(Tok::Int(lit), line, col, lexeme)),
            None if self.skipping => Ok(self.make(
                Tok::Int(IntLit { value: 0, width: 32, signed: true, long_suffix: false }),
                line,
                col,
                lexeme,
            )),
            None => Err(self.error(line, col, "malformed number", Some(&lexeme))),
        }
    }

    fn string(&mut self, delim: char, line: u32, col: u32) -> Result<Token<'a>, CdefError> {
        self.bump();
        if delim == '"' {
            // Printable ASCII without a backslash up to the closing quote: the text itself.
            let rest = self.chars.as_str();
            let n = rest.bytes().take_while(|&b| b != b'"' && b != b'\\' && (b' '..=b'~').contains(&b)).count();
            if rest.as_bytes().get(n) == Some(&b'"') {
                self.chars = rest[n + 1..].chars();
                self.col += n as u32 + 1;
                return Ok(self.make(Tok::Str, line, col, Cow::Borrowed(&rest[..n])));
            }
        }
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error(self.line, self.col, "unfinished string", Some("<eof>")));
            };
            if c == delim {
                break;
            }
            if c != '\\' {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            let Some(e) = self.bump() else {
                return Err(self.error(self.line, self.col, "unfinished string", Some("<eof>")));
            };
            let b = match e {
                'a' => 7,
                'b' => 8,
                'f' => 12,
                'n' => b'\n',
                'r' => b'\r',
                't' => b'\t',
                'v' => 11,
                'e' => 27,
                'x' => {
                    let mut v: u32 = 0;
                    while let Some(d) = self.peek().and_then(|c| c.to_digit(16)) {
                        v = (v << 4).wrapping_add(d);
                        self.bump();
                    }
                    (v & 0xff) as u8
                }
                '0'..='7' => {
                    let mut v = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek().and_then(|c| c.to_digit(8)) {
                            Some(d) => {
                                v = v * 8 + d;
                                self.bump();
                            }
                            None => break,
                        }
                    }
                    (v & 0xff) as u8
                }
                other => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
            };
            bytes.push(b);
        }
        if delim == '"' {
            // Shown as its contents ([`Token::text`]).
            let text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            return Ok(self.make(Tok::Str, line, col, Cow::Owned(text)));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if bytes.len() != 1 {
            return Err(self.error(line, col, "''' expected", Some(&text)));
        }
        // A character constant is an int holding the (signed) char's value.
        let value = bytes[0] as i8 as i64 as u64;
        let int = Tok::Int(IntLit { value, width: 32, signed: true, long_suffix: false });
        Ok(self.make(int, line, col, Cow::Owned(text)))
    }
}

/// The two-character operator `c` `second`, one of those [`Lexer::next_token`] recognises.
fn two_char_op(c: char, second: char) -> &'static str {
    match (c, second) {
        ('|', '|') => "||",
        ('&', '&') => "&&",
        ('=', '=') => "==",
        ('!', '=') => "!=",
        ('-', '>') => "->",
        ('<', '=') => "<=",
        ('>', '=') => ">=",
        ('<', '<') => "<<",
        ('>', '>') => ">>",
        _ => unreachable!("not a two-character operator: {c}{second}"),
    }
}

/// The ASCII bytes of a name: letters, digits, `_` (one load per byte in
/// [`Lexer::plain_token_into`]).
static NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_';
        i += 1;
    }
    t
};

/// Every ASCII character, so that [`one_char_punct`] can borrow one as a `&'static str`.
const ASCII: &str = {
    const BYTES: [u8; 128] = {
        let mut b = [0u8; 128];
        let mut i = 0;
        while i < 128 {
            b[i] = i as u8;
            i += 1;
        }
        b
    };
    match std::str::from_utf8(&BYTES) {
        Ok(s) => s,
        Err(_) => panic!("ASCII is UTF-8"),
    }
};

/// The one-character token `c` as a static string, for every ASCII character (punctuation
/// and control characters: the others start names or are spaces); `None` for anything else.
fn one_char_punct(c: char) -> Option<&'static str> {
    c.is_ascii().then(|| &ASCII[c as usize..c as usize + 1])
}

/// Parses a C integer literal: decimal, `0x` hex or `0` octal, with an optional `u`/`l`/`ll`
/// suffix in any case and order. Its type is the first of C99's list (6.4.4.1) that holds the
/// value, with `long` read as 32 bits here (the parser widens `L` literals on LP64).
pub(crate) fn parse_int_literal(s: &str) -> Option<IntLit> {
    let lower = s.to_ascii_lowercase();
    let body_end = lower.trim_end_matches(['u', 'l']).len();
    let (body, suffix) = lower.split_at(body_end);
    let unsigned = suffix.contains('u');
    let longs = suffix.matches('l').count();
    if suffix.matches('u').count() > 1 || longs > 2 || (longs == 2 && !suffix.contains("ll")) {
        return None;
    }
    let (digits, radix) = if let Some(h) = body.strip_prefix("0x") {
        (h, 16)
    } else if body.len() > 1 && body.starts_with('0') {
        (&body[1..], 8)
    } else {
        (body, 10)
    };
    if digits.is_empty() {
        return None;
    }
    let value = u64::from_str_radix(digits, radix).ok()?;
    // C99 6.4.4.1: decimal literals without `u` only take signed types; octal and hex ones may
    // take the unsigned type of each width.
    let fits_i32 = value <= i32::MAX as u64;
    let fits_u32 = value <= u32::MAX as u64;
    let fits_i64 = value <= i64::MAX as u64;
    let decimal = radix == 10;
    let (width, signed) = if longs == 2 {
        (64, !unsigned && (fits_i64 || decimal))
    } else if unsigned {
        (if fits_u32 { 32 } else { 64 }, false)
    } else if fits_i32 {
        (32, true)
    } else if fits_u32 && !decimal {
        (32, false)
    } else if fits_i64 {
        (64, true)
    } else if decimal {
        return None;
    } else {
        (64, false)
    };
    Some(IntLit { value, width, signed, long_suffix: longs == 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token with the text the lexer shows for it.
    struct Lexed<'a> {
        token: Token<'a>,
        shown: String,
    }

    impl<'a> std::ops::Deref for Lexed<'a> {
        type Target = Token<'a>;
        fn deref(&self) -> &Token<'a> {
            &self.token
        }
    }

    impl Lexed<'_> {
        fn text(&self) -> &str {
            &self.shown
        }

        /// Is the token's text a slice of the declaration (or static), allocating nothing?
        fn is_slice(&self) -> bool {
            matches!(self.token.text, Text::Slice(_))
        }
    }

    fn lex_all(src: &str) -> Vec<Lexed<'_>> {
        let mut lx = Lexer::new(src, &[]);
        let mut out = Vec::new();
        loop {
            let token = lx.next_token().unwrap();
            let eof = token.tok == Tok::Eof;
            out.push(Lexed { token, shown: lx.shown(&token).to_string() });
            if eof {
                return out;
            }
        }
    }

    /// Punctuation tokens borrow static text (no allocation) yet show and compare as the
    /// character itself, every ASCII one, a control character too.
    #[test]
    fn every_punctuation_character_is_its_own_token_and_text() {
        for c in "!#%&()*+,-.:;<=>?@[\\]^`{|}~\u{1}".chars() {
            let src = format!("a {c} b");
            let toks = lex_all(&src);
            let want = c.to_string();
            assert!(toks[1].is(&want), "{c:?}: {:?}", toks[1].tok);
            assert_eq!(toks[1].text(), want);
            assert_eq!(toks[1].tok, Tok::Punct);
            assert!(toks[1].is_slice(), "{c:?}");
            assert_eq!((toks[0].text(), toks[2].text(), toks[3].text()), ("a", "b", "<eof>"));
        }
    }

    #[test]
    fn tokens_carry_line_and_column_after_comments_and_continuations() {
        let toks = lex_all("int /* c\n */ x; // tail\n  y\\\n z");
        let pos: Vec<(String, u32, u32)> = toks.iter().map(|t| (t.text().to_string(), t.line, t.col)).collect();
        assert_eq!(
            pos,
            vec![
                ("int".into(), 1, 1),
                ("x".into(), 2, 5),
                (";".into(), 2, 6),
                ("y".into(), 3, 3),
                ("z".into(), 4, 2),
                ("<eof>".into(), 4, 3)
            ]
        );
    }

    /// A name read as one slice of the text borrows it; the keyword an identifier is comes
    /// with the token, and a `$` name is never a keyword.
    #[test]
    fn names_borrow_the_text_and_carry_their_keyword() {
        let toks = lex_all("const x\\\ny int");
        assert_eq!((toks[0].tok, toks[0].token.text), (Tok::Ident, Text::Slice("const")));
        assert_eq!(toks[0].kw, Some(Kw::Const));
        assert!(toks[1].tok == Tok::Ident && !toks[1].is_slice() && toks[1].text() == "xy");
        assert_eq!((toks[1].kw, toks[2].kw), (None, Some(Kw::Int(4))));
        let params = [CParam::Name("int".into())];
        let mut lx = Lexer::new("$", &params);
        let t = lx.next_token().unwrap();
        assert!(t.tok == Tok::Ident && lx.text(&t) == "int");
        assert_eq!(t.kw, None);
    }

    /// Names are taken as one slice of the text when they can be; a name with a
    /// backslash-newline inside, or a non-ASCII character, is still one name.
    #[test]
    fn names_across_continuations_and_non_ascii_bytes_are_one_token() {
        let toks = lex_all("ab\\\ncd x\u{e9}y _1 7u\0tail");
        let got: Vec<(String, u32, u32)> = toks.iter().map(|t| (t.text().to_string(), t.line, t.col)).collect();
        let want = [("abcd", 1, 1), ("x\u{e9}y", 2, 4), ("_1", 2, 8), ("7u", 2, 11), ("<eof>", 2, 13)];
        assert_eq!(got, want.map(|(t, l, c)| (t.to_string(), l, c)));
        assert!(toks[0].tok == Tok::Ident && toks[0].text() == "abcd");
        assert!(matches!(toks[3].tok, Tok::Int(IntLit { value: 7, signed: false, .. })));
    }

    #[test]
    fn multi_character_operators_are_one_token() {
        let texts: Vec<String> =
            lex_all("a||b&&c==d!=e<=f>=g<<h>>i->j<k>l").iter().map(|t| t.text().to_string()).collect();
        assert_eq!(texts.join(" "), "a || b && c == d != e <= f >= g << h >> i -> j < k > l <eof>");
    }

    #[test]
    fn integer_literals_take_c99_types() {
        let lit = |s| parse_int_literal(s).unwrap();
        assert_eq!((lit("42").width, lit("42").signed), (32, true));
        assert_eq!((lit("0x80000000").width, lit("0x80000000").signed), (32, false));
        assert_eq!((lit("2147483648").width, lit("2147483648").signed), (64, true));
        assert_eq!(lit("010").value, 8);
        assert_eq!((lit("1u").signed, lit("1ULL").width), (false, 64));
        assert!(lit("1L").long_suffix);
        assert_eq!(parse_int_literal("12abc"), None);
        assert_eq!(parse_int_literal("0x"), None);
        assert_eq!(parse_int_literal("1lul"), None);
        assert_eq!(parse_int_literal("99999999999999999999"), None);
    }

    #[test]
    fn strings_and_character_constants_decode_escapes() {
        let toks = lex_all(r#""a\tb\x41\101\e" '\n' 'A'"#);
        assert_eq!((toks[0].tok, toks[0].text()), (Tok::Str, "a\tbAA\u{1b}"));
        assert!(matches!(toks[1].tok, Tok::Int(IntLit { value: 10, .. })));
        assert!(matches!(toks[2].tok, Tok::Int(IntLit { value: 65, .. })));
    }

    /// The byte-wise paths (spaces, plain names and numbers, one-character punctuation, a
    /// string without escapes) give what the character-wise one gives: the same tokens,
    /// columns and errors; a malformed number is still an error, or 0 when skipping.
    #[test]
    fn plain_tokens_keep_columns_borrow_and_still_refuse_bad_numbers() {
        let toks = lex_all("f\t( 0x10 ,\"ab c\" \"a\\n\");");
        let got: Vec<(String, u32)> = toks.iter().map(|t| (t.text().to_string(), t.col)).collect();
        let want = [("f", 1), ("(", 3), ("0x10", 5), (",", 10), ("ab c", 11), ("a\n", 18), (")", 23), (";", 24)];
        assert_eq!(got[..8], want.map(|(t, c)| (t.to_string(), c)));
        assert_eq!((toks[4].tok, toks[4].token.text), (Tok::Str, Text::Slice("ab c")));
        assert!(toks[5].tok == Tok::Str && !toks[5].is_slice() && toks[5].text() == "a\n");
        assert!(matches!(toks[2].tok, Tok::Int(IntLit { value: 16, .. })));
        let mut lx = Lexer::new("12abc", &[]);
        assert_eq!(lx.next_token().unwrap_err().to_string(), "1:1: malformed number near '12abc'");
        let mut lx = Lexer::new("12abc x", &[]);
        lx.skipping = true;
        assert!(matches!(lx.next_token().unwrap().tok, Tok::Int(IntLit { value: 0, .. })));
        let x = lx.next_token().unwrap();
        assert_eq!(lx.text(&x), "x");
    }

    #[test]
    fn unterminated_string_is_an_error() {
        let mut lx = Lexer::new("\"abc", &[]);
        assert_eq!(lx.next_token().unwrap_err().to_string(), "1:5: unfinished string near '<eof>'");
    }
}
