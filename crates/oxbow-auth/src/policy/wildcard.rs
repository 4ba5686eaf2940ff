//! `*` / `?` patterns with policy variables (`${credentials-iot:ThingName}`), as in IAM
//! Action and Resource elements. A variable is replaced by its value taken literally; a
//! variable with no value makes the pattern match nothing. `${*}`, `${?}` and `${$}` stand
//! for the literal characters.

use super::Vars;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(char),
    Star,
    One,
    Var(String),
}

#[derive(Debug, Clone, Copy)]
enum Tok {
    Lit(char),
    Star,
    One,
}

#[derive(Debug, Clone)]
pub struct Pattern {
    parts: Vec<Part>,
    /// The tokens, when no variable needs the request to resolve.
    fixed: Option<Vec<Tok>>,
    /// The literal text before the first wildcard or variable: a cheap early rejection.
    prefix: String,
    /// For patterns of literals and `*` only (most IAM patterns): the literal runs between
    /// the stars, matched by anchored prefix/suffix and in-order substring search.
    star_runs: Option<Vec<String>>,
    case_insensitive: bool,
}

fn fold(c: char, ci: bool) -> char {
    if ci {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

impl Pattern {
    pub fn new(text: &str, case_insensitive: bool) -> Self {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("${") {
                if let Some(end) = after.find('}') {
                    match &after[..end] {
                        "*" => parts.push(Part::Lit('*')),
                        "?" => parts.push(Part::Lit('?')),
                        "$" => parts.push(Part::Lit('$')),
                        name => parts.push(Part::Var(name.to_string())),
                    }
                    rest = &after[end + 1..];
                    continue;
                }
            }
            parts.push(match c {
                '*' => Part::Star,
                '?' => Part::One,
                c => Part::Lit(c),
            });
            rest = &rest[c.len_utf8()..];
        }
        let fixed = parts
            .iter()
            .map(|p| match p {
                Part::Lit(c) => Some(Tok::Lit(*c)),
                Part::Star => Some(Tok::Star),
                Part::One => Some(Tok::One),
                Part::Var(_) => None,
            })
            .collect();
        let prefix = parts
            .iter()
            .map_while(|p| match p {
                Part::Lit(c) => Some(fold(*c, case_insensitive)),
                _ => None,
            })
            .collect();
        let star_only =
            !case_insensitive && parts.iter().all(|p| matches!(p, Part::Lit(_) | Part::Star));
        let star_runs = star_only.then(|| {
            let mut runs = vec![String::new()];
            for p in &parts {
                match p {
                    Part::Lit(c) => runs.last_mut().expect("non-empty").push(*c),
                    _ => runs.push(String::new()),
                }
            }
            runs
        });
        Self {
            parts,
            fixed,
            prefix,
            star_runs,
            case_insensitive,
        }
    }

    /// The names of the policy variables the pattern uses.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(name) => Some(name.as_str()),
            _ => None,
        })
    }

    pub fn matches(&self, value: &str, vars: &Vars) -> bool {
        let head = value.get(..self.prefix.len()).unwrap_or("");
        let prefix_ok = if self.case_insensitive {
            head.eq_ignore_ascii_case(&self.prefix)
        } else {
            head == self.prefix
        };
        if !prefix_ok {
            return false;
        }
        if let Some(runs) = &self.star_runs {
            return star_match(runs, value);
        }
        let resolved;
        let toks = match &self.fixed {
            Some(t) => t,
            None => {
                let mut t = Vec::new();
                for p in &self.parts {
                    match p {
                        Part::Lit(c) => t.push(Tok::Lit(*c)),
                        Part::Star => t.push(Tok::Star),
                        Part::One => t.push(Tok::One),
                        Part::Var(name) => match lookup(vars, name) {
                            Some(v) => t.extend(v.chars().map(Tok::Lit)),
                            None => return false,
                        },
                    }
                }
                resolved = t;
                &resolved
            }
        };
        if value.is_ascii() {
            glob(
                toks,
                value.as_bytes(),
                |b| char::from(*b),
                self.case_insensitive,
            )
        } else {
            let chars: Vec<char> = value.chars().collect();
            glob(toks, &chars, |c| *c, self.case_insensitive)
        }
    }
}

