//! `cargo xtask deps`: the Debian 12 packages Cirrus needs on the developer's (or CI's) machine.
//!
//! Idempotent: asks dpkg which of [`PACKAGES`] are installed and installs only the missing ones with
//! `apt-get install -y --no-install-recommends` (through `sudo` when not root). `apt-get update` runs
//! first only when something must be installed.

use std::collections::BTreeSet;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

/// What a package is needed for (the groups `deps` prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Building the Cirrus programs (C libraries that `-sys` crates link, found by pkg-config).
    Build,
    /// Building the device image (`cirrus-images`).
    Image,
    /// Booting the image (`cargo xtask run`, the boot test).
    Emulator,
    /// Running the tests: Wayland clients for the compositor's tests, fonts the UI draws with.
    Tests,
}

impl Need {
    fn describe(self) -> &'static str {
        match self {
            Need::Build => "build",
            Need::Image => "image",
            Need::Emulator => "emulator",
            Need::Tests => "tests",
        }
    }
}

/// A Debian package and why Cirrus needs it.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    pub name: &'static str,
    pub need: Need,
    pub why: &'static str,
}

/// Every Debian 12 package building, running and testing Cirrus needs. To add one, add a row here
/// and say why; `deps` installs the rows that are missing.
///
/// Not listed on purpose: `clang` (no crate uses bindgen at build time), `dpkg-dev` (`dpkg-deb` is in
/// `dpkg`, and `apt-get download` in `apt`, both always installed), `kmod` (the image builder orders
/// the modules itself, no depmod).
pub const PACKAGES: &[Package] = &[
    // Building: C libraries linked by -sys crates of the compositor (smithay), found by pkg-config.
    Package {
        name: "pkg-config",
        need: Need::Build,
        why: "-sys crates find the C libraries below with it",
    },
    Package {
        name: "libpixman-1-dev",
        need: Need::Build,
        why: "pixman: smithay's software renderer (renderer_pixman)",
    },
    Package {
        name: "libxkbcommon-dev",
        need: Need::Build,
        why: "xkbcommon: keymaps for the compositor's keyboard input",
    },
    Package {
        name: "libwebkit2gtk-4.1-dev",
        need: Need::Build,
        why: "WebKitGTK 4.1 (GTK 3): the engine of cirrus-web-host (web apps), linked by the webkit2gtk crate",
    },
    Package {
        name: "libgbm-dev",
        need: Need::Build,
        why: "gbm: GPU buffers for smithay's DRM backend (backend_gbm)",
    },
    Package {
        name: "libdrm-dev",
        need: Need::Build,
        why: "libdrm headers for smithay's DRM/KMS backend",
    },
    Package {
        name: "libudev-dev",
        need: Need::Build,
        why: "libudev: device discovery for smithay's udev/libinput backends",
    },
    // Building the device image (cirrus-images).
    Package {
        name: "erofs-utils",
        need: Need::Image,
        why: "mkfs.erofs writes system.erofs",
    },
    Package {
        name: "e2fsprogs",
        need: Need::Image,
        why: "mke2fs -d writes the ext4 data.img",
    },
    Package {
        name: "shared-mime-info",
        need: Need::Image,
        why: "update-mime-database builds the image's MIME cache (GTK finds image types with it)",
    },
    Package {
        name: "libglib2.0-bin",
        need: Need::Image,
        why: "glib-compile-schemas compiles the image's GSettings schemas (GTK, WebKit)",
    },
    Package {
        name: "xz-utils",
        need: Need::Image,
        why: "xz unpacks the kernel (vmlinux from the xz bzImage)",
    },
    Package {
        name: "binutils",
        need: Need::Image,
        why: "strip shrinks the Cirrus binaries put in system.erofs",
    },
    Package {
        name: "cpio",
        need: Need::Image,
        why: "the image builder's tests cross-check its initramfs with cpio",
    },
    // Booting the image.
    Package {
        name: "qemu-system-x86",
        need: Need::Emulator,
        why: "qemu-system-x86_64 boots the qemu-x86_64 device (TCG)",
    },
    Package {
        name: "qemu-system-gui",
        need: Need::Emulator,
        why: "QEMU's GTK/SDL window for `cargo xtask run` with a display",
    },
    Package {
        name: "qemu-utils",
        need: Need::Emulator,
        why: "qemu-img, to inspect or convert disk images",
    },
    // Running the tests.
    Package {
        name: "weston",
        need: Need::Tests,
        why: "weston-simple-shm & co. as test clients; weston headless as the benchmark peer",
    },
    Package {
        name: "foot",
        need: Need::Tests,
        why: "a real terminal client for compositor tests",
    },
    Package {
        name: "zenity",
        need: Need::Tests,
        why: "a real GTK 3 app (zenity --entry) typed into through text-input-v3 in the on-screen keyboard test",
    },
    Package {
        name: "fonts-dejavu-core",
        need: Need::Tests,
        why: "the shell font (DejaVu Sans): UI tests draw the same glyphs as the device",
    },
    // APK tests (cirrus-apk, `cirrus apk`): real APKs built at test time, and the oracles.
    Package {
        name: "aapt",
        need: Need::Tests,
        why: "builds test APKs; `aapt dump badging` is the oracle for manifest/resource parsing",
    },
    Package {
        name: "apksigner",
        need: Need::Tests,
        why: "signs test APKs (v1/v2/v3, key rotation); `apksigner verify` is the signature oracle",
    },
    Package {
        name: "zipalign",
        need: Need::Tests,
        why: "aligns test APKs as real build pipelines do",
    },
    Package {
        name: "libsmali-java",
        need: Need::Tests,
        why: "smali assembles the test APKs' classes.dex (Debian has no d8/dx)",
    },
    Package {
        name: "android-framework-res",
        need: Need::Tests,
        why: "framework-res.apk, which aapt links test APKs against",
    },
    Package {
        name: "openjdk-17-jre-headless",
        need: Need::Tests,
        why: "keytool generates the RSA/EC signing keys of the APK tests",
    },
    // WebAssembly apps (appruntime/, `cirrus app`): C apps built for wasm32-wasi at test time.
    Package {
        name: "clang",
        need: Need::Tests,
        why: "compiles the C wasm test apps and the `cirrus app new --template c` template (--target=wasm32-wasi)",
    },
    Package {
        name: "lld",
        need: Need::Tests,
        why: "wasm-ld, clang's linker for wasm32",
    },
    Package {
        name: "wasi-libc",
        need: Need::Tests,
        why: "the C library and headers for wasm32-wasi apps",
    },
    Package {
        name: "libclang-rt-14-dev-wasm32",
        need: Need::Tests,
        why: "compiler-rt builtins for wasm32 (clang links them into every wasm app)",
    },
    Package {
        name: "nodejs",
        need: Need::Tests,
        why: "runs AssemblyScript's compiler (asc, from npm: see NPM_TOOLS) for the AssemblyScript example app and template",
    },
    Package {
        name: "dbus-daemon",
        need: Need::Tests,
        why: "a private bus for the app manager's org.cirrus.AppManager1 tests and init's org.cirrus.Init1 relay tests",
    },
    Package {
        name: "libnss-extrausers",
        need: Need::Tests,
        why: "NSS module reading the app manager's app users (/var/lib/extrausers): the web-app test's dbus-daemon resolves app uids through it, in a private mount namespace",
    },
    Package {
        name: "dbus-bin",
        need: Need::Tests,
        why: "dbus-send: introspection of org.cirrus.Init1 in init's relay test",
    },
    Package {
        name: "libnotify-bin",
        need: Need::Tests,
        why: "notify-send: the real client of the compositor's org.freedesktop.Notifications in its notification tests",
    },
    Package {
        name: "rclone",
        need: Need::Tests,
        why: "the peer of `cargo xtask bench sync` (rclone copy/sync to the loopback S3 server)",
    },
    Package {
        name: "runit",
        need: Need::Tests,
        why: "runsvdir: the peer of `cargo xtask bench init`",
    },
    Package {
        name: "s6",
        need: Need::Tests,
        why: "s6-svscan: the peer of `cargo xtask bench init`",
    },
    Package {
        name: "busybox",
        need: Need::Tests,
        why: "busybox init: the peer of `cargo xtask bench init`",
    },
];

