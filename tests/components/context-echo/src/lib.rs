//! A trigger that writes back everything it was given — every field of the
//! context and history windows — as the reason of a single signal, so the
//! tests can check that the host lowers each field as the contract says.
//! It declares two windows (in an order other than the one it reads them
//! in) and reads one of them again through the `history` import itself.
//! It traps for the account `echo-boom`.
use vigil_sdk::prelude::*;

#[vigil_sdk::trigger(
    name = "context-echo",
    description = "Echoes its context.",
    windows = [("logins", 30, 30), ("logins", 30, 0)]
)]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    let account = &ctx.account;
    let event = &ctx.event;
    // A trap for one account, so that a test can have the rest of a batch
    // called again in parts.
    if account.id == "echo-boom" {
        panic!("account echo-boom is not echoed");
    }
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
    let earlier = window("logins", 30, 30);
    let asked = vigil_sdk::wit::vigil::plugin::history::window("logins", 30, 0);
    let windows: Vec<String> = [("logins", logins), ("earlier", earlier), ("asked", asked)]
        .iter()
        .map(|(name, w)| {
            format!(
                "{name} count={} sum={} min={} max={} first={} last={}",
                w.count, w.sum, w.min, w.max, w.first, w.last
            )
        })
        .collect();
    let echo = format!(
        "account {:?} {:?} tier={} industry={} seats={} active={} arr={} start={:?} renewal={:?} \
         attributes=[{}] | event {:?} {:?} {:?} at={} payload={:?} | now={} | scores=[{}] | {}",
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
        windows.join(" | "),
    );
    Ok(vec![
        SignalBuilder::new(ctx, "context.echo", Severity::Info, &echo).build(),
    ])
}
