//! `vigil plugin new NAME --kind KIND`: a plugin crate that builds to Wasm
//! and passes its generated test as it stands.

use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// Why a scaffold could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not a valid plugin name.
    #[error(
        "`{0}` is not a valid plugin name: use lowercase letters, digits and dashes, starting with a letter"
    )]
    InvalidName(String),
    /// The kind is unknown.
    #[error(
        "unknown plugin kind `{0}`; expected scorer, trigger, condition, action, playbook or ruleset"
    )]
    UnknownKind(String),
    /// The target directory exists.
    #[error("{0} already exists; choose another name or directory")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("could not write {path}: {source}")]
    Io {
        /// What was being written.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The six plugin kinds, as named on the command line.
pub const KINDS: &[&str] = &[
    "scorer",
    "trigger",
    "condition",
    "action",
    "playbook",
    "ruleset",
];

/// Writes a new plugin crate called `name` of `kind` into `parent/name`,
/// depending on the SDK at `sdk`.
pub fn scaffold(
    parent: &Path,
    name: &str,
    kind: &str,
    sdk: &Path,
) -> Result<PathBuf, ScaffoldError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(ScaffoldError::InvalidName(name.to_string()));
    }
    let source = match kind {
        "scorer" => SCORER,
        "trigger" => TRIGGER,
        "condition" => CONDITION,
        "action" => ACTION,
        "playbook" => PLAYBOOK,
        "ruleset" => RULESET,
        other => return Err(ScaffoldError::UnknownKind(other.to_string())),
    };
    let root = parent.join(name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { path, source }
    };
    // The user named this directory on the command line; everything below
    // it is written through a capability on it.
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let parent_dir = Dir::open_ambient_dir(parent, ambient_authority()).map_err(io(parent))?;
    if parent_dir.exists(name) {
        return Err(ScaffoldError::Exists(root));
    }
    parent_dir
        .create_dir_all(format!("{name}/.cargo"))
        .map_err(io(&root))?;
    parent_dir
        .create_dir_all(format!("{name}/src"))
        .map_err(io(&root))?;
    let dir = parent_dir.open_dir(name).map_err(io(&root))?;
    let sdk = sdk.display().to_string().replace('\\', "/");
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
description = "A vigil {kind} plugin."
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
vigil-sdk = {{ path = "{sdk}" }}

[profile.release]
opt-level = "s"
lto = true
strip = true

# A plugin is its own workspace, wherever it is created.
[workspace]
"#
    );
    let ident = name.replace('-', "_");
    let files = [
        ("Cargo.toml", manifest),
        (
            "src/lib.rs",
            source
                .replace("{{name}}", name)
                .replace("{{ident}}", &ident),
        ),
        (".gitignore", "/target\n".to_string()),
        // The toolchain the SDK is built and tested with, with both targets.
        (
            "rust-toolchain.toml",
            "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip2\", \"wasm32-unknown-unknown\"]\n"
                .to_string(),
        ),
        // A build without WASI is linked into a component by the linker the
        // toolchain ships for wasm32-wasip2.
        (
            ".cargo/config.toml",
            "# `cargo build --target wasm32-unknown-unknown` makes a component without\n# WASI (sdk/README.md, \"Building without WASI\").\n[target.wasm32-unknown-unknown]\nlinker = \"wasm-component-ld\"\n"
                .to_string(),
        ),
        (
            "README.md",
            format!(
                "# {name}\n\nA vigil {kind} plugin.\n\n```sh\ncargo test                                   # the rules, natively\ncargo build --target wasm32-wasip2 --release  # the component\nvigil plugin check target/wasm32-wasip2/release/{ident}.wasm\n```\n\nWithout WASI (imports only the vigil contract, instantiates in about\n0.7x the time; `std`'s clocks and randomness are not there, a panic's\nmessage reaches the host through the SDK's hook):\n\n```sh\ncargo build --target wasm32-unknown-unknown --release\nvigil plugin check target/wasm32-unknown-unknown/release/{ident}.wasm\n```\n"
            ),
        ),
    ];
    for (path, contents) in files {
        dir.write(path, contents).map_err(io(&root.join(path)))?;
    }
    Ok(root)
}

const SCORER: &str = r#"//! {{name}}: a vigil scorer.

use vigil_sdk::prelude::*;

