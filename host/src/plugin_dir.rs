//! Loading plugins from a directory (opened as a `cap-std` capability, so
//! file names cannot reach outside it) or from the embedded standard set.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::runtime::{InstanceMode, LoadError, Plugin, Runtime};

/// Why a plugin directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the plugins directory {path}: {source}")]
pub struct DirError {
    /// The directory.
    pub path: String,
    /// The error.
    pub source: std::io::Error,
}

/// The plugins loaded from a directory, and the files that were refused.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Plugins that passed every check.
    pub plugins: Vec<Arc<Plugin>>,
    /// Files refused, with the reason.
    pub refused: Vec<(String, LoadError)>,
}

/// Loads every `*.wasm` file in `path`, in name order.
pub fn load_directory(
    runtime: &Runtime,
    path: &Path,
    mode: InstanceMode,
) -> Result<Loaded, DirError> {
    let span = tracing::info_span!("vigil.plugins.load_dir", path = %path.display());
    let _entered = span.enter();
    let error = |source| DirError {
        path: path.display().to_string(),
        source,
    };
    let dir = Dir::open_ambient_dir(path, ambient_authority()).map_err(error)?;
    let mut names: Vec<String> = dir
        .entries()
        .map_err(error)?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.ends_with(".wasm"))
        .collect();
    names.sort();
    let mut loaded = Loaded::default();
    for name in names {
        let result = dir
            .read(&name)
            .map_err(|e| LoadError::NotAComponent(format!("cannot read the file: {e}")))
            .and_then(|bytes| runtime.load(&bytes, BTreeMap::new(), mode));
        match result {
            Ok(plugin) => {
                tracing::info!(file = %name, plugin = plugin.label(), "plugin loaded");
                loaded.plugins.push(Arc::new(plugin));
            }
            Err(error) => {
                tracing::warn!(file = %name, %error, "plugin refused");
                loaded.refused.push((name, error));
            }
        }
    }
    Ok(loaded)
}

/// Loads the standard plugins embedded in the binary.
pub fn load_standard(
    runtime: &Runtime,
    mode: InstanceMode,
) -> Result<Vec<Arc<Plugin>>, (String, LoadError)> {
    crate::standard::STANDARD_PLUGINS
        .iter()
        .map(|(name, bytes)| {
            runtime
                .load(bytes, BTreeMap::new(), mode)
                .map(Arc::new)
                .map_err(|e| (name.to_string(), e))
        })
        .collect()
}
