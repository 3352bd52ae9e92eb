//! Watching the plugins directory: a new or changed `.wasm` file is
//! deployed, a removed one unloaded, once the directory has been quiet for
//! the debounce interval (a copy arrives as several writes). Files are read
//! through the directory's `cap-std` capability, so no event can make the
//! host read outside it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use cap_std::fs::Dir;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Lifecycle, LifecycleError};
use crate::runtime::digest;

/// The `.wasm` files of `dir`, in name order.
pub(super) fn wasm_files(dir: &Dir) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = dir
        .entries()?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| is_plugin_file(name))
        .collect();
    names.sort();
    Ok(names)
}

/// A plugin file: `NAME.wasm`, not hidden (editors and copies write
/// hidden temporary files first).
fn is_plugin_file(name: &str) -> bool {
    name.ends_with(".wasm") && !name.starts_with('.')
}

/// Starts watching `path` (opened as `dir`).
pub(super) fn start(
    lifecycle: Arc<Lifecycle>,
    path: PathBuf,
    dir: Dir,
) -> Result<JoinHandle<()>, LifecycleError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let failed = |e: notify::Error| LifecycleError::Directory {
        path: path.display().to_string(),
        reason: format!("cannot watch it: {e}"),
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = tx.send(event);
    })
    .map_err(failed)?;
    watcher
        .watch(&path, RecursiveMode::NonRecursive)
        .map_err(failed)?;
    Ok(tokio::spawn(async move {
        // The watcher lives as long as the task.
        let _watcher = watcher;
        run(lifecycle, dir, rx).await;
    }))
}

async fn run(
    lifecycle: Arc<Lifecycle>,
    dir: Dir,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
) {
    let debounce = lifecycle.config.debounce;
    while let Some(first) = events.recv().await {
        let mut files = BTreeSet::new();
        collect(&mut files, first);
        // Wait until the directory has been quiet for the debounce.
        loop {
            match tokio::time::timeout(debounce, events.recv()).await {
                Ok(Some(event)) => collect(&mut files, event),
                Ok(None) => return,
                Err(_) => break,
            }
        }
        for file in files {
            changed(&lifecycle, &dir, &file).await;
        }
    }
}

/// Adds the plugin files an event touched.
fn collect(files: &mut BTreeSet<String>, event: notify::Result<notify::Event>) {
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "plugins directory watch error");
            return;
        }
    };
    if matches!(event.kind, EventKind::Access(_)) {
        return;
    }
    for path in event.paths {
        if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && is_plugin_file(name)
        {
            files.insert(name.to_string());
        }
    }
}

/// Deploys or unloads what file `file` now holds.
#[tracing::instrument(name = "vigil.plugins.reload", skip(lifecycle, dir))]
async fn changed(lifecycle: &Arc<Lifecycle>, dir: &Dir, file: &str) {
    let who = lifecycle.host_actor(&format!("file:{file}"));
    match dir.read(file) {
        Ok(bytes) => {
            // Unchanged content (a touch, a copy of the same file) is
            // already serving: nothing to do.
            let serving = lifecycle
                .pipeline
                .plugins()
                .iter()
                .any(|p| p.digest() == digest(&bytes));
            if serving {
                return;
            }
            if let Err(error) = lifecycle.deploy(bytes, &who).await {
                tracing::warn!(%error, "the previous version keeps serving");
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Err(error) = lifecycle.unload_file(file, &who).await {
                tracing::error!(%error, "unloading failed");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read the plugin file"),
    }
}