/// Tools from the npm registry, pinned: (package, version, why). Each is installed with npm into
/// `$XDG_CACHE_HOME/cirrus/<package>-<version>` (`~/.cache/…`; never globally), where the SDK
/// looks for it (crates/cli/src/assemblyscript.rs, whose `ASC_VERSION` must match).
pub const NPM_TOOLS: &[(&str, &str, &str)] = &[(
    "assemblyscript",
    "0.28.20",
    "asc: the AssemblyScript example app's build and `cirrus app new --template assemblyscript`",
)];

fn npm_tool_dir(name: &str, version: &str) -> Result<std::path::PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set: nowhere to install npm tools")?;
    Ok(cache.join("cirrus").join(format!("{name}-{version}")))
}

/// Installs the missing [`NPM_TOOLS`] (only reports them with `check_only`); false if some are
/// missing after that.
fn npm_tools(check_only: bool) -> Result<bool> {
    let mut all = true;
    for (name, version, why) in NPM_TOOLS {
        let dir = npm_tool_dir(name, version)?;
        if dir
            .join("node_modules")
            .join(name)
            .join("package.json")
            .exists()
        {
            continue;
        }
        if check_only {
            println!("deps: npm {name}@{version} missing ({why})");
            all = false;
            continue;
        }
        let have_npm = Command::new("npm")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have_npm {
            // Debian's nodejs has no npm (NodeSource's bundles it, and conflicts with Debian's).
            println!("deps: installing Debian's npm to fetch {name}");
            let sudo = privilege_prefix()?;
            let status = apt(&sudo, &["install", "-y", "--no-install-recommends", "npm"])
                .status()
                .context("could not run apt-get install npm")?;
            if !status.success() {
                bail!("apt-get install npm failed ({status})");
            }
        }
        println!("deps: npm install {name}@{version} into {}", dir.display());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let status = Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&dir)
            .args(["--no-save", "--no-package-lock", "--no-audit", "--no-fund"])
            .arg(format!("{name}@{version}"))
            .stdin(Stdio::null())
            .status()
            .context("could not run npm")?;
        if !status.success() {
            bail!("npm install {name}@{version} failed ({status})");
        }
    }
    Ok(all)
}

