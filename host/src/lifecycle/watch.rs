//! Watching the plugins directory: a new or changed `.wasm` file is
//! deployed, a removed one unloaded, once the directory has been quiet for
//! the debounce interval (a copy arrives as several writes) — or at once
//! when the file is known complete (closed after writing, renamed into
//! place). Files are read
//! through the directory's `cap-std` capability, so no event can make the
//! host read outside it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cap_std::fs::Dir;
use notify::event::{AccessKind, AccessMode, ModifyKind};
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
        // File name → whether its last event says it is complete.
        let mut files = BTreeMap::new();
        collect(&mut files, first);
        // Wait until the directory has been quiet for the debounce; when
        // every file touched says it is complete (closed after writing,
        // renamed into place, removed), a short pause suffices.
        loop {
            let quiet = if !files.is_empty() && files.values().all(|complete| *complete) {
                SETTLED_QUIET
            } else {
                debounce
            };
            match tokio::time::timeout(quiet, events.recv()).await {
                Ok(Some(event)) => collect(&mut files, event),
                Ok(None) => return,
                Err(_) => break,
            }
        }
        for file in files.into_keys() {
            changed(&lifecycle, &dir, &file).await;
        }
    }
}

/// How long to wait for more events once every touched file is complete.
const SETTLED_QUIET: Duration = Duration::from_millis(5);

/// Notes the plugin files an event touched, and whether the event says
/// the file is complete.
fn collect(files: &mut BTreeMap<String, bool>, event: notify::Result<notify::Event>) {
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "plugins directory watch error");
            return;
        }
    };
    let complete = match event.kind {
        // Closed after writing, renamed into place, removed.
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(_))
        | EventKind::Remove(_) => true,
        // Reads (the host's own among them) change nothing.
        EventKind::Access(_) => return,
        _ => false,
    };
    for path in event.paths {
        if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && is_plugin_file(name)
        {
            files.insert(name.to_string(), complete);
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
