//! A playbook built against contract 0.1.0 with plain wit-bindgen: raises
//! `legacy.login` on every `login` event, applies it to enterprise accounts
//! only, and plans one task for it. The host must keep loading it and call
//! it once per event and signal.
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "playbook" });
}

use bindings::exports::vigil::plugin::{conditioning, meta, planning, triggering};
use bindings::vigil::plugin::types::{
    Context, Intent, IntentKind, PluginError, PluginInfo, PluginKind, Severity, Signal, Task,
    Tier, Timing, Verdict,
};

struct Legacy;

impl meta::Guest for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-playbook".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Playbook,
            description: "A contract 0.1 playbook: a task per enterprise login.".into(),
            subscribes: vec!["login".into()],
            config_schema: "{}".into(),
            default_fuel: 1_000_000,
        }
    }
}

impl triggering::Guest for Legacy {
    fn evaluate(ctx: Context) -> Result<Vec<Signal>, PluginError> {
        Ok(vec![Signal {
            name: "legacy.login".into(),
            severity: Severity::Low,
            reason: format!("{} logged in", ctx.account.id),
            dedup_key: format!("login-{}", ctx.event.id),
            cooldown_secs: 0,
        }])
    }
}

impl conditioning::Guest for Legacy {
    fn check(ctx: Context, _signal: Signal) -> Result<Verdict, PluginError> {
        let applies = ctx.account.tier == Tier::Enterprise;
        Ok(Verdict {
            applies,
            reason: if applies { "enterprise" } else { "not enterprise" }.into(),
            policy_tags: vec!["legacy".into()],
        })
    }
}

impl planning::Guest for Legacy {
    fn plan(ctx: Context, signal: Signal, _verdict: Verdict) -> Result<Vec<Intent>, PluginError> {
        Ok(vec![Intent {
            idempotency_key: signal.dedup_key.clone(),
            timing: Timing::ShortTerm,
            kind: IntentKind::Task(Task {
                title: format!("Follow up the login of {}", ctx.account.id),
                assignee: "csm".into(),
                due_at: ctx.now + 86_400_000,
            }),
        }])
    }
}

bindings::export!(Legacy with_types_in bindings);
