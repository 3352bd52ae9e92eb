//! A playbook that plans one webhook per `test.webhook` event, to the
//! connector named in the payload's `to` (default `crm`), with the event's
//! id in the body: what the webhook delivery tests post.
use vigil_sdk::prelude::*;

pub struct WebhookPlaybook;

#[vigil_sdk::playbook(
    name = "webhook-playbook",
    description = "Plans a webhook per test.webhook event.",
    subscribes = ["test.webhook"]
)]
impl vigil_sdk::Playbook for WebhookPlaybook {
    fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
        let signal =
            SignalBuilder::new(ctx, "test.webhook", Severity::Info, "a webhook test event")
                .dedup_key(format!("{}:{}", ctx.account.id, ctx.event.id))
                .build();
        Ok(vec![signal])
    }

    fn check(_ctx: &Context<'_>, _signal: &Signal) -> Result<Verdict, PluginError> {
        Ok(Verdict {
            applies: true,
            reason: "always".into(),
            policy_tags: vec![],
        })
    }

    fn plan(
        ctx: &Context<'_>,
        signal: &Signal,
        _verdict: &Verdict,
    ) -> Result<Vec<Intent>, PluginError> {
        let to = if ctx.event.payload.contains("\"to\":\"missing\"") {
            "missing"
        } else {
            "crm"
        };
        let body = format!("{{\"event\":\"{}\"}}", ctx.event.id);
        Ok(IntentBuilder::new(ctx, signal)
            .webhook(Timing::Immediate, to, body)
            .build())
    }
}
