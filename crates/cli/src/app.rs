//! `cirrus app …`: the SDK for Cirrus WebAssembly and web apps: scaffold (`new`), compile and
//! componentize (`build`, wasm), package and sign (`pack`, `sign`), check (`verify`), and drive a
//! running app manager over D-Bus (`install`, `launch`, `stop`, `list`, `logs`, `inspect`). `install` takes APKs too: the manager
//! tells them apart by content and installs them as kind `android`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use cirrus_appmanager::bus::AppManager1ClientProxy;
use cirrus_package::{
    DeveloperKey, Limits, MANIFEST_ENTRY, PackageContents, PublisherKey, Version, check_update,
    componentize, valid_app_id, verify,
};
use clap::Subcommand;

/// The C header of the app world, shipped in every C project.
const C_HEADER: &str = include_str!("../../../appruntime/wasm-host/tests/apps/cirrus_app.h");
const C_TEMPLATE: &str = include_str!("../../../appruntime/wasm-host/tests/apps/counter.c");
/// The AssemblyScript binding of the app world and the counter example, the AssemblyScript template.
const AS_BINDING: &str =
    include_str!("../../../appruntime/wasm-host/tests/apps/assemblyscript/cirrus.ts");
const AS_TEMPLATE: &str =
    include_str!("../../../appruntime/wasm-host/tests/apps/assemblyscript/counter.ts");
/// The web template (a tap counter with notifications): the files of `www/`. `__APP_NAME__` is
/// replaced by the app's name.
const WEB_TEMPLATE: [(&str, &str); 3] = [
    (
        "index.html",
        include_str!("../../../appruntime/web-host/template/index.html"),
    ),
    (
        "app.js",
        include_str!("../../../appruntime/web-host/template/app.js"),
    ),
    (
        "style.css",
        include_str!("../../../appruntime/web-host/template/style.css"),
    ),
];