/// Scores seat usage: active users over licensed seats.
#[vigil_sdk::scorer(
    name = "{{name}}",
    description = "Seat usage as a score.",
    score = "{{name}}",
    factors = ["usage"]
)]
pub fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let usage = ratio(ctx.account.active_users, ctx.account.licensed_seats);
    Ok(ScoreCardBuilder::new("{{name}}")
        .factor("usage", 1.0, usage, usage * 100.0, "active users / licensed seats")
        .build(health_band))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder};

    #[test]
    fn a_quarter_of_seats_active_scores_25_and_is_critical() {
        let ctx = ContextBuilder::new(AccountBuilder::new("acme").seats(100, 25).build()).build();
        let card = score(&ctx).unwrap();
        assert_eq!(card.value, 25.0);
        assert_eq!(card.band, "critical");
    }
}
"#;

const TRIGGER: &str = r#"//! {{name}}: a vigil trigger.

use vigil_sdk::prelude::*;

/// Signals when logins in the last 7 days fall below half of the 7 before.
/// The windows it reads are declared, so the host hands them over with
/// each event instead of being asked for each.
#[vigil_sdk::trigger(
    name = "{{name}}",
    description = "Weekly login drop.",
    windows = [("logins", 7, 0), ("logins", 7, 7)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let recent = window("logins", 7, 0).sum;
    let earlier = window("logins", 7, 7).sum;
    if earlier > 0.0 && recent < earlier / 2.0 {
        let reason = format!("logins fell from {earlier} to {recent} week over week");
        return Ok(vec![SignalBuilder::new(ctx, "logins.weekly-drop", Severity::High, reason).build()]);
    }
    Ok(vec![])
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, History};

    #[test]
    fn halved_logins_raise_a_signal() {
        let ctx = ContextBuilder::new(AccountBuilder::new("acme").build()).build();
        History::new(ctx.now).sample("logins", 1, 10.0).sample("logins", 9, 30.0).install();
        let signals = evaluate(&ctx).unwrap();
        assert_eq!(signals.len(), 1);
        assert_eq!(signals[0].name, "logins.weekly-drop");
    }
}
"#;

const CONDITION: &str = r#"//! {{name}}: a vigil condition.

use vigil_sdk::prelude::*;

/// Lets only high and critical signals through for Small Business accounts.
#[vigil_sdk::condition(name = "{{name}}", description = "Quiet low-severity signals for small accounts.")]
pub fn check(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    let urgent = matches!(signal.severity, Severity::High | Severity::Critical);
    let applies = urgent || ctx.account.tier != Tier::SmallBusiness;
    Ok(Verdict {
        applies,
        reason: if applies { "applies".into() } else { "low severity for a small account".into() },
        policy_tags: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder};

    #[test]
    fn a_low_signal_does_not_apply_to_a_small_business() {
        let account = AccountBuilder::new("acme").tier(Tier::SmallBusiness).build();
        let ctx = ContextBuilder::new(account).build();
        let signal = SignalBuilder::new(&ctx, "usage.low", Severity::Low, "low usage").build();
        assert!(!check(&ctx, &signal).unwrap().applies);
    }
}
"#;

const ACTION: &str = r#"//! {{name}}: a vigil action.

use vigil_sdk::prelude::*;

/// Creates a CSM task due within 24 hours for every signal.
#[vigil_sdk::action(name = "{{name}}", description = "A CSM task per signal.")]
pub fn plan(ctx: &Context<'_>, signal: &Signal, _verdict: &Verdict) -> Result<Vec<Intent>, PluginError> {
    Ok(IntentBuilder::new(ctx, signal)
        .task(Timing::ShortTerm, "Follow up", "csm")
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder};

    #[test]
    fn a_signal_becomes_a_task_due_in_24_hours() {
        let ctx = ContextBuilder::new(AccountBuilder::new("acme").build()).build();
        let signal = SignalBuilder::new(&ctx, "usage.low", Severity::Medium, "low usage").build();
        let verdict = Verdict { applies: true, reason: String::new(), policy_tags: vec![] };
        let intents = plan(&ctx, &signal, &verdict).unwrap();
        match &intents[0].kind {
            IntentKind::Task(task) => assert_eq!(task.due_at, ctx.now + 24 * HOUR_MS),
            other => panic!("expected a task, got {other:?}"),
        }
    }
}
"#;

const PLAYBOOK: &str = r#"//! {{name}}: a vigil playbook.

use vigil_sdk::prelude::*;

/// An industry playbook: flags overdue payments of financial-services
/// accounts for an audit-trail review.
pub struct Playbook;

#[vigil_sdk::playbook(
    name = "{{name}}",
    description = "Overdue payments in financial services.",
    windows = [("payment-days-overdue", 30, 0)],
    tags = ["sox"]
)]
impl vigil_sdk::Playbook for Playbook {
    fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
        let overdue = window("payment-days-overdue", 30, 0);
        if ctx.account.industry == Industry::FinancialServices && overdue.last > 30.0 {
            let reason = format!("invoice {} days overdue", overdue.last);
            return Ok(vec![SignalBuilder::new(ctx, "payment.overdue", Severity::High, reason).build()]);
        }
        Ok(vec![])
    }

    fn check(_ctx: &Context<'_>, _signal: &Signal) -> Result<Verdict, PluginError> {
        Ok(Verdict { applies: true, reason: "financial services".into(), policy_tags: vec!["sox".into()] })
    }

    fn plan(ctx: &Context<'_>, signal: &Signal, _verdict: &Verdict) -> Result<Vec<Intent>, PluginError> {
        Ok(IntentBuilder::new(ctx, signal)
            .task(Timing::Immediate, "Audit-trail review of the overdue invoice", "finance")
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, History};

    #[test]
    fn an_overdue_financial_services_invoice_plans_an_immediate_review() {
        let account = AccountBuilder::new("bank").industry(Industry::FinancialServices).build();
        let ctx = ContextBuilder::new(account).build();
        History::new(ctx.now).sample("payment-days-overdue", 2, 45.0).install();
        let signals = <Playbook as vigil_sdk::Playbook>::evaluate(&ctx).unwrap();
        assert_eq!(signals.len(), 1);
        let verdict = <Playbook as vigil_sdk::Playbook>::check(&ctx, &signals[0]).unwrap();
        let intents = <Playbook as vigil_sdk::Playbook>::plan(&ctx, &signals[0], &verdict).unwrap();
        assert_eq!(intents.len(), 1);
    }
}
"#;

