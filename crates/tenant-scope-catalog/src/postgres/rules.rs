//! The one rule set over [`Security`]: what `tenant-scope check` reports and what the self-check
//! refuses on, decided in one place.

use std::fmt;

use super::security::{Policy, PolicyCommand, RoleInfo, Security, TableSecurity};
use crate::contract::{POLICY_NAME, POLICY_PREDICATE_AS_STORED, TENANT_SETTING};

/// Something about the role or the schema that would let a query get past row level security.
/// `TenantDb::connect` refuses to serve when it finds one for the role it is connected as, unless
/// it was accepted (`TenantDbOptions::accept_risk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Risk {
    /// The role is a superuser, or may `SET ROLE` to one: no policy applies to a superuser.
    ///
    /// It implies the role's other risks ([`BypassRls`](Risk::BypassRls),
    /// [`OwnsTenantTable`](Risk::OwnsTenantTable),
    /// [`DangerousPrivilege`](Risk::DangerousPrivilege)), which are then not reported
    /// separately: accepting it accepts them.
    Superuser,
    /// The role has `BYPASSRLS`, or may `SET ROLE` to a role that has it.
    BypassRls,
    /// The role owns a tenant-owned table, or is a member of the role that does: an owner can
    /// disable row level security or drop the policy.
    ///
    /// An owner holds every privilege on its table, so
    /// [`DangerousPrivilege`](Risk::DangerousPrivilege) is not reported separately for a table
    /// the role owns.
    OwnsTenantTable,
    /// A tenant-owned table does not have row level security enabled and forced with the
    /// `tenant_isolation` policy exactly as `tenant_scope_schema::rls` creates it, or has another
    /// permissive policy that applies to the role (permissive policies are ORed: one `USING (true)`
    /// opens every row).
    RlsNotEnforced,
    /// A view over tenant-owned tables runs with its owner's rights (no `security_invoker`), or a
    /// materialized view holds their rows, and the role may read it: either reads every tenant's
    /// rows whatever the setting.
    ViewBypassesRls,
    /// The role holds `TRUNCATE`, `REFERENCES` (also on some columns only) or `TRIGGER` on a
    /// tenant-owned table. Row level security does not apply to `TRUNCATE` (it empties every
    /// tenant's rows); a foreign key or a trigger of the role's own can read rows the policy hides.
    DangerousPrivilege,
}

impl Risk {
    /// Every risk.
    pub const ALL: [Risk; 6] = [
        Risk::Superuser,
        Risk::BypassRls,
        Risk::OwnsTenantTable,
        Risk::RlsNotEnforced,
        Risk::ViewBypassesRls,
        Risk::DangerousPrivilege,
    ];

    /// What to do about it, in one line.
    pub fn hint(self) -> &'static str {
        match self {
            Risk::Superuser | Risk::BypassRls | Risk::OwnsTenantTable => {
                "connect as the application role (docs/postgres.md), not as an owner or superuser"
            }
            Risk::RlsNotEnforced => "apply tenant_scope_schema::rls::enable_rls to the table",
            Risk::ViewBypassesRls => "recreate the view WITH (security_invoker = true)",
            Risk::DangerousPrivilege => "REVOKE the privilege from the application role",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Risk::Superuser => "superuser",
            Risk::BypassRls => "bypass-rls",
            Risk::OwnsTenantTable => "owns-tenant-table",
            Risk::RlsNotEnforced => "rls-not-enforced",
            Risk::ViewBypassesRls => "view-bypasses-rls",
            Risk::DangerousPrivilege => "dangerous-privilege",
        })
    }
}