/// The languages `cirrus app new` sets a project up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// C with clang for wasm32-wasi (src/main.c, src/cirrus_app.h).
    C,
    /// AssemblyScript (assembly/index.ts, assembly/cirrus.ts, package.json pinning the compiler).
    Assemblyscript,
    /// An HTML5 web app (www/index.html, www/app.js, www/style.css; no build step).
    Web,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create a new app project (a tap counter to start from) in DIR.
    New {
        dir: PathBuf,
        /// The language.
        #[arg(long, value_enum, default_value = "c")]
        template: Template,
        /// App id, reverse-domain (e.g. org.example.notes).
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Compile the project in DIR (src/*.c with clang for wasm32-wasi, assembly/index.ts with
    /// AssemblyScript's asc, or a given core module) and componentize it into DIR/build/app.wasm.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Componentize this core wasm32-wasi module instead of compiling src/ (any language).
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// Package DIR (manifest.webmanifest, icons/, assets/, and build/app.wasm for a wasm app or
    /// the files of www/ at the package root for a web app) and sign it.
    Pack {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Sign (or re-sign) a package zip.
    Sign {
        package: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Verify a signed package; with --installed-key/--installed-version, also check it may update
    /// an installed app.
    Verify {
        package: PathBuf,
        #[arg(long)]
        installed_key: Option<PathBuf>,
        #[arg(long)]
        installed_version: Option<String>,
    },
    /// Install a signed package (.cpkg) or an APK through the running app manager.
    Install {
        package: PathBuf,
        #[arg(long)]
        bus_address: Option<String>,
    },
    /// Launch an installed app.
    Launch {
        id: String,
        #[arg(long)]
        bus_address: Option<String>,
    },
    /// Stop a running app.
    Stop {
        id: String,
        #[arg(long)]
        bus_address: Option<String>,
    },
    /// List installed apps.
    List {
        #[arg(long)]
        bus_address: Option<String>,
    },
    /// Print an app's log.
    Logs {
        id: String,
        #[arg(long)]
        bus_address: Option<String>,
    },
    /// Open WebKit's remote inspector for a web app: (re)launches it debuggable (the app manager
    /// must run in developer mode) and prints the inspector's URL, a loopback address on the
    /// device. Open it in a WebKit browser (GNOME Web / Epiphany).
    Inspect {
        id: String,
        #[arg(long)]
        bus_address: Option<String>,
        /// Also listen on ADDR (e.g. 0.0.0.0:9222) and relay every connection to the inspector,
        /// until interrupted: what an emulator's port forward (QEMU `hostfwd`) points at.
        #[arg(long, value_name = "ADDR")]
        forward: Option<String>,
    },
}

pub fn run(cmd: AppCommand) -> ExitCode {
    match execute(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cirrus app: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_key(path: &Path) -> Result<DeveloperKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    DeveloperKey::parse(&text).with_context(|| format!("{}", path.display()))
}

fn execute(cmd: AppCommand) -> Result<()> {
    match cmd {
        AppCommand::New {
            dir,
            template,
            id,
            name,
        } => new_project(&dir, template, &id, name.as_deref()),
        AppCommand::Build { dir, module } => {
            build(&dir, module.as_deref()).map(|out| eprintln!("built {}", out.display()))
        }
        AppCommand::Pack { dir, key, out } => {
            let key = read_key(&key)?;
            let contents = collect(&dir)?;
            let bytes = contents
                .sign(&key)
                .with_context(|| format!("packaging {}", dir.display()))?;
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "wrote {} signed by {}",
                out.display(),
                key.public().fingerprint()
            );
            Ok(())
        }
        AppCommand::Sign { package, key, out } => {
            let key = read_key(&key)?;
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let (contents, _old_signature) =
                PackageContents::read_zip(&bytes, &Limits::default(), true)
                    .with_context(|| format!("reading {}", package.display()))?;
            let signed = contents
                .sign(&key)
                .with_context(|| format!("signing {}", package.display()))?;
            std::fs::write(&out, signed).with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "wrote {} signed by {}",
                out.display(),
                key.public().fingerprint()
            );
            Ok(())
        }
        AppCommand::Verify {
            package,
            installed_key,
            installed_version,
        } => {
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let pkg =
                verify(&bytes).with_context(|| format!("{} does not verify", package.display()))?;
            if let (Some(k), Some(v)) = (&installed_key, &installed_version) {
                let key = PublisherKey::parse(
                    &std::fs::read_to_string(k)
                        .with_context(|| format!("reading {}", k.display()))?,
                )?;
                let version = Version::parse(v).map_err(|e| anyhow!("--installed-version: {e}"))?;
                check_update(&version, &key, &pkg)?;
            } else if installed_key.is_some() || installed_version.is_some() {
                bail!("give both --installed-key and --installed-version");
            }
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "{} {} ({}) signed by {}: OK, {} entries",
                    pkg.manifest.cirrus.id,
                    pkg.manifest.cirrus.version,
                    pkg.manifest.cirrus.kind.as_str(),
                    pkg.signer.fingerprint(),
                    pkg.contents.len()
                );
            }
            Ok(())
        }
        AppCommand::Install {
            package,
            bus_address,
        } => bus(bus_address, move |p| async move {
            let path = std::fs::canonicalize(&package)
                .with_context(|| format!("{}", package.display()))?;
            let id = p
                .install(&path.display().to_string())
                .await
                .with_context(|| format!("installing {}", package.display()))?;
            eprintln!("installed {id}");
            Ok(())
        }),
        AppCommand::Launch { id, bus_address } => bus(bus_address, move |p| async move {
            let state = p
                .launch(&id)
                .await
                .with_context(|| format!("launching {id}"))?;
            eprintln!("{id}: {state}");
            Ok(())
        }),
        AppCommand::Stop { id, bus_address } => bus(bus_address, move |p| async move {
            p.stop(&id).await.with_context(|| format!("stopping {id}"))
        }),
        AppCommand::List { bus_address } => bus(bus_address, move |p| async move {
            #[allow(clippy::print_stdout)]
            for (id, label, _icon, kind, version, state) in p.list().await? {
                println!("{id:<32} {version:<10} {kind:<8} {state:<14} {label}");
            }
            Ok(())
        }),
        AppCommand::Logs { id, bus_address } => bus(bus_address, move |p| async move {
            let path = p.log_path(&id).await?;
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            #[allow(clippy::print_stdout)]
            {
                print!("{text}");
            }
            Ok(())
        }),
        AppCommand::Inspect {
            id,
            bus_address,
            forward,
        } => {
            let mut url = String::new();
            bus(bus_address, |p| {
                let url = &mut url;
                async move {
                    *url = p
                        .inspect(&id)
                        .await
                        .with_context(|| format!("opening the inspector of {id}"))?;
                    Ok(())
                }
            })?;
            #[allow(clippy::print_stdout)]
            {
                println!("{url}");
            }
            match forward {
                Some(listen) => forward_inspector(&listen, &url),
                None => Ok(()),
            }
        }
    }
}

/// Relays every connection to `listen` to the inspector at `url` (`http://HOST:PORT/`).
fn forward_inspector(listen: &str, url: &str) -> Result<()> {
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    eprintln!(
        "forwarding {} to {target} (interrupt to stop)",
        listener.local_addr()?
    );
    for incoming in listener.incoming() {
        let Ok(client) = incoming else { continue };
        let target = target.clone();
        std::thread::spawn(move || {
            let Ok(server) = std::net::TcpStream::connect(&target) else {
                return;
            };
            let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                return;
            };
            let up = std::thread::spawn(move || {
                let mut client = client;
                let mut server = server;
                let _ = std::io::copy(&mut client, &mut server);
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
            let _ = std::io::copy(&mut s2, &mut c2);
            let _ = c2.shutdown(std::net::Shutdown::Write);
            let _ = up.join();
        });
    }
    Ok(())
}

/// Runs `f` with a proxy to the app manager on the given bus (default: the system bus).
fn bus<F, Fut>(address: Option<String>, f: F) -> Result<()>
where
    F: FnOnce(AppManager1ClientProxy<'static>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let conn = match &address {
            Some(a) => zbus::connection::Builder::address(a.as_str())
                .build()
                .await
                .with_context(|| format!("connecting to {a}"))?,
            None => zbus::Connection::system()
                .await
                .context("connecting to the system bus (is the app manager running?)")?,
        };
        let proxy = AppManager1ClientProxy::new(&conn).await?;
        f(proxy).await
    })
}

fn new_project(dir: &Path, template: Template, id: &str, name: Option<&str>) -> Result<()> {
    if !valid_app_id(id) {
        bail!(
            "`{id}` is not an app id: use reverse-domain lowercase labels, e.g. org.example.notes"
        );
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let name = name
        .map(str::to_owned)
        .unwrap_or_else(|| id.rsplit('.').next().unwrap_or(id).to_owned());
    std::fs::create_dir_all(dir.join("icons"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let manifest = if template == Template::Web {
        serde_json::json!({
            "name": name, "short_name": name, "start_url": "index.html",
            "display": "standalone", "orientation": "portrait",
            "theme_color": "#1e3a8a", "background_color": "#f8fafc",
            "icons": [
                {"src": "icons/icon-96.png", "sizes": "96x96", "type": "image/png"},
                {"src": "icons/icon-192.png", "sizes": "192x192", "type": "image/png"}
            ],
            "cirrus": {"id": id, "version": "0.1.0", "kind": "web", "permissions": ["notifications"]}
        })
    } else {
        serde_json::json!({
            "name": name, "short_name": name, "display": "standalone", "orientation": "portrait",
            "theme_color": "#1e3a8a", "background_color": "#1e3a8a",
            "icons": [{"src": "icons/icon-96.png", "sizes": "96x96", "type": "image/png"}],
            "cirrus": {"id": id, "version": "0.1.0", "kind": "wasm", "permissions": []}
        })
    };
    std::fs::write(
        dir.join(MANIFEST_ENTRY),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    match template {
        Template::C => {
            std::fs::create_dir_all(dir.join("src"))?;
            std::fs::write(dir.join("src/cirrus_app.h"), C_HEADER)?;
            std::fs::write(dir.join("src/main.c"), C_TEMPLATE)?;
        }
        Template::Assemblyscript => {
            std::fs::create_dir_all(dir.join("assembly"))?;
            std::fs::write(dir.join("assembly/cirrus.ts"), AS_BINDING)?;
            std::fs::write(dir.join("assembly/index.ts"), AS_TEMPLATE)?;
            let package = serde_json::json!({
                "name": id.replace('.', "-"), "version": "0.1.0", "private": true,
                "description": "A Cirrus app: `cirrus app build` compiles assembly/index.ts",
                "devDependencies": {"assemblyscript": cirrus_package::assemblyscript::ASC_VERSION}
            });
            std::fs::write(
                dir.join("package.json"),
                serde_json::to_string_pretty(&package)?,
            )?;
        }
        Template::Web => {
            std::fs::create_dir_all(dir.join("www"))?;
            for (file, text) in WEB_TEMPLATE {
                std::fs::write(
                    dir.join("www").join(file),
                    text.replace("__APP_NAME__", &name),
                )?;
            }
            std::fs::write(
                dir.join("icons/icon-192.png"),
                icon_png(192, [0x1e, 0x3a, 0x8a])?,
            )?;
        }
    }
    std::fs::write(
        dir.join("icons/icon-96.png"),
        icon_png(96, [0x1e, 0x3a, 0x8a])?,
    )?;
    if template == Template::Web {
        eprintln!(
            "created {} ({id}); edit www/, then: cirrus app pack {0} --key KEY -o app.cpkg",
            dir.display()
        );
    } else {
        eprintln!(
            "created {} ({id}); next: cirrus app build {0} && cirrus app pack {0} --key KEY -o app.cpkg",
            dir.display()
        );
    }
    Ok(())
}

/// A plain square icon with a lighter inner square.
fn icon_png(size: u32, rgb: [u8; 3]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, size, size);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header()?;
    let mut data = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let inner = x > size / 4 && x < size * 3 / 4 && y > size / 4 && y < size * 3 / 4;
            let c = if inner { [255, 255, 255] } else { rgb };
            data.extend_from_slice(&[c[0], c[1], c[2], 255]);
        }
    }
    w.write_image_data(&data)?;
    w.finish()?;
    Ok(out)
}

/// Builds DIR/build/app.wasm; returns its path.
pub fn build(dir: &Path, module: Option<&Path>) -> Result<PathBuf> {
    let build = dir.join("build");
    std::fs::create_dir_all(&build).with_context(|| format!("creating {}", build.display()))?;
    let as_entry = dir.join("assembly/index.ts");
    let core = match module {
        Some(m) => m.to_owned(),
        None if as_entry.exists() && !dir.join("src").exists() => {
            let module = cirrus_package::assemblyscript::compile(dir, &as_entry, &build)?;
            let out = build.join("app.core.wasm");
            std::fs::write(&out, module).with_context(|| format!("writing {}", out.display()))?;
            out
        }
        None => {
            let mut sources: Vec<PathBuf> = std::fs::read_dir(dir.join("src"))
                .with_context(|| format!("reading {}/src", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "c"))
                .collect();
            sources.sort();
            if sources.is_empty() {
                bail!(
                    "no src/*.c or assembly/index.ts in {} (for other languages pass --module with a wasm32-wasi module)",
                    dir.display()
                );
            }
            let out = build.join("app.core.wasm");
            let status = Command::new("clang")
                .args(["--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-o"])
                .arg(&out)
                .args(&sources)
                .status()
                .context("running clang (install it with `cargo xtask deps`: clang lld wasi-libc libclang-rt-14-dev-wasm32)")?;
            if !status.success() {
                bail!("clang failed");
            }
            out
        }
    };
    let bytes = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    // Exports named `cirrus_app_<interface>_<function>` (languages that cannot spell the canonical
    // names) get them.
    let bytes = cirrus_package::assemblyscript::canonical_export_names(&bytes)
        .map_err(|e| anyhow!("{}: {e}", core.display()))?;
    let component =
        componentize(&bytes).with_context(|| format!("componentizing {}", core.display()))?;
    let out = build.join("app.wasm");
    std::fs::write(&out, component).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// The package's files from a project dir: the manifest, icons/, assets/, and the component.
fn collect(dir: &Path) -> Result<PackageContents> {
    let mut contents = PackageContents::new();
    let manifest_path = dir.join(MANIFEST_ENTRY);
    contents.insert(
        MANIFEST_ENTRY,
        std::fs::read(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?,
    )?;
    for sub in ["icons", "assets"] {
        add_tree(&mut contents, dir, &dir.join(sub))?;
    }
    let manifest =
        cirrus_package::Manifest::parse(contents.get(MANIFEST_ENTRY).unwrap_or_default())
            .with_context(|| format!("{}", manifest_path.display()))?;
    if manifest.cirrus.kind == cirrus_package::AppKind::Web {
        // A web app's pages: www/ is the package root (www/index.html → index.html).
        let www = dir.join("www");
        if !www.is_dir() {
            bail!("{} has no www/ (the web app's pages)", dir.display());
        }
        add_tree(&mut contents, &www, &www)?;
    }
    if manifest.cirrus.kind == cirrus_package::AppKind::Wasm {
        let built = dir.join("build/app.wasm");
        let component = std::fs::read(&built).with_context(|| {
            format!("reading {} (run `cirrus app build` first)", built.display())
        })?;
        contents.insert(manifest.component_path(), component)?;
    }
    Ok(contents)
}

fn add_tree(contents: &mut PackageContents, root: &Path, dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            add_tree(contents, root, &path)?;
        } else if ty.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(|_| anyhow!("{} is outside {}", path.display(), root.display()))?;
            let name = rel
                .to_str()
                .ok_or_else(|| anyhow!("{} is not UTF-8", rel.display()))?;
            contents
                .insert(
                    name,
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                )
                .with_context(|| format!("{}", path.display()))?;
        }
    }
    Ok(())
}
