//! containerd's filter language: the strings every `List` call accepts to select objects.
//!
//! A filter is a comma-separated list of *selectors*, all of which must hold (AND):
//!
//! ```text
//! name==foo,labels.bar           name is "foo" and label "bar" is set
//! labels."io.containerd.x"!=y    label io.containerd.x is not "y" (absent counts as "")
//! name~=^abc                     name matches the regular expression ^abc
//! other~=/[abc]{1,2}/            after ~=, a value may be quoted with / or | (regex-friendly)
//! other=="too complex, yo"       double-quoted values and fields take Go string escapes
//! ```
//!
//! The grammar, as containerd's scanner and parser actually accept it:
//!
//! ```text
//! filter    := selector (',' selector)*          ("" matches everything)
//! selector  := fieldpath [operator value]        (no operator: the field is present)
//! fieldpath := field ('.' field)*
//! field     := [A-Za-z0-9_-]+ | "double-quoted"
//! operator  := '==' | '!=' | '~='                (any other run of = ! ~ is an error)
//! value     := bare | "double-quoted" | /slashed/ | |piped|   (the last two only after ~=)
//! bare      := printable characters up to ',' or whitespace; it must not start with
//!              a quote, '.', ',' or an operator character (so `name~=.*x` needs `/.*x/`)
//! ```
//!
//! Whitespace may precede a field, an operator or a value, but not the `,` after a selector.
//! `|` is a quote character, not an OR: several filter strings are OR-ed by
//! [`Filter::parse_all`]. `==` needs the field present; `!=` and `~=` compare an absent field as
//! the empty string. Errors are InvalidArgument and read like containerd's, e.g. for
//! `name==foo,,x`: `filters: parse error: [name==foo, >|,|< x]: expected field or quoted`.
//!
//! Unlike containerd, which compiles a `~=` pattern when first matching and treats a bad one
//! as "no match", the pattern is compiled here at parse time and a bad one is an error.
//! Patterns use the `regex` crate, whose syntax is RE2's as in Go, except that `\d`, `\w`,
//! `\s` and `\b` are Unicode-aware.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;

use regex::Regex;

use crate::errdefs::Error;

/// Gives a filter the value at a field path of one object.
pub trait Adaptor {
    /// The value at `path` (e.g. `["labels", "foo"]`, `["name"]`), or `None` when absent.
    fn field(&self, path: &[String]) -> Option<String>;
}

/// A parsed filter (possibly several OR-ed filter strings). Cheap to clone, Send + Sync.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Alternatives (OR) of selector lists (AND); an empty list matches everything.
    any: Arc<[Vec<Selector>]>,
}

#[derive(Debug)]
struct Selector {
    path: Vec<String>,
    op: Op,
}

/// Values are bytes because Go's `\x`/octal escapes may produce strings that are not UTF-8;
/// such a value can never equal a field, exactly as in containerd.
#[derive(Debug)]
enum Op {
    Present,
    Equal(Vec<u8>),
    NotEqual(Vec<u8>),
    Matches(Regex),
}

impl Filter {
    /// Parses one filter string.
    pub fn parse(s: &str) -> Result<Filter, Error> {
        Ok(Filter {
            any: Arc::from(vec![parse_selectors(s)?]),
        })
    }