/// A rule of the set; [`Rule::code`] is its finding code in `tenant-scope check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The role is, or may become, a superuser.
    RoleSuperuser,
    /// The role has, or may get, `BYPASSRLS`.
    RoleBypassRls,
    /// The role owns (or is a member of the owner of) a tenant-owned table, or another table or
    /// view.
    RoleOwnsTable,
    /// The role holds `TRUNCATE`, `REFERENCES` or `TRIGGER` on a tenant-owned table.
    RoleDangerousPrivilege,
    /// Row level security is not enabled on a tenant-owned table.
    RlsNotEnabled,
    /// Row level security is not forced on a tenant-owned table (its owner bypasses it).
    RlsNotForced,
    /// A tenant-owned table lacks the `tenant_isolation` policy as the library creates it.
    RlsNoPolicy,
    /// A tenant-owned table has other permissive policies, ORed with `tenant_isolation`.
    RlsPermissivePolicy,
    /// A policy that admits writes has no `WITH CHECK`.
    PolicyWithoutWithCheck,
    /// A view over tenant-owned tables without `security_invoker`.
    ViewWithoutSecurityInvoker,
    /// A materialized view over tenant-owned tables.
    MaterializedView,
}

impl Rule {
    /// The stable finding code of `tenant-scope check`.
    pub fn code(self) -> &'static str {
        match self {
            Rule::RoleSuperuser | Rule::RoleBypassRls => "app-role-bypasses-rls",
            Rule::RoleOwnsTable => "app-role-owns-table",
            Rule::RoleDangerousPrivilege => "app-role-dangerous-privilege",
            Rule::RlsNotEnabled => "rls-not-enabled",
            Rule::RlsNotForced => "rls-not-forced",
            Rule::RlsNoPolicy => "rls-no-policy",
            Rule::RlsPermissivePolicy => "rls-permissive-policy",
            Rule::PolicyWithoutWithCheck => "policy-without-with-check",
            Rule::ViewWithoutSecurityInvoker => "view-without-security-invoker",
            Rule::MaterializedView => "materialized-view-over-tenant-data",
        }
    }

    /// Every finding code of the rule set, in documentation order.
    pub const CODES: &'static [&'static str] = &[
        "rls-not-enabled",
        "rls-not-forced",
        "rls-no-policy",
        "rls-permissive-policy",
        "policy-without-with-check",
        "app-role-owns-table",
        "app-role-dangerous-privilege",
        "app-role-bypasses-rls",
        "view-without-security-invoker",
        "materialized-view-over-tenant-data",
    ];
}

/// One thing the rules found. Its text names roles, tables, views and policies, never an
/// expression or a value (a policy's expression can hold literals).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// `Some` if it is a risk to the role judged: the self-check refuses to serve on it. `None` for
    /// hygiene, or for what no role judged can reach (`tenant-scope check` reports both).
    pub risk: Option<Risk>,
    /// The table or view it is about (`regclass`); `None` for the role itself.
    pub object: Option<String>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it, in one line of SQL or advice.
    pub fix: String,
    /// For the three "lacks" rules: what the table lacks, so that the self-check says it in one
    /// line per table.
    lacks: Option<String>,
}

impl Finding {
    fn new(
        rule: Rule,
        risk: Option<Risk>,
        object: Option<&str>,
        message: String,
        fix: String,
    ) -> Self {
        Self {
            rule,
            risk,
            object: object.map(str::to_owned),
            message,
            fix,
            lacks: None,
        }
    }

    fn lacking(table: &str, rule: Rule, what: String, fix: String) -> Self {
        Self {
            lacks: Some(what.clone()),
            ..Self::new(
                rule,
                Some(Risk::RlsNotEnforced),
                Some(table),
                format!("tenant table {table} lacks {what}"),
                fix,
            )
        }
    }
}