const RULESET: &str = r#"//! {{name}}: a vigil ruleset.

use vigil_sdk::prelude::*;

/// Seat usage scored, a signal raised when it is low, and the signal
/// checked against the account's tier, in one plugin call an event.
pub struct Rules;

#[vigil_sdk::ruleset(
    name = "{{name}}",
    description = "Seat usage scored, raised and checked in one call.",
    score = "seat-usage",
    factors = ["usage"],
    tags = ["self-service-first"]
)]
impl vigil_sdk::Ruleset for Rules {
    fn score(ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
        let usage = ratio(ctx.account.active_users, ctx.account.licensed_seats);
        Ok(ScoreCardBuilder::new("seat-usage")
            .factor("usage", 1.0, usage, usage * 100.0, "active users / licensed seats")
            .build(health_band))
    }

    /// The score just computed is among `ctx.scores`.
    fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
        match ctx.scores.iter().find(|score| score.name == "seat-usage") {
            Some(score) if score.value < 30.0 => {
                let reason = format!("{:.0} % of seats in use", score.value);
                Ok(vec![SignalBuilder::new(ctx, "usage.low", Severity::Medium, reason).build()])
            }
            _ => Ok(vec![]),
        }
    }

    fn check(ctx: &Context<'_>, _signal: &Signal) -> Result<Verdict, PluginError> {
        let small = ctx.account.tier == Tier::SmallBusiness;
        Ok(Verdict {
            applies: true,
            reason: "low seat usage".into(),
            policy_tags: if small { vec!["self-service-first".into()] } else { vec![] },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sdk::testing::{AccountBuilder, ContextBuilder, rule};

    #[test]
    fn a_small_business_using_a_fifth_of_its_seats_gets_a_self_service_signal() {
        let account = AccountBuilder::new("acme").tier(Tier::SmallBusiness).seats(100, 20).build();
        let ctx = ContextBuilder::new(account).build();
        let (card, checked) = rule::<Rules>(&ctx).unwrap();
        assert_eq!(card.value, 20.0);
        assert_eq!(checked.len(), 1);
        let (signal, verdict) = &checked[0];
        assert_eq!(signal.name, "usage.low");
        assert_eq!(verdict.policy_tags, ["self-service-first"]);
    }
}
"#;