    /// Parses several filter strings, OR-ed together; an empty slice matches everything.
    pub fn parse_all<S: AsRef<str>>(filters: &[S]) -> Result<Filter, Error> {
        if filters.is_empty() {
            return Ok(Filter::always());
        }
        let any = filters
            .iter()
            .map(|s| {
                parse_selectors(s.as_ref())
                    .map_err(|e| Error::invalid(format!("{}: invalid argument", e.message)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter { any: any.into() })
    }

    /// Whether the object behind `adaptor` matches.
    pub fn matches(&self, adaptor: &dyn Adaptor) -> bool {
        self.any
            .iter()
            .any(|all| all.iter().all(|s| s.matches(adaptor)))
    }

    /// A filter that matches everything.
    pub fn always() -> Filter {
        Filter {
            any: Arc::from(vec![Vec::new()]),
        }
    }
}

/// Looks up `labels.<key>`-style paths: given the rest of a path after "labels", returns the
/// label value. The parts are joined with `.`, so `labels.io.containerd.x` and
/// `labels."io.containerd.x"` name the same label.
pub fn label_field(labels: &HashMap<String, String>, rest: &[String]) -> Option<String> {
    labels.get(&rest.join(".")).cloned()
}

impl Selector {
    fn matches(&self, adaptor: &dyn Adaptor) -> bool {
        let value = adaptor.field(&self.path);
        match &self.op {
            Op::Present => value.is_some(),
            Op::Equal(want) => value.is_some_and(|v| v.as_bytes() == want.as_slice()),
            Op::NotEqual(want) => value.unwrap_or_default().as_bytes() != want.as_slice(),
            Op::Matches(re) => re.is_match(&value.unwrap_or_default()),
        }
    }
}

fn parse_selectors(input: &str) -> Result<Vec<Selector>, Error> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let sc = Scanner {
        input,
        ..Scanner::default()
    };
    Parser { sc }.selectors()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Eof,
    Quoted,
    Value,
    Field,
    Separator,
    Operator,
    Illegal,
    Other,
}

/// Splits the input into tokens; `pos` is where the current character starts, `ppos` where the
/// next one does. After an operator it reads the next bare word as a value, not a field.
#[derive(Default)]
struct Scanner<'a> {
    input: &'a str,
    pos: usize,
    ppos: usize,
    value: bool,
    /// The first problem met, reported with the next illegal token.
    err: Option<&'static str>,
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '~')
}

/// Go also excludes the other non-graphic categories (format, private use, unassigned), which
/// std cannot tell apart; control characters and whitespace are what matter in practice.
fn is_value_char(c: char) -> bool {
    c != ',' && !c.is_whitespace() && !c.is_control()
}

