//! An action that traps on every plan: fail closed, it emits nothing.
use vigil_sdk::prelude::*;

#[vigil_sdk::action(name = "broken-action", description = "Always traps.")]
pub fn plan(
    _ctx: &Context<'_>,
    signal: &Signal,
    _verdict: &Verdict,
) -> Result<Vec<Intent>, PluginError> {
    let divisor = std::hint::black_box(signal.name.len() as u32 * 0);
    Ok(vec![Intent {
        idempotency_key: format!("{}", 1 / divisor),
        timing: Timing::Immediate,
        kind: IntentKind::Freeze(vigil_sdk::Freeze {
            reason: String::new(),
        }),
    }])
}
