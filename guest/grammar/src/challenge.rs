//! `WWW-Authenticate` challenges (RFC 7235): `Bearer realm="…",service="…"`.

use std::collections::BTreeMap;

/// One challenge: its scheme (lowercased) and parameters (keys lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic`, `bearer`, …
    pub scheme: String,
    /// `realm`, `service`, `scope`, …
    pub params: BTreeMap<String, String>,
}

/// Parses every challenge in a header value. Malformed trailing input is
/// ignored rather than fatal: a registry that answers at all deserves a try.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut p = Cursor {
        s: header.as_bytes(),
        i: 0,
    };
    loop {
        p.skip_while(|b| b == b' ' || b == b'\t' || b == b',');
        let Some(word) = p.token() else { break };
        p.skip_ws();
        if p.peek() == Some(b'=') && !out.is_empty() {
            // `key=value` continuing the current challenge.
            p.i += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else if p.peek() == Some(b'=') {
            // A parameter before any scheme: skip it.
            p.i += 1;
            p.skip_ws();
            if p.peek() == Some(b'"') {
                p.quoted();
            } else {
                p.token();
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
        if p.i >= p.s.len() {
            break;
        }
    }
    out
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_while(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn skip_ws(&mut self) {
        self.skip_while(|b| b == b' ' || b == b'\t');
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip_while(|b| !matches!(b, b' ' | b'\t' | b',' | b'=' | b'"'));
        // token68 values (base64) may end in '='.
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut v = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'\\' => {
                    if let Some(n) = self.peek() {
                        v.push(n);
                        self.i += 1;
                    }
                }
                b'"' => break,
                _ => v.push(b),
            }
        }
        String::from_utf8_lossy(&v).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_params() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/alpine:pull,push");
    }

    #[test]
    fn several_challenges_escapes_and_tokens() {
        let c = parse(
            r#"Basic realm="Registry \"x\"", BEARER realm=https://h/t , error=insufficient_scope"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], r#"Registry "x""#);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["realm"], "https://h/t");
        assert_eq!(c[1].params["error"], "insufficient_scope");
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            ",,,",
            "a=b",
            "Bearer =x",
        ] {
            let _ = parse(s);
        }
        assert!(parse("").is_empty());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC{0,120}") {
                let _ = parse(&s);
            }

            #[test]
            fn quoted_values_come_back(realm in "[ -!#-\\[\\]-~]{0,40}", service in "[a-z.]{1,20}") {
                let header = format!(r#"Bearer realm="{realm}", service="{service}""#);
                let c = parse(&header);
                prop_assert_eq!(c.len(), 1);
                prop_assert_eq!(&c[0].params["realm"], &realm);
                prop_assert_eq!(&c[0].params["service"], &service);
            }
        }
    }
}
