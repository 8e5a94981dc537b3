//! The cluster query language of `memberOf` constraints, as far as berth has the facts:
//! tests on a container instance's attributes, combined with `and` / `or` / `not`.
//!
//! ```text
//! attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:stack != dev
//! (attribute:gpu exists or attribute:tier == 'batch') && !(attribute:spot == true)
//! ```
//!
//! Grammar (keywords are case-insensitive; `&&` `||` `!` are the symbolic forms):
//!
//! ```text
//! or    := and (("or" | "||") and)*
//! and   := unary (("and" | "&&") unary)*
//! unary := ("not" | "!") unary | "(" or ")" | test
//! test  := "attribute:" NAME op
//! op    := ("==" | "equals") value | ("!=" | "not_equals") value
//!        | "exists" | ("!exists" | "not_exists" | "not exists")
//!        | "in" list | ("!in" | "not_in" | "not in") list
//! list  := "[" value ("," value)* "]"
//! value := a word, or a 'single' or "double" quoted string
//! ```
//!
//! A test of an attribute the instance does not have is false, except `!exists`: ECS's
//! `attribute:stack != prod` selects the instances that have `stack`, unless it is `prod`
//! (`not(attribute:stack == prod)` also selects those without it).
//!
//! The other subjects (`task:group`, `agentVersion`, `ec2InstanceId`, `registeredAt`,
//! `runningTasksCount`, `agentConnected`) and the pattern and ordering operators
//! (`=~`, `!~`, `<`, `>` ...) are refused by name: berth does not evaluate them.

use std::collections::BTreeMap;
use std::fmt;

/// The longest expression ECS takes.
pub const MAX_EXPRESSION_CHARS: usize = 2000;
/// Parentheses and `not`s nest at most this deep (the parser recurses on them).
const MAX_DEPTH: usize = 32;

/// A parsed `memberOf` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    root: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Attribute { name: String, test: Test },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Equals(String),
    NotEquals(String),
    Exists,
    NotExists,
    In(Vec<String>),
    NotIn(Vec<String>),
}

/// Why an expression does not parse: what was wrong, at which character (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at character {}", self.message, self.position)
    }
}

impl Expression {
    pub fn parse(text: &str) -> Result<Expression, ParseError> {
        let chars = text.chars().count();
        if chars > MAX_EXPRESSION_CHARS {
            return Err(ParseError {
                position: MAX_EXPRESSION_CHARS + 1,
                message: format!(
                    "the expression has {chars} characters, more than the {MAX_EXPRESSION_CHARS} allowed"
                ),
            });
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            next: 0,
            end: chars + 1,
        };
        if parser.tokens.is_empty() {
            return Err(ParseError {
                position: 1,
                message: "the expression is empty".to_string(),
            });
        }
        let root = parser.or(0)?;
        if let Some(token) = parser.peek() {
            return Err(ParseError {
                position: token.position,
                message: format!("unexpected {} after a complete expression", token.kind),
            });
        }
        Ok(Expression { root })
    }

    /// Whether an instance with these attributes is a member.
    pub fn matches(&self, attributes: &BTreeMap<String, String>) -> bool {
        self.root.eval(attributes)
    }
}

