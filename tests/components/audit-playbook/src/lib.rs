//! A SOX-style playbook: for financial-services accounts, an overdue invoice
//! of more than 30 days raises a signal, applies only with an audit trail
//! configured, and plans an immediate audit-trail review task.
use vigil_sdk::prelude::*;

pub struct AuditPlaybook;

#[vigil_sdk::playbook(
    name = "audit-playbook",
    description = "SOX audit review of overdue invoices.",
    tags = ["sox"]
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

    fn check(_ctx: &Context<'_>, _signal: &Signal) -> Result<Verdict, PluginError> {
        Ok(Verdict {
            applies: true,
            reason: "SOX applies to financial services".into(),
            policy_tags: vec!["sox".into()],
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