impl<'a> Scanner<'a> {
    fn next(&mut self) -> Option<char> {
        self.pos = self.ppos;
        let c = self.input[self.ppos..].chars().next()?;
        self.ppos += c.len_utf8();
        if c == '\0' {
            self.fail("unexpected null");
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        let saved = (self.pos, self.ppos);
        let c = self.next();
        (self.pos, self.ppos) = saved;
        c
    }

    fn fail(&mut self, msg: &'static str) {
        self.err.get_or_insert(msg);
    }

    fn eat_while(&mut self, accept: fn(char) -> bool) {
        while self.peek().is_some_and(accept) {
            self.next();
        }
    }

    fn scan(&mut self) -> (usize, Token, &'a str) {
        let mut ch = self.next();
        while ch.is_some_and(char::is_whitespace) {
            ch = self.next();
        }
        let pos = self.pos;
        let token = match ch {
            None => return (pos, Token::Eof, ""),
            Some('\0') => return (pos, Token::Illegal, ""),
            Some(q @ ('"' | '/' | '|')) if self.scan_quoted(q) => Token::Quoted,
            Some('"' | '/' | '|') => Token::Illegal,
            Some(',' | '.') => {
                self.value = false;
                Token::Separator
            }
            Some(c) if is_operator_char(c) => {
                self.eat_while(is_operator_char);
                self.value = true;
                Token::Operator
            }
            Some(_) if self.value => {
                self.eat_while(is_value_char);
                self.value = false;
                Token::Value
            }
            Some(c) if is_field_char(c) => {
                self.eat_while(is_field_char);
                Token::Field
            }
            Some(_) => return (pos, Token::Other, ""),
        };
        (pos, token, &self.input[pos..self.ppos])
    }

    /// Reads up to the closing `quote`, checking escapes; false when the literal is bad.
    fn scan_quoted(&mut self, quote: char) -> bool {
        let mut legal = true;
        let mut ch = self.next();
        while ch != Some(quote) {
            match ch {
                None | Some('\n' | '\0') => {
                    self.fail("quoted literal not terminated");
                    return false;
                }
                Some('\\') => {
                    let (after, ok) = self.scan_escape(quote);
                    ch = after;
                    legal &= ok;
                }
                Some(_) => ch = self.next(),
            }
        }
        legal
    }

    fn scan_escape(&mut self, quote: char) -> (Option<char>, bool) {
        match self.next() {
            Some(c) if "abfnrtv\\".contains(c) || c == quote => (self.next(), true),
            Some(c @ '0'..='7') => self.scan_digits(Some(c), 8, 3),
            Some(c @ ('x' | 'u' | 'U')) => {
                let n = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let first = self.next();
                self.scan_digits(first, 16, n)
            }
            other => {
                self.fail("illegal escape sequence");
                (other, false)
            }
        }
    }

    fn scan_digits(&mut self, mut ch: Option<char>, base: u32, mut n: u32) -> (Option<char>, bool) {
        while n > 0 && ch.and_then(|c| c.to_digit(16)).is_some_and(|d| d < base) {
            ch = self.next();
            n -= 1;
        }
        if n > 0 {
            self.fail("illegal numeric escape sequence");
            return (ch, false);
        }
        (ch, true)
    }
}

/// Decodes a scanned quoted token (`"…"`, `/…/` or `|…|`) with Go's string escapes, where the
/// delimiter itself may be escaped; `None` on a syntax error.
fn unquote(text: &str) -> Option<Vec<u8>> {
    let (&quote, rest) = text.as_bytes().split_first()?;
    let body = rest.strip_suffix(&[quote])?;
    if body.contains(&b'\n') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        i += 1;
        if c == quote {
            return None;
        }
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *body.get(i)?;
        i += 1;
        let byte = match e {
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            b'\\' | b'"' | b'/' | b'|' if e == b'\\' || e == quote => e,
            b'0'..=b'7' => {
                let digits = body.get(i..i + 2)?;
                i += 2;
                let v = digits.iter().try_fold(u32::from(e - b'0'), |v, &d| {
                    matches!(d, b'0'..=b'7').then(|| v << 3 | u32::from(d - b'0'))
                })?;
                u8::try_from(v).ok()?
            }
            b'x' | b'u' | b'U' => {
                let n = match e {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                let digits = body.get(i..i + n)?;
                i += n;
                let v = digits
                    .iter()
                    .try_fold(0u32, |v, &d| char::from(d).to_digit(16).map(|x| v << 4 | x))?;
                if e == b'x' {
                    u8::try_from(v).ok()?
                } else {
                    if v > 0x10FFFF {
                        return None;
                    }
                    // Like Go, a surrogate code point becomes U+FFFD.
                    let ch = char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER);
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
            }
            _ => return None,
        };
        out.push(byte);
    }
    Some(out)
}

struct Parser<'a> {
    sc: Scanner<'a>,
}

impl<'a> Parser<'a> {
    /// containerd's error: the input with the offending character marked, then the reason.
    fn error(&self, pos: usize, msg: impl Display) -> Error {
        let input = self.sc.input;
        let at = match input.get(pos..).and_then(|rest| rest.chars().next()) {
            Some(c) => format!("{} >|{c}|< {}", &input[..pos], &input[pos + c.len_utf8()..]),
            None => input.to_string(),
        };
        Error::invalid(format!("filters: parse error: [{at}]: {msg}"))
    }

    fn scanner_error(&self, pos: usize) -> Error {
        self.error(pos, self.sc.err.unwrap_or("illegal token"))
    }

    fn selectors(&mut self) -> Result<Vec<Selector>, Error> {
        let mut all = vec![self.selector()?];
        loop {
            match self.sc.peek() {
                None => return Ok(all),
                Some(',') => {
                    self.sc.scan();
                    all.push(self.selector()?);
                }
                Some(c) => return Err(self.error(self.sc.ppos, format!("unexpected input: {c}"))),
            }
        }
    }