/// `cargo xtask deps [--check]`.
pub fn run(check_only: bool) -> Result<ExitCode> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        println!("deps: all {} Debian packages are installed", PACKAGES.len());
        return Ok(if npm_tools(check_only)? {
            ExitCode::SUCCESS
        } else {
            println!("deps: run `cargo xtask deps` to install them");
            ExitCode::FAILURE
        });
    }
    if check_only {
        println!("deps: {} Debian package(s) missing:", missing.len());
        for p in &missing {
            println!("  {:<18} ({}) {}", p.name, p.need.describe(), p.why);
        }
        println!("deps: run `cargo xtask deps` to install them");
        return Ok(ExitCode::FAILURE);
    }
    install(&missing)?;
    npm_tools(false)?;
    Ok(ExitCode::SUCCESS)
}

/// Installs whatever is missing; called first by every other subcommand.
pub fn ensure() -> Result<()> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        println!("deps: all {} Debian packages are installed", PACKAGES.len());
    } else {
        install(&missing)?;
    }
    npm_tools(false).map(|_| ())
}

fn missing_packages() -> Result<Vec<Package>> {
    let names: Vec<&str> = PACKAGES.iter().map(|p| p.name).collect();
    // dpkg-query exits 1 when it knows nothing of some package (never installed); its stdout still
    // lists the others, so only a failure to run it at all is an error.
    let output = Command::new("dpkg-query")
        .arg("-W")
        .arg("-f=${Package} ${db:Status-Abbrev}\n")
        .args(&names)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "could not run dpkg-query: `cargo xtask deps` needs Debian 12; elsewhere install the \
                 equivalents of: {}",
                names.join(" ")
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let installed = parse_installed(&stdout);
    Ok(PACKAGES
        .iter()
        .filter(|p| !installed.contains(p.name))
        .copied()
        .collect())
}

/// The packages that `dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n'` reports as installed.
///
/// The abbreviation's second letter is the current state: `i` installed (`ii`, `hi`); `n` not
/// installed, `c` only config files left, `U`/`F`/`H`… half-done states are all "missing".
pub fn parse_installed(dpkg_query_output: &str) -> BTreeSet<String> {
    dpkg_query_output
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            let status = fields.next()?;
            (status.chars().nth(1) == Some('i')).then(|| name.to_owned())
        })
        .collect()
}

