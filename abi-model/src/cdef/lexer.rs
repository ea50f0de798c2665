//! The C lexer: turns declaration text into tokens with line:column positions.
//!
//! It follows LuaJIT's `lj_cparse.c` lexer: identifiers (bytes >= 0x80 count as identifier
//! characters), integer literals with C suffixes, string and character literals with C escapes
//! (plus `\e`), `//` and `/* */` comments, backslash-newline continuations, the multi-character
//! operators `|| && == != <= >= << >> ->`, and `$` parameters. Everything else is a one-character
//! token. An embedded NUL ends the text, as it does for LuaJIT's C string.

use super::{CParam, CdefError, TYPE_PARAM_EXPECTED};
use crate::QualType;

/// A token's kind.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword (keywords are recognised by the parser).
    Ident(String),
    /// An integer literal (or character constant, or `$` number parameter).
    Int(IntLit),
    /// A string literal's contents.
    Str(String),
    /// A `$` type parameter.
    TypeParam(QualType),
    /// An operator or other punctuation: `(`, `||`, `->`, also any unknown character.
    Punct(String),
    /// End of the text.
    Eof,
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

/// A token with where it starts and the text LuaJIT shows for it in "near '...'".
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub col: u32,
    /// The text shown after "near".
    pub text: String,
    /// The token came from a `$` parameter (a name parameter is never a keyword).
    pub from_param: bool,
    /// The source line it starts on with backslash-newlines joined (the line a `#` directive
    /// spans), unaffected by `#line`.
    pub joined_line: u32,
}

impl Token {
    /// Is this the punctuation `p`?
    pub fn is(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Punct(s) if s == p)
    }
}

#[derive(Clone)]
pub(crate) struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
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
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, params: &'a [CParam]) -> Lexer<'a> {
        Lexer {
            chars: src.chars().peekable(),
            line: 1,
            col: 1,
            line_delta: 0,
            splices: 0,
            splices_at_start: 0,
            params,
            next_param: 0,
            skipping: false,
        }
    }

    /// Number of `$` parameters consumed so far.
    pub fn params_used(&self) -> usize {
        self.next_param
    }

    /// The logical line number of physical line `physical`.
    fn logical(&self, physical: u32) -> u32 {
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
            match self.chars.peek().copied() {
                Some('\0') | None => return None,
                Some('\\') => {
                    // Backslash-newline is removed before tokenizing.
                    let mut ahead = self.chars.clone();
                    ahead.next();
                    match ahead.peek().copied() {
                        Some('\n') | Some('\r') => {
                            let first = ahead.next();
                            if let (Some(f), Some(s)) = (first, ahead.peek().copied()) {
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
            if let Some(&n) = self.chars.peek() {
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
    pub fn next_token(&mut self) -> Result<Token, CdefError> {
        loop {
            let Some(c) = self.peek() else {
                self.splices_at_start = self.splices;
                return Ok(self.make(Tok::Eof, self.line, self.col, "<eof>".into()));
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
                // Room for most names without growing.
                let mut s = String::with_capacity(16);
                while let Some(c) = self.peek().filter(|&c| is_ident_char(c)) {
                    s.push(c);
                    self.bump();
                }
                if c.is_ascii_digit() {
                    return self.number(s, line, col);
                }
                return Ok(self.make(Tok::Ident(s.clone()), line, col, s));
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
                return Ok(self.punct(&format!("{c}{second}"), line, col));
            }
            if (c == '<' || c == '>') && (self.peek() == Some('=') || self.peek() == Some(c)) {
                let second = self.bump().unwrap_or(c);
                return Ok(self.punct(&format!("{c}{second}"), line, col));
            }
            return Ok(self.punct(c.encode_utf8(&mut [0; 4]), line, col));
        }
    }

    fn make(&self, tok: Tok, line: u32, col: u32, text: String) -> Token {
        let joined_line = line - self.splices_at_start;
        Token { tok, line: self.logical(line), col, text, from_param: false, joined_line }
    }

    fn punct(&self, p: &str, line: u32, col: u32) -> Token {
        self.make(Tok::Punct(p.to_string()), line, col, p.to_string())
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
    fn param(&mut self, line: u32, col: u32) -> Result<Token, CdefError> {
        if let Some(c) = self.peek().filter(|&c| is_ident_char(c) || c == '$') {
            // "$xyz" is reserved for future extensions.
            return Err(self.error(line, col, "syntax error", Some(&c.to_string())));
        }
        let Some(p) = self.params.get(self.next_param) else {
            return Err(self.error(line, col, "wrong number of type parameters", None));
        };
        self.next_param += 1;
        let tok = match p {
            CParam::Type(q) => Tok::TypeParam(*q),
            CParam::Int(v) => {
                let fits = i32::try_from(*v).is_ok();
                Tok::Int(IntLit {
                    value: *v as u64,
                    width: if fits { 32 } else { 64 },
                    signed: true,
                    long_suffix: false,
                })
            }
            CParam::Name(s) => Tok::Ident(s.clone()),
            CParam::Invalid => return Err(self.error(line, col, TYPE_PARAM_EXPECTED, None)),
        };
        let mut t = self.make(tok, line, col, "$".into());
        t.from_param = true;
        Ok(t)
    }

    fn number(&mut self, lexeme: String, line: u32, col: u32) -> Result<Token, CdefError> {
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

    fn string(&mut self, delim: char, line: u32, col: u32) -> Result<Token, CdefError> {
        self.bump();
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
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if delim == '"' {
            return Ok(self.make(Tok::Str(text.clone()), line, col, text));
        }
        if bytes.len() != 1 {
            return Err(self.error(line, col, "''' expected", Some(&text)));
        }
        // A character constant is an int holding the (signed) char's value.
        let value = bytes[0] as i8 as i64 as u64;
        Ok(self.make(Tok::Int(IntLit { value, width: 32, signed: true, long_suffix: false }), line, col, text))
    }
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

    fn lex_all(src: &str) -> Vec<Token> {
        let mut lx = Lexer::new(src, &[]);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token().unwrap();
            let eof = t.tok == Tok::Eof;
            out.push(t);
            if eof {
                return out;
            }
        }
    }

    #[test]
    fn tokens_carry_line_and_column_after_comments_and_continuations() {
        let toks = lex_all("int /* c\n */ x; // tail\n  y\\\n z");
        let pos: Vec<(String, u32, u32)> = toks.iter().map(|t| (t.text.clone(), t.line, t.col)).collect();
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

    #[test]
    fn multi_character_operators_are_one_token() {
        let texts: Vec<String> = lex_all("a||b&&c==d!=e<=f>=g<<h>>i->j<k>l").into_iter().map(|t| t.text).collect();
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
        assert_eq!(toks[0].tok, Tok::Str("a\tbAA\u{1b}".into()));
        assert!(matches!(toks[1].tok, Tok::Int(IntLit { value: 10, .. })));
        assert!(matches!(toks[2].tok, Tok::Int(IntLit { value: 65, .. })));
    }

    #[test]
    fn unterminated_string_is_an_error() {
        let mut lx = Lexer::new("\"abc", &[]);
        assert_eq!(lx.next_token().unwrap_err().to_string(), "1:5: unfinished string near '<eof>'");
    }
}
