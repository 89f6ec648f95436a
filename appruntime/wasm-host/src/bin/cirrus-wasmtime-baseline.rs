//! The benchmark peer of `cargo xtask bench apps`: plain wasmtime, as an embedder would use it
//! out of the box, running the same component the Cirrus host runs. Default `Config` (no pooling
//! allocator, no epoch deadline, no memory cap), WASI 0.2 linked, the app world's surface
//! implemented minimally in memory (a fixed size; frames kept, shown nowhere). It instantiates,
//! calls `create`, `resize` and `frame`, and reports the first presented frame: the floor the
//! Cirrus host (sandbox, Wayland window, input, lifecycle) builds on.
//!
//! `cirrus-wasmtime-baseline precompile COMPONENT OUT` compiles ahead of time with this engine;
//! `cirrus-wasmtime-baseline run COMPONENT [--precompiled FILE] [--data-dir DIR]` runs, prints
//! `first-frame` on stdout and stays alive (so its memory can be measured) until stdin closes.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../../docs/wit",
    world: "app",
    imports: { default: trappable },
});

/// The surface size the app is given (the headless compositor's app area at 720x1440).
const WIDTH: u32 = 720;
const HEIGHT: u32 = 1380;

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    frames: u64,
    last_frame: Vec<u8>,
}

impl cirrus::app::surface::Host for State {
    fn width(&mut self) -> wasmtime::Result<u32> {
        Ok(WIDTH)
    }
    fn height(&mut self) -> wasmtime::Result<u32> {
        Ok(HEIGHT)
    }
    fn present(&mut self, _width: u32, _height: u32, pixels: Vec<u8>) -> wasmtime::Result<()> {
        self.frames += 1;
        self.last_frame = pixels;
        Ok(())
    }
    fn request_frame(&mut self) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    Engine::new(&config).map_err(anyhow::Error::from)
}

fn run(component: PathBuf, precompiled: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<()> {
    let engine = engine()?;
    let component = match precompiled {
        // SAFETY: the file was written by `precompile` with this same engine configuration
        // (wasmtime checks the engine's compatibility hash and refuses a mismatch).
        Some(path) => unsafe { Component::deserialize_file(&engine, &path) }
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading {}", path.display()))?,
        None => Component::from_file(&engine, &component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", component.display()))?,
    };
    let mut linker: Linker<State> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from)?;
    cirrus::app::surface::add_to_linker::<State, wasmtime::component::HasSelf<State>>(
        &mut linker,
        |s| s,
    )
    .map_err(anyhow::Error::from)?;
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stderr();
    if let Some(dir) = &data_dir {
        wasi.preopened_dir(dir, "/", FsPerms::ReadWrite)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("preopening {}", dir.display()))?;
    }
    let mut store = Store::new(
        &engine,
        State {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            frames: 0,
            last_frame: Vec::new(),
        },
    );
    let app = App::instantiate(&mut store, &component, &linker)
        .map_err(anyhow::Error::from)
        .context("instantiating")?;
    let call = |r: wasmtime::Result<()>, what: &str| -> Result<()> {
        r.map_err(anyhow::Error::from)
            .with_context(|| format!("calling {what}"))
    };
    call(app.cirrus_app_lifecycle().call_create(&mut store), "create")?;
    call(
        app.cirrus_app_events()
            .call_resize(&mut store, WIDTH, HEIGHT),
        "resize",
    )?;
    call(app.cirrus_app_events().call_frame(&mut store, 0), "frame")?;
    if store.data().frames == 0 {
        bail!("the app presented no frame on its first `frame` call");
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "first-frame")?;
    out.flush()?;
    drop(out);
    // Alive until the benchmark closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("precompile") if args.len() == 3 => {
            let bytes = std::fs::read(&args[1]).with_context(|| format!("reading {}", args[1]))?;
            let compiled = engine()?
                .precompile_component(&bytes)
                .map_err(anyhow::Error::from)?;
            std::fs::write(&args[2], compiled).with_context(|| format!("writing {}", args[2]))?;
            Ok(())
        }
        Some("run") if args.len() >= 2 => {
            let mut precompiled = None;
            let mut data_dir = None;
            let mut rest = args[2..].iter();
            while let Some(flag) = rest.next() {
                let value = rest.next().map(PathBuf::from);
                match (flag.as_str(), value) {
                    ("--precompiled", Some(v)) => precompiled = Some(v),
                    ("--data-dir", Some(v)) => data_dir = Some(v),
                    _ => bail!("unknown or incomplete option `{flag}`"),
                }
            }
            run(PathBuf::from(&args[1]), precompiled, data_dir)
        }
        _ => bail!(
            "usage: cirrus-wasmtime-baseline precompile COMPONENT OUT | run COMPONENT [--precompiled FILE] [--data-dir DIR]"
        ),
    }
}
