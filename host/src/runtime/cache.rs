//! Compiled components, cached by the SHA-256 digest of their bytes: in
//! memory, and optionally as serialized artifacts in a directory the host
//! owns (opened as a `cap-std` capability, so nothing escapes it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::LoadError;

/// The hex SHA-256 digest of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A cache of compiled components keyed by content digest.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    memory: Arc<Mutex<HashMap<String, Component>>>,
    dir: Option<Arc<Dir>>,
}

impl ComponentCache {
    /// A cache that lives as long as the process.
    pub fn in_memory() -> Self {
        Self {
            memory: Arc::default(),
            dir: None,
        }
    }

    /// A cache that also keeps serialized components in `dir`.
    pub fn in_dir(dir: Dir) -> Self {
        Self {
            memory: Arc::default(),
            dir: Some(Arc::new(dir)),
        }
    }

    /// The compiled component for `bytes`, and its digest.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> Result<(String, Component), LoadError> {
        let digest = digest(bytes);
        if let Some(component) = self.lock().get(&digest) {
            return Ok((digest, component.clone()));
        }
        let component = match self.read_artifact(engine, &digest) {
            Some(component) => component,
            None => {
                let component = Component::new(engine, bytes)
                    .map_err(|e| LoadError::NotAComponent(format!("{e:#}")))?;
                self.write_artifact(&digest, &component);
                component
            }
        };
        self.lock().insert(digest.clone(), component.clone());
        Ok((digest, component))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn artifact_name(digest: &str) -> String {
        format!("{digest}.cwasm")
    }

    fn read_artifact(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let dir = self.dir.as_ref()?;
        let bytes = dir.read(Self::artifact_name(digest)).ok()?;
        // SAFETY: artifacts are written only by `write_artifact` below, into
        // the host's own data directory, from components this engine
        // compiled; wasmtime checks that the artifact matches the engine's
        // version and configuration and refuses it otherwise, in which case
        // the component is compiled again.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes) };
        match component {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::debug!(digest, %error, "cached artifact unusable; recompiling");
                None
            }
        }
    }

    fn write_artifact(&self, digest: &str, component: &Component) {
        let Some(dir) = self.dir.as_ref() else {
            return;
        };
        let Ok(bytes) = component.serialize() else {
            return;
        };
        // Write beside, then rename: a reader never sees half an artifact.
        let name = Self::artifact_name(digest);
        let partial = format!("{name}.partial");
        let written = dir
            .write(&partial, &bytes)
            .and_then(|()| dir.rename(&partial, dir, &name));
        if let Err(error) = written {
            tracing::warn!(digest, %error, "could not cache the compiled component");
        }
    }
}