impl Security {
    /// Every finding of the rule set, in a fixed order: the role, then each tenant-owned table
    /// (ownership, row level security, other policies, privileges), then each view, then what
    /// else the role owns.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let superuser = match &self.role {
            Some(role) => role_findings(role, &mut out),
            None => false,
        };
        for table in &self.tables {
            table_findings(table, self.role.as_ref(), superuser, &mut out);
        }
        for view in &self.views {
            let risk = (view.role_can_use).then_some(Risk::ViewBypassesRls);
            let reads = view.reads.join(", ");
            if view.materialized {
                out.push(Finding::new(
                    Rule::MaterializedView,
                    risk,
                    Some(&view.name),
                    format!(
                        "materialized view {} holds rows of tenant tables ({reads}) outside row level security",
                        view.name
                    ),
                    format!(
                        "drop it, or REVOKE it from every role tenant-scope serves as (REVOKE ALL ON {} FROM ..)",
                        view.name
                    ),
                ));
            } else if !view.security_invoker {
                out.push(Finding::new(
                    Rule::ViewWithoutSecurityInvoker,
                    risk,
                    Some(&view.name),
                    format!(
                        "view {} reads tenant tables ({reads}) with its owner's rights (no security_invoker)",
                        view.name
                    ),
                    format!(
                        "ALTER VIEW {} SET (security_invoker = true) (PostgreSQL 15+)",
                        view.name
                    ),
                ));
            }
        }
        if let Some(role) = self.role.as_ref().filter(|_| !superuser) {
            for relation in &self.owned {
                if self.tables.iter().any(|t| &t.name == relation) {
                    continue; // reported with its table, as a risk
                }
                out.push(Finding::new(
                    Rule::RoleOwnsTable,
                    None,
                    Some(relation),
                    format!(
                        "role \"{}\" owns {relation}, or is a member of its owner: the role tenant-scope serves as should own nothing",
                        role.name
                    ),
                    format!(
                        "ALTER TABLE {relation} OWNER TO <the schema's owner role>, and grant \"{}\" only what it needs",
                        role.name
                    ),
                ));
            }
        }
        out
    }

    /// The self-check's view of [`Security::findings`]: each finding that is a risk to the role,
    /// as `(risk, message)`, with what one table lacks (`ENABLE`, `FORCE`, the policy) said in one
    /// message.
    pub fn refusals(&self) -> Vec<(Risk, String)> {
        /// A line of the refusal: a finding's message, or what one table lacks.
        enum Line {
            Message(Risk, String),
            Lacks(String, Vec<String>),
        }
        let mut lines: Vec<Line> = Vec::new();
        for finding in self.findings() {
            let Some(risk) = finding.risk else {
                continue;
            };
            match (finding.lacks, finding.object) {
                (Some(what), Some(table)) => match lines.last_mut() {
                    Some(Line::Lacks(last, lacks)) if *last == table => lacks.push(what),
                    _ => lines.push(Line::Lacks(table, vec![what])),
                },
                _ => lines.push(Line::Message(risk, finding.message)),
            }
        }
        lines
            .into_iter()
            .map(|line| match line {
                Line::Message(risk, message) => (risk, message),
                Line::Lacks(table, lacks) => (
                    Risk::RlsNotEnforced,
                    format!("tenant table {table} lacks {}", lacks.join(", ")),
                ),
            })
            .collect()
    }
}

/// The role's own findings; returns whether it is, or may become, a superuser: then it is reported
/// as that only, since a superuser bypasses row level security, ownership and privileges alike.
fn role_findings(role: &RoleInfo, out: &mut Vec<Finding>) -> bool {
    let name = &role.name;
    let fix = format!("ALTER ROLE \"{name}\" NOSUPERUSER NOBYPASSRLS");
    if role.superuser {
        out.push(Finding::new(
            Rule::RoleSuperuser,
            Some(Risk::Superuser),
            None,
            format!(
                "role \"{name}\" is a superuser: row level security, ownership and privileges do not apply to it"
            ),
            fix,
        ));
        return true;
    }
    if !role.superuser_roles.is_empty() {
        let roles = role.superuser_roles.join(", ");
        out.push(Finding::new(
            Rule::RoleSuperuser,
            Some(Risk::Superuser),
            None,
            format!(
                "role \"{name}\" is a member of superuser role(s) {roles}, and may SET ROLE to them"
            ),
            format!("REVOKE {roles} FROM \"{name}\""),
        ));
        return true;
    }
    if role.bypass_rls {
        out.push(Finding::new(
            Rule::RoleBypassRls,
            Some(Risk::BypassRls),
            None,
            format!("role \"{name}\" has BYPASSRLS: row level security does not apply to it"),
            fix,
        ));
    } else if !role.bypass_rls_roles.is_empty() {
        let roles = role.bypass_rls_roles.join(", ");
        out.push(Finding::new(
            Rule::RoleBypassRls,
            Some(Risk::BypassRls),
            None,
            format!(
                "role \"{name}\" is a member of BYPASSRLS role(s) {roles}, and may SET ROLE to them"
            ),
            format!("REVOKE {roles} FROM \"{name}\""),
        ));
    }
    false
}

