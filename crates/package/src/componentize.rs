//! Turning a core wasm32-wasi (preview 1) module from any language into an app component for the
//! `cirrus:app/app` world (docs/wit/cirrus-app.wit): embed the world's type information, then
//! encode with the WASI preview-1 reactor adapter (WASI calls become WASI 0.2 imports).

/// The app world shipped to developers, compiled in so SDK and runtime agree.
pub const APP_WIT: &str = include_str!("../../../docs/wit/cirrus-app.wit");

/// Why a module could not become a component.
#[derive(Debug, thiserror::Error)]
pub enum ComponentizeError {
    #[error("not a core WebAssembly module (a component already? built for another target?)")]
    NotAModule,
    #[error("the cirrus:app world does not parse: {0:#}")]
    World(anyhow_error::Error),
    #[error("the module does not fit the cirrus:app world: {0:#}")]
    Encode(anyhow_error::Error),
}

mod anyhow_error {
    /// wit-component's error type, wrapped so callers need not depend on it.
    #[derive(Debug)]
    pub struct Error(pub String);
    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
}

fn wrap(e: impl std::fmt::Display) -> anyhow_error::Error {
    anyhow_error::Error(format!("{e:#}"))
}

/// Componentizes `module` (core wasm bytes). The module exports the world's functions under their
/// canonical names (`cirrus:app/lifecycle@0.1.0#create`, …) and imports the surface from
/// `cirrus:app/surface@0.1.0`.
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, ComponentizeError> {
    if module.len() < 8 || &module[0..4] != b"\0asm" || module[4..8] != [1, 0, 0, 0] {
        return Err(ComponentizeError::NotAModule);
    }
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("cirrus-app.wit", APP_WIT)
        .map_err(|e| ComponentizeError::World(wrap(e)))?;
    let world = resolve
        .select_world(&[pkg], Some("app"))
        .map_err(|e| ComponentizeError::World(wrap(e)))?;
    let mut bytes = module.to_vec();
    wit_component::embed_component_metadata(
        &mut bytes,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| ComponentizeError::Encode(wrap(e)))?;
    wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|e| {
            e.validate(true).adapter(
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut e| e.encode())
        .map_err(|e| ComponentizeError::Encode(wrap(e)))
}
