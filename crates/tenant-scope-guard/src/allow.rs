//! `// tenant-scope: allow(rule, ...) reason` comments: parsing them and applying them.
//!
//! A directive is a line comment, alone on its line, whose text starts with `tenant-scope:`. It
//! applies to the first line below it that is not itself a line comment (so several directives,
//! and ordinary comments, may be stacked above one line). It must name at least one allowable
//! rule and give a reason; otherwise it is reported and allows nothing.

use std::collections::BTreeSet;

use crate::rules::{Finding, Scanned};
use crate::{ALLOW_WITHOUT_REASON, ALLOWABLE, INVALID_ALLOW, UNUSED_ALLOW};

/// The marker that starts a directive, after `//` and optional spaces.
const MARKER: &str = "tenant-scope:";

/// One directive found in the source.
#[derive(Debug)]
pub(super) struct Directive {
    line: usize,
    column: usize,
    /// The line it applies to.
    target: usize,
    parsed: Result<Vec<&'static str>, Problem>,
}

#[derive(Debug)]
enum Problem {
    Invalid(String),
    NoReason,
}

/// Finds every directive in `source`.
pub(super) fn parse(source: &str) -> Vec<Directive> {
    let lines: Vec<&str> = source.lines().collect();
    let is_line_comment = |l: &str| l.trim_start().starts_with("//");
    let mut out = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let trimmed = raw.trim_start();
        let Some(after) = trimmed.strip_prefix("//") else {
            continue;
        };
        // Doc comments (`///`, `//!`) are documentation, never directives.
        if after.starts_with('/') || after.starts_with('!') {
            continue;
        }
        let Some(body) = after.trim_start().strip_prefix(MARKER) else {
            continue;
        };
        let mut target = i + 1;
        while target < lines.len() && is_line_comment(lines[target]) {
            target += 1;
        }
        out.push(Directive {
            line: i + 1,
            column: raw.chars().count() - trimmed.chars().count() + 1,
            target: target + 1,
            parsed: parse_body(body),
        });
    }
    out
}

fn parse_body(body: &str) -> Result<Vec<&'static str>, Problem> {
    let expected = "expected `// tenant-scope: allow(rule, ...) reason`";
    let Some(rest) = body.trim_start().strip_prefix("allow") else {
        return Err(Problem::Invalid(expected.to_owned()));
    };
    let Some(rest) = rest.trim_start().strip_prefix('(') else {
        return Err(Problem::Invalid(expected.to_owned()));
    };
    let Some((list, reason)) = rest.split_once(')') else {
        return Err(Problem::Invalid(format!("{expected}: missing `)`")));
    };
    let mut rules = Vec::new();
    for name in list.split(',').map(str::trim) {
        match ALLOWABLE.iter().find(|id| **id == name) {
            Some(id) => rules.push(*id),
            None if name.is_empty() => {
                return Err(Problem::Invalid(format!("{expected}: empty rule name")));
            }
            None => {
                return Err(Problem::Invalid(format!(
                    "unknown rule `{name}` in allow comment; allowable rules: {}",
                    ALLOWABLE.join(", ")
                )));
            }
        }
    }
    // The reason may be introduced by punctuation: `allow(raw-sql): reason`, `-- reason`.
    let reason = reason.trim_start_matches(|c: char| c.is_whitespace() || ":-—–".contains(c));
    if reason.trim().is_empty() {
        return Err(Problem::NoReason);
    }
    Ok(rules)
}

/// Drops the findings that a valid directive allows, and adds the findings about directives:
/// invalid, without a reason, or suppressing nothing. Directives inside code that was not scanned
/// (test code by default) are ignored.
pub(super) fn apply(scanned: Scanned, directives: Vec<Directive>) -> Vec<Finding> {
    let Scanned { findings, skipped } = scanned;
    let directives: Vec<Directive> = directives
        .into_iter()
        .filter(|d| !skipped.iter().any(|(a, b)| (*a..=*b).contains(&d.line)))
        .collect();
    let mut used: BTreeSet<(usize, &'static str)> = BTreeSet::new();
    let mut out = Vec::new();
    for finding in findings {
        let allowed_by = directives.iter().position(|d| {
            d.target == finding.line
                && matches!(&d.parsed, Ok(rules) if rules.contains(&finding.rule))
        });
        match allowed_by {
            Some(i) => {
                used.insert((i, finding.rule));
            }
            None => out.push(finding),
        }
    }
    for (i, d) in directives.iter().enumerate() {
        match &d.parsed {
            Err(Problem::Invalid(message)) => out.push(Finding {
                line: d.line,
                column: d.column,
                rule: INVALID_ALLOW,
                message: message.clone(),
            }),
            Err(Problem::NoReason) => out.push(Finding {
                line: d.line,
                column: d.column,
                rule: ALLOW_WITHOUT_REASON,
                message: "an allow comment needs a reason after the rule list, e.g. \
                          `// tenant-scope: allow(raw-sql) nightly vacuum runs as owner`; \
                          without one it allows nothing"
                    .to_owned(),
            }),
            Ok(rules) => {
                for rule in rules {
                    if !used.contains(&(i, *rule)) {
                        out.push(Finding {
                            line: d.line,
                            column: d.column,
                            rule: UNUSED_ALLOW,
                            message: format!(
                                "`allow({rule})` suppresses nothing on line {}: remove it, or \
                                 put it directly above the line that is reported",
                                d.target
                            ),
                        });
                    }
                }
            }
        }
    }
    out
}