/// `runs` are the literals between `*`s: the first anchors the start, the last the end, the
/// others must appear in order (leftmost-first search is exact for star-only patterns).
fn star_match(runs: &[String], value: &str) -> bool {
    let [first, middle @ .., last] = runs else {
        return runs.first().is_some_and(|only| value == only);
    };
    if value.len() < first.len() + last.len()
        || !value.starts_with(first.as_str())
        || !value.ends_with(last.as_str())
    {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for run in middle {
        match rest.find(run.as_str()) {
            Some(i) => rest = &rest[i + run.len()..],
            None => return false,
        }
    }
    true
}

/// A variable's (first) value; condition keys and variable names are case-insensitive.
pub fn lookup<'v>(vars: &'v Vars, name: &str) -> Option<&'v str> {
    vars.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

/// Glob matching with backtracking to the last `*`: linear in practice, no recursion.
/// (No allocation; `text` is bytes for ASCII values — the usual ARNs and actions — else chars.)
fn glob<T>(toks: &[Tok], text: &[T], at: impl Fn(&T) -> char, ci: bool) -> bool {
    let (mut t, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < text.len() {
        match toks.get(t) {
            Some(Tok::Star) => {
                star = Some((t, s));
                t += 1;
            }
            Some(Tok::One) => {
                t += 1;
                s += 1;
            }
            Some(Tok::Lit(c)) if fold(*c, ci) == fold(at(&text[s]), ci) => {
                t += 1;
                s += 1;
            }
            _ => match star {
                Some((st, ss)) => {
                    t = st + 1;
                    s = ss + 1;
                    star = Some((st, ss + 1));
                }
                None => return false,
            },
        }
    }
    toks[t..].iter().all(|k| matches!(k, Tok::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, v: &str) -> bool {
        Pattern::new(p, false).matches(v, &Vars::new())
    }

    #[test]
    fn globs() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("kinesisvideo:Get*", "kinesisvideo:GetMedia"));
        assert!(!m("kinesisvideo:Get*", "kinesisvideo:PutMedia"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m(
            "arn:aws:kinesisvideo:*:*:stream/cam/*",
            "arn:aws:kinesisvideo:us-east-1:1:stream/cam/123"
        ));
        assert!(!m(
            "arn:aws:kinesisvideo:*:*:stream/cam/*",
            "arn:aws:kinesisvideo:us-east-1:1:stream/cam2/123"
        ));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c", "xxaxxbxxcxx"));
        assert!(!m("Stream", "stream"), "resources are case-sensitive");
        assert!(Pattern::new("kinesisvideo:putmedia", true)
            .matches("kinesisvideo:PutMedia", &Vars::new()));
    }

    #[test]
    fn variables() {
        let mut vars = Vars::new();
        vars.insert("credentials-iot:ThingName".into(), vec!["cam-1".into()]);
        let p = Pattern::new(
            "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*",
            false,
        );
        assert!(p.matches("arn:aws:kinesisvideo:us-east-1:1:stream/cam-1/5", &vars));
        assert!(!p.matches("arn:aws:kinesisvideo:us-east-1:1:stream/cam-2/5", &vars));
        assert!(
            !p.matches(
                "arn:aws:kinesisvideo:us-east-1:1:stream/cam-1/5",
                &Vars::new()
            ),
            "unresolved variable"
        );
        vars.insert("x".into(), vec!["a*".into()]);
        assert!(
            !Pattern::new("${x}", false).matches("abc", &vars),
            "a value is literal"
        );
        assert!(Pattern::new("${x}", false).matches("a*", &vars));
        assert!(Pattern::new("${*}", false).matches("*", &vars));
    }
}