impl Node {
    fn eval(&self, attributes: &BTreeMap<String, String>) -> bool {
        match self {
            Node::And(all) => all.iter().all(|n| n.eval(attributes)),
            Node::Or(any) => any.iter().any(|n| n.eval(attributes)),
            Node::Not(inner) => !inner.eval(attributes),
            Node::Attribute { name, test } => {
                let actual = attributes.get(name);
                match test {
                    Test::Exists => actual.is_some(),
                    Test::NotExists => actual.is_none(),
                    Test::Equals(v) => actual == Some(v),
                    Test::NotEquals(v) => actual.is_some_and(|a| a != v),
                    Test::In(list) => actual.is_some_and(|a| list.contains(a)),
                    Test::NotIn(list) => actual.is_some_and(|a| !list.contains(a)),
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    EqEq,
    NotEq,
    Bang,
    AndAnd,
    OrOr,
    /// `=~`, `!~`, `<`, `<=`, `>`, `>=`: known to ECS, not evaluated by berth.
    Unsupported(&'static str),
    Word(String),
    Quoted(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::LParen => write!(f, "'('"),
            Kind::RParen => write!(f, "')'"),
            Kind::LBracket => write!(f, "'['"),
            Kind::RBracket => write!(f, "']'"),
            Kind::Comma => write!(f, "','"),
            Kind::EqEq => write!(f, "'=='"),
            Kind::NotEq => write!(f, "'!='"),
            Kind::Bang => write!(f, "'!'"),
            Kind::AndAnd => write!(f, "'&&'"),
            Kind::OrOr => write!(f, "'||'"),
            Kind::Unsupported(op) => write!(f, "'{op}'"),
            Kind::Word(w) => write!(f, "'{w}'"),
            Kind::Quoted(q) => write!(f, "'{q}'"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// 1-based character position of the token's first character.
    position: usize,
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || "()[],=!&|<>'\"".contains(c)
}

fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        let next = chars.get(i + 1).copied();
        let (kind, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Kind::LParen, 1),
            ')' => (Kind::RParen, 1),
            '[' => (Kind::LBracket, 1),
            ']' => (Kind::RBracket, 1),
            ',' => (Kind::Comma, 1),
            '=' => match next {
                Some('=') => (Kind::EqEq, 2),
                Some('~') => (Kind::Unsupported("=~"), 2),
                _ => {
                    return Err(ParseError {
                        position,
                        message: "'=' is not an operator (use '==')".to_string(),
                    })
                }
            },
            '!' => match next {
                Some('=') => (Kind::NotEq, 2),
                Some('~') => (Kind::Unsupported("!~"), 2),
                _ => (Kind::Bang, 1),
            },
            '&' | '|' => {
                if next != Some(c) {
                    return Err(ParseError {
                        position,
                        message: format!("'{c}' is not an operator (use '{c}{c}')"),
                    });
                }
                (if c == '&' { Kind::AndAnd } else { Kind::OrOr }, 2)
            }
            '<' | '>' => {
                let with_equal = next == Some('=');
                let op = match (c, with_equal) {
                    ('<', false) => "<",
                    ('<', true) => "<=",
                    ('>', false) => ">",
                    _ => ">=",
                };
                (Kind::Unsupported(op), if with_equal { 2 } else { 1 })
            }
            '\'' | '"' => {
                let Some(close) = chars[i + 1..].iter().position(|&q| q == c) else {
                    return Err(ParseError {
                        position,
                        message: format!("the quoted value starting here has no closing {c}"),
                    });
                };
                let value: String = chars[i + 1..i + 1 + close].iter().collect();
                (Kind::Quoted(value), close + 2)
            }
            _ => {
                let len = chars[i..]
                    .iter()
                    .position(|&w| is_delimiter(w))
                    .unwrap_or(chars.len() - i);
                (Kind::Word(chars[i..i + len].iter().collect()), len)
            }
        };
        tokens.push(Token { kind, position });
        i += len;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// The position just past the last character, for "expected ... at the end".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_word(&self, offset: usize) -> Option<String> {
        match self.tokens.get(self.next + offset).map(|t| &t.kind) {
            Some(Kind::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn position(&self) -> usize {
        self.peek().map(|t| t.position).unwrap_or(self.end)
    }

    fn error(&self, expected: &str) -> ParseError {
        let found = match self.peek() {
            Some(token) => format!("found {}", token.kind),
            None => "found the end of the expression".to_string(),
        };
        ParseError {
            position: self.position(),
            message: format!("expected {expected}, {found}"),
        }
    }

    fn nested(&self, depth: usize) -> Result<usize, ParseError> {
        if depth >= MAX_DEPTH {
            return Err(ParseError {
                position: self.position(),
                message: format!("the expression nests deeper than {MAX_DEPTH} levels"),
            });
        }
        Ok(depth + 1)
    }

    fn or(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut any = vec![self.and(depth)?];
        loop {
            let is_or = matches!(self.peek().map(|t| &t.kind), Some(Kind::OrOr))
                || self.peek_word(0).as_deref() == Some("or");
            if !is_or {
                break;
            }
            self.next += 1;
            any.push(self.and(depth)?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Node::Or(any)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut all = vec![self.unary(depth)?];
        loop {
            let is_and = matches!(self.peek().map(|t| &t.kind), Some(Kind::AndAnd))
                || self.peek_word(0).as_deref() == Some("and");
            if !is_and {
                break;
            }
            self.next += 1;
            all.push(self.unary(depth)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Node::And(all)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Node, ParseError> {
        let is_not = matches!(self.peek().map(|t| &t.kind), Some(Kind::Bang))
            || self.peek_word(0).as_deref() == Some("not");
        if is_not {
            let depth = self.nested(depth)?;
            self.next += 1;
            return Ok(Node::Not(Box::new(self.unary(depth)?)));
        }
        if matches!(self.peek().map(|t| &t.kind), Some(Kind::LParen)) {
            let depth = self.nested(depth)?;
            self.next += 1;
            let inner = self.or(depth)?;
            if !matches!(self.peek().map(|t| &t.kind), Some(Kind::RParen)) {
                return Err(self.error("')'"));
            }
            self.next += 1;
            return Ok(inner);
        }
        self.test()
    }

    fn test(&mut self) -> Result<Node, ParseError> {
        let Some(Token {
            kind: Kind::Word(subject),
            position,
        }) = self.peek().cloned()
        else {
            return Err(self.error("a test such as 'attribute:NAME == VALUE'"));
        };
        let Some(name) = subject.strip_prefix("attribute:") else {
            let known = [
                "task:group",
                "agentConnected",
                "agentVersion",
                "ec2InstanceId",
                "registeredAt",
                "runningTasksCount",
            ];
            let message = if known.iter().any(|k| k.eq_ignore_ascii_case(&subject)) {
                format!("the subject '{subject}' is not supported by berth: use attribute:NAME")
            } else {
                format!("expected a subject such as 'attribute:NAME', found '{subject}'")
            };
            return Err(ParseError { position, message });
        };
        if name.is_empty() {
            return Err(ParseError {
                position,
                message: "'attribute:' needs an attribute name".to_string(),
            });
        }
        let name = name.to_string();
        self.next += 1;
        let test = self.operator(&subject)?;
        Ok(Node::Attribute { name, test })
    }

    fn operator(&mut self, subject: &str) -> Result<Test, ParseError> {
        let expected =
            format!("an operator (==, !=, exists, !exists, in, not_in) after '{subject}'");
        let Some(token) = self.peek().cloned() else {
            return Err(self.error(&expected));
        };
        let word = self.peek_word(0);
        match (&token.kind, word.as_deref()) {
            (Kind::EqEq, _) | (_, Some("equals")) => {
                self.next += 1;
                Ok(Test::Equals(self.value(&token.kind)?))
            }
            (Kind::NotEq, _) | (_, Some("not_equals")) => {
                self.next += 1;
                Ok(Test::NotEquals(self.value(&token.kind)?))
            }
            (_, Some("exists")) => {
                self.next += 1;
                Ok(Test::Exists)
            }
            (_, Some("not_exists")) => {
                self.next += 1;
                Ok(Test::NotExists)
            }
            (_, Some("in")) => {
                self.next += 1;
                Ok(Test::In(self.list()?))
            }
            (_, Some("not_in")) => {
                self.next += 1;
                Ok(Test::NotIn(self.list()?))
            }
            (Kind::Bang, _) | (_, Some("not")) => match self.peek_word(1).as_deref() {
                Some("in") => {
                    self.next += 2;
                    Ok(Test::NotIn(self.list()?))
                }
                Some("exists") => {
                    self.next += 2;
                    Ok(Test::NotExists)
                }
                _ => Err(self.error(&expected)),
            },
            (Kind::Unsupported(op), _) => Err(ParseError {
                position: token.position,
                message: format!("the operator '{op}' is not supported by berth"),
            }),
            (_, Some(w @ ("matches" | "not_matches"))) => Err(ParseError {
                position: token.position,
                message: format!("the operator '{w}' is not supported by berth"),
            }),
            (
                _,
                Some(w @ ("greater_than" | "greater_than_equal" | "less_than" | "less_than_equal")),
            ) => Err(ParseError {
                position: token.position,
                message: format!("the operator '{w}' is not supported by berth"),
            }),
            _ => Err(self.error(&expected)),
        }
    }

    fn value(&mut self, after: &Kind) -> Result<String, ParseError> {
        match self.peek().map(|t| t.kind.clone()) {
            Some(Kind::Word(value) | Kind::Quoted(value)) => {
                self.next += 1;
                Ok(value)
            }
            _ => Err(self.error(&format!("a value after {after}"))),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, ParseError> {
        if !matches!(self.peek().map(|t| &t.kind), Some(Kind::LBracket)) {
            return Err(self.error("a list such as '[a, b]'"));
        }
        self.next += 1;
        let mut values = Vec::new();
        loop {
            match self.peek().map(|t| t.kind.clone()) {
                Some(Kind::Word(value) | Kind::Quoted(value)) => {
                    self.next += 1;
                    values.push(value);
                }
                _ => return Err(self.error("a value in the list")),
            }
            match self.peek().map(|t| &t.kind) {
                Some(Kind::Comma) => self.next += 1,
                Some(Kind::RBracket) => {
                    self.next += 1;
                    return Ok(values);
                }
                _ => return Err(self.error("',' or ']'")),
            }
        }
    }
}