    fn selector(&mut self) -> Result<Selector, Error> {
        let path = self.fieldpath()?;
        if matches!(self.sc.peek(), None | Some(',')) {
            return Ok(Selector {
                path,
                op: Op::Present,
            });
        }
        let operator = self.operator()?;
        let (pos, value) = self.value(operator == "~=")?;
        let op = match operator {
            "==" => Op::Equal(value),
            "!=" => Op::NotEqual(value),
            _ => {
                let pattern = String::from_utf8(value)
                    .map_err(|_| self.error(pos, "invalid regular expression: not UTF-8"))?;
                let re = Regex::new(&pattern)
                    .map_err(|e| self.error(pos, format!("invalid regular expression: {e}")))?;
                Op::Matches(re)
            }
        };
        Ok(Selector { path, op })
    }

    fn fieldpath(&mut self) -> Result<Vec<String>, Error> {
        let mut path = vec![self.field()?];
        while self.sc.peek() == Some('.') {
            self.sc.scan();
            path.push(self.field()?);
        }
        Ok(path)
    }

    fn field(&mut self) -> Result<String, Error> {
        match self.sc.scan() {
            (_, Token::Field, text) => Ok(text.to_string()),
            (pos, Token::Quoted, text) => String::from_utf8(self.unquote(pos, text, false)?)
                .map_err(|_| self.error(pos, "unquoting failed: invalid UTF-8")),
            (pos, Token::Illegal, _) => Err(self.scanner_error(pos)),
            (pos, ..) => Err(self.error(pos, "expected field or quoted")),
        }
    }

