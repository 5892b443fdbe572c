//! `ssl.principal.mapping.rules`: Kafka's `SslPrincipalMapper`. The value is a list of
//! `RULE:pattern/replacement/[LU]` and `DEFAULT`, separated by commas (blanks and newlines
//! around them ignored); the first rule whose pattern matches the *whole* DN gives the name,
//! `DEFAULT` gives the DN itself, and no match at all fails the connection.
//!
//! Fidelity notes. Splitting and rule syntax use Kafka's own two regular expressions, walked
//! with Java's `Matcher.find` stepping (an empty match moves the search one character on).
//! The replacement follows Java's `replaceAll` over the DN with Kafka's treatment of
//! back-references: `$n` beyond the pattern's group count is literal text, `$12` falls back
//! to `$1` followed by `2` when there are fewer than 12 groups, `\x` is a literal `x`.
//! Patterns are compiled by the `regex` crate, whose syntax is Java's for everything rules
//! commonly use; look-around and back-references inside patterns are refused at config time.

use std::fmt;
use std::sync::OnceLock;

use regex::{Captures, Regex};

/// A rule list that could not be parsed (Kafka throws `IllegalArgumentException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRule(String);

/// No rule matched a DN (Kafka's `NoMatchingRule`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("No rules apply to {dn}, rules {rules}")]
pub struct NoMatchingRule {
    dn: String,
    rules: String,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        source: String,
        /// For `replaceAll`: the pattern as written.
        pattern: Regex,
        /// For `matches()`: the pattern anchored at both ends.
        whole: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Parsed `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

impl Default for SslPrincipalMapper {
    /// Kafka's default, `DEFAULT`.
    fn default() -> Self {
        SslPrincipalMapper {
            rules: vec![Rule::Default],
        }
    }
}

const RULE_PATTERN: &str = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)";

fn splitter() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        #[allow(clippy::unwrap_used)] // a constant pattern, exercised by every test below
        Regex::new(&format!(r"\s*({RULE_PATTERN})\s*(,\s*|$)")).unwrap()
    })
}

fn parser() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        #[allow(clippy::unwrap_used)] // a constant pattern, exercised by every test below
        Regex::new(&format!(r"\A(?:{RULE_PATTERN})")).unwrap()
    })
}

/// Java's `Matcher.find()` loop: every match from `start`, an empty match stepping one char on.
fn java_find_all<'t>(re: &Regex, text: &'t str) -> Vec<Captures<'t>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos <= text.len() {
        let Some(caps) = re.captures_at(text, pos) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        pos = if m.start() == m.end() {
            match text[m.end()..].chars().next() {
                Some(c) => m.end() + c.len_utf8(),
                None => text.len() + 1,
            }
        } else {
            m.end()
        };
        out.push(caps);
    }
    out
}

impl SslPrincipalMapper {
    /// Parses a rule list (`None` or an unset key means `DEFAULT`).
    pub fn from_rules(rules: Option<&str>) -> Result<Self, InvalidRule> {
        let text = rules.unwrap_or("DEFAULT").trim();
        let mut parsed = Vec::new();
        for caps in java_find_all(splitter(), text) {
            let rule = caps.get(1).map_or("", |m| m.as_str());
            let m = parser()
                .captures(rule)
                .ok_or_else(|| InvalidRule(format!("Invalid rule: {rule}")))?;
            let end = m.get(0).map_or(0, |m| m.end());
            if end != rule.len() {
                return Err(InvalidRule(format!(
                    "Invalid rule: `{rule}`, unmatched substring: `{}`",
                    &rule[end..]
                )));
            }
            if m.get(1).is_some() {
                parsed.push(Rule::Default);
            } else if let Some(source) = m.get(2) {
                let source = source.as_str().to_string();
                let replacement = m.get(4).map_or("", |r| r.as_str()).to_string();
                let case = match m.get(6).map(|c| c.as_str()) {
                    Some("L") => Case::Lower,
                    Some("U") => Case::Upper,
                    _ => Case::Keep,
                };
                let compile = |p: &str| {
                    Regex::new(p).map_err(|e| InvalidRule(format!("Invalid rule: `{rule}`: {e}")))
                };
                parsed.push(Rule::Replace {
                    pattern: compile(&source)?,
                    whole: compile(&format!(r"\A(?:{source})\z"))?,
                    source,
                    replacement,
                    case,
                });
            }
            // Anything else is an empty rule, which Kafka ignores.
        }
        Ok(SslPrincipalMapper { rules: parsed })
    }

    /// The principal name for `dn`.
    pub fn name(&self, dn: &str) -> Result<String, NoMatchingRule> {
        for rule in &self.rules {
            if let Some(name) = rule.apply(dn) {
                return Ok(name);
            }
        }
        Err(NoMatchingRule {
            dn: dn.to_string(),
            rules: self.rules_display(),
        })
    }

    fn rules_display(&self) -> String {
        let shown: Vec<String> = self.rules.iter().map(|r| r.to_string()).collect();
        format!("[{}]", shown.join(", "))
    }
}

impl fmt::Display for SslPrincipalMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SslPrincipalMapper(rules = {})", self.rules_display())
    }
}

impl Rule {
    fn apply(&self, dn: &str) -> Option<String> {
        let Rule::Replace {
            pattern,
            whole,
            replacement,
            case,
            ..
        } = self
        else {
            return Some(dn.to_string());
        };
        if !whole.is_match(dn) {
            return None;
        }
        let groups = pattern.captures_len() - 1;
        let mut out = String::with_capacity(dn.len());
        let mut last = 0;
        for caps in java_find_all(pattern, dn) {
            let Some(m) = caps.get(0) else { continue };
            out.push_str(&dn[last..m.start()]);
            expand(&caps, replacement, groups, &mut out);
            last = m.end();
        }
        out.push_str(&dn[last..]);
        Some(match case {
            Case::Keep => out,
            Case::Lower => out.to_lowercase(),
            Case::Upper => out.to_uppercase(),
        })
    }
}

/// Java's `appendReplacement` after Kafka's `escapeLiteralBackReferences`.
fn expand(caps: &Captures<'_>, replacement: &str, groups: usize, out: &mut String) {
    let chars: Vec<char> = replacement.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if let Some(c) = chars.get(i + 1) {
                    out.push(*c);
                }
                i += 2;
            }
            '$' => {
                let first = chars.get(i + 1).and_then(|c| c.to_digit(10));
                match first {
                    Some(d) if d == 0 || (d as usize) <= groups => {
                        let mut n = d as usize;
                        i += 2;
                        while let Some(next) = chars.get(i).and_then(|c| c.to_digit(10)) {
                            let candidate = n * 10 + next as usize;
                            if candidate > groups {
                                break;
                            }
                            n = candidate;
                            i += 1;
                        }
                        if let Some(g) = caps.get(n) {
                            out.push_str(g.as_str());
                        }
                    }
                    _ if chars.get(i + 1) == Some(&'{') => {
                        let close = chars[i + 2..].iter().position(|c| *c == '}');
                        match close {
                            Some(len) => {
                                let name: String = chars[i + 2..i + 2 + len].iter().collect();
                                if let Some(g) = caps.name(&name) {
                                    out.push_str(g.as_str());
                                }
                                i += 3 + len;
                            }
                            None => {
                                out.push('$');
                                i += 1;
                            }
                        }
                    }
                    // A reference past the last group is literal text (Kafka escapes it).
                    _ => {
                        out.push('$');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Default => f.write_str("DEFAULT"),
            Rule::Replace {
                source,
                replacement,
                case,
                ..
            } => {
                write!(f, "RULE:{source}/{replacement}")?;
                match case {
                    Case::Lower => f.write_str("/L"),
                    Case::Upper => f.write_str("/U"),
                    Case::Keep => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper(rules: &str) -> SslPrincipalMapper {
        SslPrincipalMapper::from_rules(Some(rules)).unwrap()
    }

    // The cases of Kafka's SslPrincipalMapperTest and its documentation.
    #[test]
    fn valid_rules() {
        for r in [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
            "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
        ] {
            SslPrincipalMapper::from_rules(Some(r)).unwrap_or_else(|e| panic!("{r}: {e}"));
        }
    }

    #[test]
    fn invalid_rules() {
        for r in [
            "default",
            "DEFAUL",
            "DEFAULT/L",
            "DEFAULT/U",
            "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
            "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        ] {
            assert!(SslPrincipalMapper::from_rules(Some(r)).is_err(), "{r}");
        }
    }

    #[test]
    fn maps_like_kafka() {
        let m = mapper(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, \
             RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT",
        );
        assert_eq!(
            m.name("CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(),
            "duke"
        );
        assert_eq!(
            m.name("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US").unwrap(),
            "duke@sme"
        );
        assert_eq!(m.name("cn=duke,ou=sme,dc=mycp,dc=com").unwrap(), "DUKE@SME");
        assert_eq!(
            m.name("cN=duke,OU=JavaSoft,O=Sun Microsystems").unwrap(),
            "DUKE"
        );
        assert_eq!(
            m.name("OU=JavaSoft,O=Sun Microsystems,C=US").unwrap(),
            "OU=JavaSoft,O=Sun Microsystems,C=US"
        );
    }

    #[test]
    fn comma_with_whitespace() {
        let m = mapper(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT");
        assert_eq!(
            m.name(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz").unwrap(),
            r"Tkac\, Adam"
        );
    }

    #[test]
    fn no_rule_applies() {
        let m = mapper("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/");
        let e = m.name("CN=x,OU=Other").unwrap_err();
        assert_eq!(
            e.to_string(),
            "No rules apply to CN=x,OU=Other, rules [RULE:^CN=(.*?),OU=ServiceUsers.*$/$1]"
        );
        assert!(mapper("").name("CN=x").is_err());
    }

    #[test]
    fn back_references_beyond_the_groups_are_literal() {
        assert_eq!(
            mapper("RULE:^CN=(.*),O=(.*)$/$1@$3/")
                .name("CN=a,O=b")
                .unwrap(),
            "a@$3"
        );
        assert_eq!(
            mapper("RULE:^CN=(.*),O=(.*)$/$12/")
                .name("CN=a,O=b")
                .unwrap(),
            "a2"
        );
        assert_eq!(
            mapper("RULE:^CN=(.*),O=(.*)$/$0!/")
                .name("CN=a,O=b")
                .unwrap(),
            "CN=a,O=b!"
        );
        assert_eq!(
            mapper(r"RULE:^CN=(?P<u>[^,]*).*$/${u}\$/")
                .name("CN=a,O=b")
                .unwrap(),
            "a$"
        );
    }

    fn split(expected: &str, rules: &str) {
        assert_eq!(
            mapper(rules).to_string(),
            format!("SslPrincipalMapper(rules = {expected})"),
            "{rules:?}"
        );
    }

    #[test]
    fn rules_splitting() {
        split("[]", "");
        split("[DEFAULT]", "DEFAULT");
        split("[RULE:/]", "RULE://");
        split("[RULE:/.*]", "RULE:/.*/");
        split("[RULE:/.*/L]", "RULE:/.*/L");
        split("[RULE:/, DEFAULT]", "RULE://,DEFAULT");
        split("[RULE:/, DEFAULT]", "  RULE:// ,  DEFAULT  ");
        split(
            "[RULE:   /     , DEFAULT]",
            "  RULE:   /     / ,  DEFAULT  ",
        );
        split(
            "[RULE:  /     /U, DEFAULT]",
            "  RULE:  /     /U   ,DEFAULT  ",
        );
        split(
            "[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]",
            "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ",
        );
        split("[]", ",   , , ,      , , ,   ");
        split("[RULE:/, DEFAULT]", ",,RULE://,,,DEFAULT,,");
        split(
            "[RULE: /   , DEFAULT]",
            ",  , RULE: /   /    ,,,   DEFAULT, ,   ",
        );
        split(
            "[RULE:   /  /U, DEFAULT]",
            "     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,",
        );
        split(r"[RULE:\/\\\(\)\n\t/\/\/]", r"RULE:\/\\\(\)\n\t/\/\//");
        split(
            r"[RULE:\**\/+/*/L, RULE:\/*\**/**]",
            r"RULE:\**\/+/*/L,RULE:\/*\**/**/",
        );
        split(
            r"[RULE:,RULE:,/,RULE:,\//U, RULE:,/RULE:,, RULE:,RULE:,/L,RULE:,/L, RULE:, DEFAULT, /DEFAULT, DEFAULT]",
            r"RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT",
        );
    }

    #[test]
    fn newlines_separate_like_blanks() {
        let m = mapper("RULE:^CN=([^,]*),OU=svc.*$/$1/L,\n  DEFAULT");
        assert_eq!(m.name("CN=Bob,OU=svc,O=x").unwrap(), "bob");
        assert_eq!(m.name("CN=Bob,OU=x").unwrap(), "CN=Bob,OU=x");
    }
}
