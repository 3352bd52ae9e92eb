//! A trigger that writes back everything it was given — every field of the
//! context and one history window — as the reason of a single signal, so
//! the tests can check that the host lowers each field as the contract
//! says.
use vigil_sdk::prelude::*;

#[vigil_sdk::trigger(name = "context-echo", description = "Echoes its context.")]
pub fn evaluate(ctx: &Context) -> Result<Vec<Signal>, PluginError> {
    let account = &ctx.account;
    let event = &ctx.event;
    let attributes: Vec<String> = account
        .attributes
        .iter()
        .map(|a| format!("{:?}={:?}", a.key, a.value))
        .collect();
    let scores: Vec<String> = ctx
        .scores
        .iter()
        .map(|s| format!("{:?}:{}:{:?}:{}", s.name, s.value, s.band, s.rag as u8))
        .collect();
    let logins = window("logins", 30, 0);
    let echo = format!(
        "account {:?} {:?} tier={} industry={} seats={} active={} arr={} start={:?} renewal={:?} \
         attributes=[{}] | event {:?} {:?} {:?} at={} payload={:?} | now={} | scores=[{}] | \
         logins count={} sum={} min={} max={} first={} last={}",
        account.id,
        account.name,
        account.tier as u8,
        account.industry as u8,
        account.licensed_seats,
        account.active_users,
        account.arr,
        account.contract_start,
        account.renewal_date,
        attributes.join(","),
        event.id,
        event.account_id,
        event.kind,
        event.occurred_at,
        event.payload,
        ctx.now,
        scores.join(","),
        logins.count,
        logins.sum,
        logins.min,
        logins.max,
        logins.first,
        logins.last,
    );
    Ok(vec![
        SignalBuilder::new(ctx, "context.echo", Severity::Info, &echo).build(),
    ])
}