fn install(missing: &[Package]) -> Result<()> {
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    println!(
        "deps: installing {} missing Debian package(s): {}",
        names.len(),
        names.join(" ")
    );
    for p in missing {
        println!("  {:<18} ({}) {}", p.name, p.need.describe(), p.why);
    }
    let sudo = privilege_prefix()?;

    println!("deps: apt-get update");
    // A failing extra source (a third-party repository out of reach) makes update exit non-zero
    // while Debian's own lists are fine: go on, the install below says if something is really wrong.
    let status = apt(&sudo, &["update"])
        .status()
        .context("could not run apt-get update")?;
    if !status.success() {
        println!("deps: apt-get update reported errors ({status}); trying the install anyway");
    }

    println!(
        "deps: apt-get install -y --no-install-recommends {}",
        names.join(" ")
    );
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(&names);
    let status = apt(&sudo, &args)
        .status()
        .context("could not run apt-get install")?;
    if !status.success() {
        bail!(
            "apt-get install failed ({status}); install these Debian packages by hand: {}",
            names.join(" ")
        );
    }
    let still_missing = missing_packages()?;
    if !still_missing.is_empty() {
        let names: Vec<&str> = still_missing.iter().map(|p| p.name).collect();
        bail!(
            "still not installed after apt-get install: {}",
            names.join(" ")
        );
    }
    println!(
        "deps: done, all {} Debian packages are installed",
        PACKAGES.len()
    );
    Ok(())
}

/// `[]` as root, `["sudo"]` otherwise.
fn privilege_prefix() -> Result<Vec<&'static str>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return Ok(Vec::new());
    }
    let have_sudo = Command::new("sudo")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_sudo {
        bail!(
            "installing Debian packages needs root, and sudo is not installed: run `cargo xtask deps` as root"
        );
    }
    Ok(vec!["sudo"])
}

fn apt(sudo: &[&str], args: &[&str]) -> Command {
    let mut cmd = match sudo.first() {
        Some(prefix) => {
            let mut cmd = Command::new(prefix);
            // sudo drops most of the environment: pass the front-end choice explicitly.
            cmd.arg("DEBIAN_FRONTEND=noninteractive").arg("apt-get");
            cmd
        }
        None => Command::new("apt-get"),
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .args(args)
        .stdin(Stdio::null());
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dpkg_query_states() {
        // As printed by dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' (abbrev is 3 chars, the
        // last often a space), including a multi-arch package listed twice.
        let out = "pkg-config ii \nqemu-utils un \nfoot rc \nweston hi \nlibdrm-dev iU \n\
                   libgbm-dev ii \nlibgbm-dev un \nerofs-utils ii";
        let installed = parse_installed(out);
        let expected: BTreeSet<String> = ["pkg-config", "weston", "libgbm-dev", "erofs-utils"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(installed, expected);
    }

    #[test]
    fn parse_ignores_noise() {
        assert!(parse_installed("").is_empty());
        assert!(parse_installed("\n  \nlonely\n").is_empty());
    }

    #[test]
    fn package_table_is_sane() {
        let mut seen = BTreeSet::new();
        for p in PACKAGES {
            assert!(seen.insert(p.name), "{} listed twice", p.name);
            assert!(!p.why.is_empty(), "{} has no reason", p.name);
            assert!(
                p.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)),
                "{} is not a Debian package name",
                p.name
            );
        }
        for needed in [
            "qemu-system-x86",
            "erofs-utils",
            "e2fsprogs",
            "libpixman-1-dev",
            "pkg-config",
        ] {
            assert!(seen.contains(needed), "{needed} missing from the table");
        }
        for not_needed in ["dpkg-dev"] {
            assert!(
                !seen.contains(not_needed),
                "{not_needed} is deliberately not installed"
            );
        }
    }

    #[test]
    fn apt_command_shape() {
        let cmd = apt(&["sudo"], &["install", "-y", "x"]);
        assert_eq!(cmd.get_program(), "sudo");
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "install",
                "-y",
                "x"
            ]
        );
        let cmd = apt(&[], &["update"]);
        assert_eq!(cmd.get_program(), "apt-get");
    }
}
