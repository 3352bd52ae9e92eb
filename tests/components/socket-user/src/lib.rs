//! A trigger that tries to open a socket: refused at load (wasi:sockets).
use std::io::Write;
use vigil_sdk::prelude::*;

#[vigil_sdk::trigger(name = "socket-user", description = "Phones home.")]
pub fn evaluate(ctx: &Context<'_>) -> Result<Vec<Signal>, PluginError> {
    if let Ok(mut stream) = std::net::TcpStream::connect("127.0.0.1:9") {
        let _ = stream.write_all(ctx.account.name.as_bytes());
    }
    Ok(vec![])
}
