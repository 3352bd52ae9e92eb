//! A SOX-style playbook: for financial-services accounts, an overdue invoice
//! of more than 30 days raises a signal, applies only with an audit trail
//! configured, and plans an immediate audit-trail review task.
//!
//! Its verdicts exercise the SDK's declared tags: for an account whose id
//! starts with `reordered` it lists its two declared tags out of the
//! declared order, one of them built at run time (found by its bytes, not
//! its literal's address); for one starting with `careless` it adds a tag
//! it never declared, which the SDK refuses for that item.
use vigil_sdk::prelude::*;

pub struct AuditPlaybook;

#[vigil_sdk::playbook(
    name = "audit-playbook",
    description = "SOX audit review of overdue invoices.",
    tags = ["sox", "audit-trail"]
)]
impl vigil_sdk::Playbook for AuditPlaybook {
    fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
        let overdue = window("payment-days-overdue", 30, 0);
        if ctx.account.industry == Industry::FinancialServices && overdue.last > 30.0 {
            let reason = format!("invoice {} days overdue", overdue.last);
            return Ok(vec![
                SignalBuilder::new(ctx, "sox.overdue-invoice", Severity::High, reason).build(),
            ]);
        }
        Ok(vec![])
    }

    fn check(ctx: &Context<'_>, _signal: &Signal) -> Result<Verdict, PluginError> {
        let id = &*ctx.account.id;
        let policy_tags = if id.starts_with("reordered") {
            vec!["audit-trail".into(), Tag::Owned(["s", "ox"].concat())]
        } else if id.starts_with("careless") {
            vec!["sox".into(), "pci-dss".into()]
        } else {
            vec!["sox".into()]
        };
        Ok(Verdict {
            applies: true,
            reason: "SOX applies to financial services".into(),
            policy_tags,
        })
    }

    fn plan(
        ctx: &Context<'_>,
        signal: &Signal,
        verdict: &Verdict,
    ) -> Result<Vec<Intent>, PluginError> {
        let audited = verdict.policy_tags.iter().any(|t| t == "sox");
        Ok(IntentBuilder::new(ctx, signal)
            .when(audited, |plan| {
                plan.task(Timing::Immediate, "Audit-trail review", "finance")
            })
            .build())
    }
}
