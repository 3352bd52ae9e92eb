use vigil_sdk::prelude::*;

#[vigil_sdk::action(name = "ok", tags = ["sox"])]
fn plan(ctx: &Context<'_>, signal: &Signal, verdict: &Verdict) -> Result<Vec<Intent>, PluginError> {
    Ok(Vec::new())
}

#[vigil_sdk::condition(
    name = "ok",
    tags = ["tag-that-goes-on-and-on-past-the-limit-of-one-hundred-and-twenty-eight-bytes-that-the-host-sets-for-every-name-a-plugin-returns-xx"]
)]
fn long(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    Ok(Verdict {
        applies: true,
        reason: String::new(),
        policy_tags: vec![],
    })
}

#[vigil_sdk::condition(
    name = "ok",
    tags = [
        "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10", "t11", "t12", "t13",
        "t14", "t15", "t16", "t17", "t18", "t19", "t20", "t21", "t22", "t23", "t24", "t25", "t26",
        "t27", "t28", "t29", "t30", "t31", "t32", "t33", "t34", "t35", "t36", "t37", "t38", "t39",
        "t40", "t41", "t42", "t43", "t44", "t45", "t46", "t47", "t48", "t49", "t50", "t51", "t52",
        "t53", "t54", "t55", "t56", "t57", "t58", "t59", "t60", "t61", "t62", "t63", "t64"
    ]
)]
fn many(ctx: &Context<'_>, signal: &Signal) -> Result<Verdict, PluginError> {
    Ok(Verdict {
        applies: true,
        reason: String::new(),
        policy_tags: vec![],
    })
}

fn main() {}