    fn operator(&mut self) -> Result<&'a str, Error> {
        match self.sc.scan() {
            (_, Token::Operator, op @ ("==" | "!=" | "~=")) => Ok(op),
            (pos, Token::Operator, op) => {
                Err(self.error(pos, format!("unsupported operator {op:?}")))
            }
            (pos, Token::Illegal, _) => Err(self.scanner_error(pos)),
            (pos, ..) => Err(self.error(pos, r#"expected an operator ("=="|"!="|"~=")"#)),
        }
    }

    fn value(&mut self, alt_quotes: bool) -> Result<(usize, Vec<u8>), Error> {
        match self.sc.scan() {
            (pos, Token::Value | Token::Field, text) => Ok((pos, text.as_bytes().to_vec())),
            (pos, Token::Quoted, text) => Ok((pos, self.unquote(pos, text, alt_quotes)?)),
            (pos, Token::Illegal, _) => Err(self.scanner_error(pos)),
            (pos, ..) => Err(self.error(pos, "expected value or quoted")),
        }
    }

    /// Only `~=` values may use the regex quotes `/` and `|`.
    fn unquote(&self, pos: usize, text: &str, alt_quotes: bool) -> Result<Vec<u8>, Error> {
        if !alt_quotes && !text.starts_with('"') {
            return Err(self.error(pos, "invalid quote encountered"));
        }
        unquote(text).ok_or_else(|| self.error(pos, "unquoting failed: quote syntax error"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::Kind;

    struct Obj {
        name: &'static str,
        other: &'static str,
        labels: HashMap<String, String>,
    }

    impl Adaptor for Obj {
        fn field(&self, path: &[String]) -> Option<String> {
            let set = |s: &str| (!s.is_empty()).then(|| s.to_string());
            match path.first().map(String::as_str) {
                Some("name") => set(self.name),
                Some("other") => set(self.other),
                Some("labels") => label_field(&self.labels, &path[1..]),
                _ => None,
            }
        }
    }

    fn obj(name: &'static str, other: &'static str, labels: &[(&str, &str)]) -> Obj {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Obj {
            name,
            other,
            labels,
        }
    }

    fn corpus() -> Vec<Obj> {
        vec![
            obj("foo", "", &[("foo", "true")]),
            obj("bar", "", &[]),
            obj(
                "foo",
                "",
                &[("foo", "present"), ("more complex label", "present")],
            ),
            obj("bar", "", &[("bar", "true")]),
            obj("fooer", "", &[(r#"label with \ and ""#, "present")]),
            obj("fooer", "", &[(r#"label with \ and ".post"#, "present")]),
            obj("baz", "too complex, yo", &[]),
            obj("bazo", "abc", &[]),
            obj(
                "compound",
                "",
                &[("foo", "omg_asdf.asdf-qwer"), ("io.containerd.x", "y")],
            ),
        ]
    }

    fn hits_of(filter: &Filter) -> Vec<usize> {
        let objs = corpus();
        (0..objs.len())
            .filter(|&i| filter.matches(&objs[i]))
            .collect()
    }

    fn hits(input: &str) -> Vec<usize> {
        let filter = Filter::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        hits_of(&filter)
    }

    fn all_but(skip: &[usize]) -> Vec<usize> {
        (0..9).filter(|i| !skip.contains(i)).collect()
    }

    fn error(input: &str) -> String {
        let err = Filter::parse(input).expect_err(input);
        assert_eq!(err.kind, Kind::InvalidArgument, "{input:?}");
        err.message
    }

    #[test]
    fn presence_and_equality() {
        assert_eq!(hits(""), all_but(&[]));
        assert_eq!(hits("name"), all_but(&[]));
        assert_eq!(hits("other"), [6, 7]);
        assert_eq!(hits("labels.foo"), [0, 2, 8]);
        assert_eq!(hits("labels.foo,name"), [0, 2, 8]);
        assert_eq!(hits("labels.foo==true"), [0]);
        assert_eq!(hits("labels.foo==omg_asdf.asdf-qwer"), [8]);
        assert_eq!(hits("name==bar"), [1, 3]);
        assert_eq!(hits("name==bar,labels.bar"), [3]);
        assert_eq!(hits("name==bar,labels.bar==true"), [3]);
        assert!(hits("name==bar,labels.bar==wrong").is_empty());
        assert!(hits("unknown").is_empty());
    }

    #[test]
    fn not_equal_treats_absent_as_empty() {
        assert_eq!(hits("name!=bar"), all_but(&[1, 3]));
        assert_eq!(hits("labels.foo!=true"), all_but(&[0]));
        assert_eq!(hits("other!=abc"), all_but(&[7]));
        assert_eq!(hits(r#"other!="""#), [6, 7]);
        assert_eq!(hits(r#"name!="""#), all_but(&[]));
    }

    #[test]
    fn regular_expressions() {
        assert_eq!(hits("other~=[abc]+,name!=foo"), [6, 7]);
        assert_eq!(hits("other~=/[abc]+/,name!=foo"), [6, 7]);
        assert_eq!(hits("other~=/[abc]{1,2}/,name!=foo"), [6, 7]);
        assert!(hits(r#"other~=/[abc]{0,1}"\//,name!=foo"#).is_empty());
        assert_eq!(hits("name~=^foo"), [0, 2, 4, 5]);
        assert_eq!(hits("name~=|^ba.$|"), [1, 3, 6]);
        assert_eq!(hits(r#"name~="^b\x61r$""#), [1, 3]);
        assert_eq!(hits("name~=/^(bar|baz)$/"), [1, 3, 6]);
        // An absent field is matched as "".
        assert_eq!(hits("other~=^$"), all_but(&[6, 7]));
        assert_eq!(hits("labels.foo~=/./"), [0, 2, 8]);
        // A bare regex keeps its backslashes; in /…/ only the delimiter may be escaped.
        let one = obj("a/b+", "", &[]);
        assert!(Filter::parse(r"name~=^a/b\+$").unwrap().matches(&one));
        assert!(Filter::parse(r"name~=/^a\/b/").unwrap().matches(&one));
        assert!(Filter::parse(r"name~=|^a/b|").unwrap().matches(&one));
        assert!(
            Filter::parse("name~=牛")
                .unwrap()
                .matches(&obj("牛肉", "", &[]))
        );
    }

    #[test]
    fn quoted_field_paths() {
        assert_eq!(hits(r#"name==foo,labels."more complex label""#), [2]);
        assert_eq!(hits(r#"labels."label with \\ and \""==present"#), [4]);
        assert_eq!(hits(r#"labels."label with \\ and \"".post==present"#), [5]);
        assert_eq!(hits(r#"labels."io.containerd.x"==y"#), [8]);
        assert_eq!(hits("labels.io.containerd.x==y"), [8]);
        assert_eq!(hits(r#""name"==foo"#), [0, 2]);
    }

    #[test]
    fn quoted_and_bare_values() {
        assert_eq!(hits(r#"other=="too complex, yo""#), [6]);
        assert_eq!(hits(r#"name=="\x62\u0061\162""#), [1, 3]);
        assert_eq!(hits(r#"name=="fo\157""#), [0, 2]);
        assert_eq!(hits(r#"name=="\U0001F600""#), Vec::<usize>::new());
        let odd = obj("a|b=c/d~e!f.g\"h", "x\ty", &[]);
        assert!(
            Filter::parse(r#"name==a|b=c/d~e!f.g"h"#)
                .unwrap()
                .matches(&odd)
        );
        assert!(Filter::parse(r#"other=="x\ty""#).unwrap().matches(&odd));
        assert!(
            Filter::parse(r#"other=="\170\x09\u0079""#)
                .unwrap()
                .matches(&odd)
        );
        let emoji = obj("😀", "", &[]);
        assert!(
            Filter::parse(r#"name=="\U0001F600""#)
                .unwrap()
                .matches(&emoji)
        );
        assert!(
            Filter::parse(r#"name=="\ud83d""#)
                .unwrap()
                .matches(&obj("\u{fffd}", "", &[]))
        );
        // A byte escape that is not UTF-8 can never equal a field, but `!=` still holds.
        assert!(hits(r#"name=="\xff""#).is_empty());
        assert_eq!(hits(r#"name!="\xff""#), all_but(&[]));
    }

    #[test]
    fn whitespace() {
        assert_eq!(hits("name == bar"), [1, 3]);
        assert_eq!(hits("  name==bar, labels.bar"), [3]);
        assert_eq!(hits("name==\tbar"), [1, 3]);
        assert_eq!(
            error("name==bar ,labels.bar"),
            "filters: parse error: [name==bar >| |< ,labels.bar]: unexpected input:  "
        );
        assert_eq!(
            error("name "),
            r#"filters: parse error: [name ]: expected an operator ("=="|"!="|"~=")"#
        );
        assert_eq!(
            error("  "),
            "filters: parse error: [  ]: expected field or quoted"
        );
    }

    #[test]
    fn parse_all_ors_filters() {
        let either = Filter::parse_all(&["name==foo", "name==bar,labels.bar"]).unwrap();
        assert_eq!(hits_of(&either), [0, 2, 3]);
        assert_eq!(
            hits_of(&Filter::parse_all::<&str>(&[]).unwrap()),
            all_but(&[])
        );
        let with_empty = Filter::parse_all(&["name==nothing".to_string(), String::new()]).unwrap();
        assert_eq!(hits_of(&with_empty), all_but(&[]));
        assert!(hits_of(&Filter::parse_all(&["name==nothing"]).unwrap()).is_empty());
        let err = Filter::parse_all(&["name==foo", "name=="]).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert_eq!(
            err.message,
            "filters: parse error: [name==]: expected value or quoted: invalid argument"
        );
        // `|` is not an OR: here it is part of a bare value.
        assert!(hits("name==foo|name==bar").is_empty());
        assert_eq!(hits_of(&Filter::always()), all_but(&[]));
    }

    #[test]
    fn containerd_error_messages() {
        #[rustfmt::skip]
        let cases = [
            ("labels.|foo|==x", "[labels. >|||< foo|==x]: invalid quote encountered"),
            ("name==|foo|", "[name== >|||< foo|]: invalid quote encountered"),
            ("name==/foo/", "[name== >|/|< foo/]: invalid quote encountered"),
            (r#"labels.?"more".post==present"#, r#"[labels. >|?|< "more".post==present]: expected field or quoted"#),
            ("name==foo,", "[name==foo,]: expected field or quoted"),
            ("labels.", "[labels.]: expected field or quoted"),
            ("labels..foo", "[labels. >|.|< foo]: expected field or quoted"),
            ("name==foo,,x", "[name==foo, >|,|< x]: expected field or quoted"),
            ("==x", "[ >|=|< =x]: expected field or quoted"),
            ("image~=,id?=?fbaq", "[image~= >|,|< id?=?fbaq]: expected value or quoted"),
            ("name==.x", "[name== >|.|< x]: expected value or quoted"),
            ("name==", "[name==]: expected value or quoted"),
            ("labels.ns/key==value", "[labels.ns >|/|< key==value]: quoted literal not terminated"),
            ("labels.key==/value", "[labels.key== >|/|< value]: quoted literal not terminated"),
            ("labels.\"a\nb\"==x", "[labels. >|\"|< a\nb\"==x]: quoted literal not terminated"),
            ("name===x", r#"[name >|=|< ==x]: unsupported operator "===""#),
            ("name=x", r#"[name >|=|< x]: unsupported operator "=""#),
            ("name?x", r#"[name >|?|< x]: expected an operator ("=="|"!="|"~=")"#),
            ("name==foo bar", "[name==foo >| |< bar]: unexpected input:  "),
            ("name==\"x\"y", "[name==\"x\" >|y|< ]: unexpected input: y"),
            (r#"labels."\g""#, r#"[labels. >|"|< \g"]: illegal escape sequence"#),
            (r#"labels."\xaz""#, r#"[labels. >|"|< \xaz"]: illegal numeric escape sequence"#),
            (r#"name=="\777""#, r#"[name== >|"|< \777"]: unquoting failed: quote syntax error"#),
            (r#"name=="\/""#, r#"[name== >|"|< \/"]: illegal escape sequence"#),
            (r"name~=/a\.b/", r"[name~= >|/|< a\.b/]: illegal escape sequence"),
            ("foo\0bar", "[foo >|\0|< bar]: unexpected null"),
            ("name==牛 x", "[name==牛 >| |< x]: unexpected input:  "),
            ("牛==x", "[ >|牛|< ==x]: expected field or quoted"),
        ];
        for (input, want) in cases {
            assert_eq!(
                error(input),
                format!("filters: parse error: {want}"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn invalid_regex_is_rejected_at_parse_time() {
        let msg = error("name~=(");
        assert!(
            msg.starts_with("filters: parse error: [name~= >|(|< ]: invalid regular expression")
        );
        assert!(error(r#"name~="\xff""#).contains("not UTF-8"));
        // The same text is fine as an equality value.
        assert!(Filter::parse("name==(").is_ok());
    }

    #[test]
    fn field_and_value_tokens() {
        // Fields may start with digits, '-' or '_'; bare values take any printable text.
        let filter = Filter::parse("labels.0-a_b==v,labels.x~=[0-9]{2}").unwrap();
        let labelled = obj("", "", &[("0-a_b", "v"), ("x", "a12")]);
        assert!(filter.matches(&labelled));
        assert!(!filter.matches(&obj("", "", &[("0-a_b", "v"), ("x", "a1")])));
    }

    #[test]
    fn label_field_joins_the_rest_of_the_path() {
        let labels: HashMap<String, String> = [
            ("a.b".to_string(), "1".to_string()),
            ("".to_string(), "e".to_string()),
        ]
        .into();
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            label_field(&labels, &path(&["a", "b"])).as_deref(),
            Some("1")
        );
        assert_eq!(label_field(&labels, &path(&["a.b"])).as_deref(), Some("1"));
        assert_eq!(label_field(&labels, &path(&["a"])), None);
        assert_eq!(label_field(&labels, &[]).as_deref(), Some("e"));
    }

    #[test]
    fn filter_is_shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>(_: &T) {}
        let filter = Filter::parse("name~=^foo$").unwrap();
        assert_send_sync(&filter);
        let copy = filter.clone();
        assert_eq!(hits_of(&copy), [0, 2]);
    }
}