/// How `policy` differs from `tenant_isolation` as the library creates it, if it does.
fn policy_differs(policy: &Policy) -> Option<&'static str> {
    let expected = Some(POLICY_PREDICATE_AS_STORED);
    if policy.command != PolicyCommand::All {
        Some("it is not FOR ALL")
    } else if !policy.permissive {
        Some("it is restrictive")
    } else if !policy.public || !policy.roles.is_empty() {
        Some("it is not TO PUBLIC")
    } else if policy.using.as_deref() != expected {
        Some("its USING expression differs")
    } else if policy.with_check.is_none() {
        Some("it has no WITH CHECK")
    } else if policy.with_check.as_deref() != expected {
        Some("its WITH CHECK expression differs")
    } else {
        None
    }
}

fn table_findings(
    table: &TableSecurity,
    role: Option<&RoleInfo>,
    superuser: bool,
    out: &mut Vec<Finding>,
) {
    let name = table.name.as_str();
    let owns = role.is_some() && table.role_owns && !superuser;
    if owns {
        out.push(Finding::new(
            Rule::RoleOwnsTable,
            Some(Risk::OwnsTenantTable),
            Some(name),
            format!(
                "tenant table {name} is owned by \"{}\", which is the role or one of its roles: an owner can disable row level security and drop the policy",
                table.owner
            ),
            format!(
                "ALTER TABLE {name} OWNER TO <the schema's owner role>, and grant the application role only SELECT, INSERT, UPDATE, DELETE"
            ),
        ));
    }
    if !table.rls_enabled {
        out.push(Finding::lacking(
            name,
            Rule::RlsNotEnabled,
            "ENABLE ROW LEVEL SECURITY".to_owned(),
            format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY"),
        ));
    }
    if !table.rls_forced {
        out.push(Finding::lacking(
            name,
            Rule::RlsNotForced,
            "FORCE ROW LEVEL SECURITY".to_owned(),
            format!("ALTER TABLE {name} FORCE ROW LEVEL SECURITY"),
        ));
    }
    let canonical = table.policies.iter().find(|p| p.name == POLICY_NAME);
    let differs = match canonical {
        None => Some("there is none"),
        Some(policy) => policy_differs(policy),
    };
    if let Some(differs) = differs {
        out.push(Finding::lacking(
            name,
            Rule::RlsNoPolicy,
            format!(
                "the policy \"{POLICY_NAME}\" (FOR ALL, TO PUBLIC, USING and WITH CHECK on {TENANT_SETTING}; {differs})"
            ),
            format!(
                "DROP POLICY IF EXISTS {POLICY_NAME} ON {name}, then tenant_scope_schema::rls::enable_rls_statements({name:?})"
            ),
        ));
    }
    let extra: Vec<&Policy> = table
        .policies
        .iter()
        .filter(|p| p.permissive && p.name != POLICY_NAME)
        .collect();
    let (applying, other): (Vec<&Policy>, Vec<&Policy>) =
        extra.into_iter().partition(|p| p.applies_to_role);
    let names = |policies: &[&Policy]| {
        policies
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fix = "make it AS RESTRICTIVE, or drop it: permissive policies are ORed".to_owned();
    if !applying.is_empty() {
        out.push(Finding::new(
            Rule::RlsPermissivePolicy,
            Some(Risk::RlsNotEnforced),
            Some(name),
            format!(
                "tenant table {name} has other permissive policies that apply to the role ({}); they are ORed with \"{POLICY_NAME}\"",
                names(&applying)
            ),
            fix.clone(),
        ));
    }
    if !other.is_empty() {
        out.push(Finding::new(
            Rule::RlsPermissivePolicy,
            None,
            Some(name),
            format!(
                "tenant table {name} has other permissive policies ({}); for the roles they apply to they are ORed with \"{POLICY_NAME}\"",
                names(&other)
            ),
            fix,
        ));
    }
    for policy in &table.policies {
        if policy.name != POLICY_NAME && policy.command.writes() && policy.with_check.is_none() {
            out.push(Finding::new(
                Rule::PolicyWithoutWithCheck,
                None,
                Some(name),
                format!(
                    "policy `{}` on tenant table {name} admits writes ({}) but has no WITH CHECK: what a session may write is not stated",
                    policy.name,
                    policy.command.sql()
                ),
                format!(
                    "ALTER POLICY {} ON {name} WITH CHECK (<its USING expression>)",
                    policy.name
                ),
            ));
        }
    }
    // An owner holds every privilege (reported as ownership); so does a superuser.
    if let Some(role) = role.filter(|_| !owns && !superuser && !table.role_privileges.is_empty()) {
        let privileges = table.role_privileges.join(", ");
        out.push(Finding::new(
            Rule::RoleDangerousPrivilege,
            Some(Risk::DangerousPrivilege),
            Some(name),
            format!(
                "role \"{}\" has {privileges} on tenant table {name}: TRUNCATE empties every tenant's rows (row level security does not apply to it), REFERENCES and TRIGGER reach rows the policy hides",
                role.name
            ),
            format!("REVOKE {privileges} ON {name} FROM \"{}\"", role.name),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::ViewSecurity;

    fn canonical() -> Policy {
        Policy {
            name: POLICY_NAME.to_owned(),
            command: PolicyCommand::All,
            permissive: true,
            public: true,
            roles: Vec::new(),
            applies_to_role: true,
            using: Some(POLICY_PREDICATE_AS_STORED.to_owned()),
            with_check: Some(POLICY_PREDICATE_AS_STORED.to_owned()),
        }
    }

    fn table(name: &str) -> TableSecurity {
        TableSecurity {
            name: name.to_owned(),
            owner: "owner".to_owned(),
            rls_enabled: true,
            rls_forced: true,
            policies: vec![canonical()],
            role_owns: false,
            role_privileges: Vec::new(),
        }
    }

    fn role(name: &str) -> RoleInfo {
        RoleInfo {
            name: name.to_owned(),
            superuser: false,
            bypass_rls: false,
            superuser_roles: Vec::new(),
            bypass_rls_roles: Vec::new(),
        }
    }

    fn security(role: Option<RoleInfo>, tables: Vec<TableSecurity>) -> Security {
        Security {
            role,
            tables,
            views: Vec::new(),
            owned: Vec::new(),
        }
    }

    #[test]
    fn risks_have_stable_names() {
        let names: Vec<String> = Risk::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "superuser",
                "bypass-rls",
                "owns-tenant-table",
                "rls-not-enforced",
                "view-bypasses-rls",
                "dangerous-privilege"
            ]
        );
    }

    #[test]
    fn the_library_s_setup_has_no_finding() {
        let s = security(Some(role("app")), vec![table("tasks")]);
        assert_eq!(s.findings(), Vec::new());
    }

    #[test]
    fn what_a_table_lacks_is_one_refusal_and_three_codes() {
        let mut t = table("tasks");
        t.rls_enabled = false;
        t.rls_forced = false;
        t.policies.clear();
        let s = security(Some(role("app")), vec![t]);
        let codes: Vec<&str> = s.findings().iter().map(|f| f.rule.code()).collect();
        assert_eq!(
            codes,
            ["rls-not-enabled", "rls-not-forced", "rls-no-policy"]
        );
        let refusals = s.refusals();
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].0, Risk::RlsNotEnforced);
        assert!(
            refusals[0]
                .1
                .starts_with("tenant table tasks lacks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY, the policy \"tenant_isolation\""),
            "{}",
            refusals[0].1
        );
    }

    #[test]
    fn every_difference_from_the_policy_is_found() {
        let changes: [fn(&mut Policy); 7] = [
            |p| p.command = PolicyCommand::Select,
            |p| p.permissive = false,
            |p| p.public = false,
            |p| p.roles = vec!["app".into()],
            |p| p.using = Some("true".into()),
            |p| p.with_check = None,
            |p| p.with_check = Some("true".into()),
        ];
        for change in changes {
            let mut policy = canonical();
            change(&mut policy);
            assert!(policy_differs(&policy).is_some(), "{policy:?}");
        }
        assert_eq!(policy_differs(&canonical()), None);
    }

    #[test]
    fn only_policies_that_apply_to_the_role_are_risks() {
        let mut t = table("tasks");
        let mut open = canonical();
        open.name = "open".into();
        let mut others = open.clone();
        others.name = "others".into();
        others.applies_to_role = false;
        t.policies.extend([open, others]);
        let s = security(Some(role("app")), vec![t]);
        let refusals = s.refusals();
        assert_eq!(refusals.len(), 1);
        assert!(refusals[0].1.contains("(open)"), "{}", refusals[0].1);
        let lint: Vec<_> = s
            .findings()
            .into_iter()
            .filter(|f| f.risk.is_none())
            .collect();
        assert_eq!(lint.len(), 1);
        assert!(lint[0].message.contains("(others)"), "{}", lint[0].message);
    }

    #[test]
    fn a_superuser_is_one_finding() {
        let mut r = role("root");
        r.superuser = true;
        r.bypass_rls = true;
        let mut t = table("tasks");
        t.role_owns = true;
        t.role_privileges = vec!["TRUNCATE".into()];
        let s = security(Some(r), vec![t]);
        let rules: Vec<Rule> = s.findings().iter().map(|f| f.rule).collect();
        assert_eq!(rules, [Rule::RoleSuperuser]);
    }

    #[test]
    fn views_are_risks_only_if_the_role_may_use_them() {
        let view = |name: &str, usable: bool, materialized: bool| ViewSecurity {
            name: name.to_owned(),
            materialized,
            security_invoker: false,
            reads: vec!["tasks".into()],
            role_can_use: usable,
        };
        let mut s = security(Some(role("app")), vec![table("tasks")]);
        s.views = vec![
            view("a", true, false),
            view("b", false, false),
            view("c", true, true),
        ];
        let findings = s.findings();
        assert_eq!(findings.len(), 3);
        let risky: Vec<_> = s.refusals().into_iter().map(|(r, _)| r).collect();
        assert_eq!(risky, [Risk::ViewBypassesRls, Risk::ViewBypassesRls]);
    }

    #[test]
    fn messages_never_show_an_expression() {
        let mut t = table("tasks");
        t.policies[0].using = Some("(name = 'secret-7f3a'::text)".into());
        let mut leaky = canonical();
        leaky.name = "open".into();
        leaky.using = Some("(name = 'secret-7f3a'::text)".into());
        leaky.with_check = None;
        t.policies.push(leaky);
        let s = security(Some(role("app")), vec![t]);
        for finding in s.findings() {
            assert!(!finding.message.contains("secret"), "{}", finding.message);
            assert!(!finding.fix.contains("secret"), "{}", finding.fix);
        }
    }
}
