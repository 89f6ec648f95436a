//! Kernel modules: reading `.modinfo` from `.ko` files and ordering a device's early modules.
//!
//! Debian's kernel package ships no `modules.dep`/`modules.alias` (depmod writes them at install
//! time), so the builder reads each module's `.modinfo` ELF section itself: `name=`, `depends=`
//! (hard dependencies, by module name), `softdep=pre: …` (modules or aliases to load first, e.g.
//! `crypto-crc32c` for ext4) and `alias=`. Names compare as the kernel does: `-` equals `_`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use object::read::elf::{FileHeader as _, SectionHeader as _};
use serde::{Deserialize, Serialize};

/// What the builder needs to know about one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// Normalized module name (`virtio_gpu`).
    pub name: String,
    /// Path relative to `lib/modules/<kver>/` (`kernel/drivers/gpu/drm/virtio/virtio-gpu.ko`).
    pub path: String,
    pub depends: Vec<String>,
    pub softdep_pre: Vec<String>,
    pub aliases: Vec<String>,
}

impl ModuleInfo {
    /// The file name (`virtio-gpu.ko`): modules are flat in the initramfs.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// The fields of a `.modinfo` section that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    pub name: Option<String>,
    pub depends: Vec<String>,
    pub softdep_pre: Vec<String>,
    pub softdep_post: Vec<String>,
    pub aliases: Vec<String>,
}

/// Parses the contents of a `.modinfo` section: NUL-separated `key=value` strings.
pub fn parse_modinfo(section: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for entry in section.split(|&b| b == 0) {
        let Ok(entry) = std::str::from_utf8(entry) else {
            continue;
        };
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        match key {
            "name" => info.name = Some(normalize(value)),
            "depends" => info
                .depends
                .extend(value.split(',').filter(|s| !s.is_empty()).map(normalize)),
            "alias" => info.aliases.push(value.to_string()),
            "softdep" => {
                let mut post = false;
                for token in value.split_whitespace() {
                    match token {
                        "pre:" => post = false,
                        "post:" => post = true,
                        name if post => info.softdep_post.push(name.to_string()),
                        name => info.softdep_pre.push(name.to_string()),
                    }
                }
            }
            _ => {}
        }
    }
    info
}

/// Reads the `.modinfo` section of a `.ko` file.
pub fn read_modinfo(path: &Path) -> anyhow::Result<ModInfo> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    modinfo_of_elf(&data).with_context(|| format!("{} is not a kernel module", path.display()))
}

fn modinfo_of_elf(data: &[u8]) -> anyhow::Result<ModInfo> {
    let header = object::elf::FileHeader64::<object::Endianness>::parse(data)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, data)?;
    let (_, section) = sections
        .section_by_name(endian, b".modinfo")
        .context("no .modinfo section")?;
    Ok(parse_modinfo(section.data(endian, data)?))
}

/// Kernel module names treat `-` and `_` alike; the kernel uses `_`.
pub fn normalize(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// Every module of one kernel, plus what is built in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModuleIndex {
    /// By normalized name.
    pub modules: BTreeMap<String, ModuleInfo>,
    /// Normalized names of built-in modules (`modules.builtin`).
    pub builtin: BTreeSet<String>,
    /// Aliases of built-in modules (`modules.builtin.modinfo`): (alias, module).
    pub builtin_aliases: Vec<(String, String)>,
}

impl ModuleIndex {
    /// Scans `lib/modules/<kver>/` of an unpacked kernel package.
    pub fn scan(modules_dir: &Path) -> anyhow::Result<ModuleIndex> {
        let mut index = ModuleIndex::default();
        let mut files = Vec::new();
        collect_ko(&modules_dir.join("kernel"), &mut files)?;
        for file in files {
            let info = read_modinfo(&file)?;
            let rel = file
                .strip_prefix(modules_dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            let stem = file
                .file_stem()
                .map(|s| normalize(&s.to_string_lossy()))
                .unwrap_or_default();
            let name = info.name.unwrap_or(stem);
            index.modules.insert(
                name.clone(),
                ModuleInfo {
                    name,
                    path: rel,
                    depends: info.depends,
                    softdep_pre: info.softdep_pre,
                    aliases: info.aliases,
                },
            );
        }
        if let Ok(text) = std::fs::read_to_string(modules_dir.join("modules.builtin")) {
            for line in text.lines() {
                if let Some(stem) = Path::new(line.trim()).file_stem() {
                    index.builtin.insert(normalize(&stem.to_string_lossy()));
                }
            }
        }
        if let Ok(bytes) = std::fs::read(modules_dir.join("modules.builtin.modinfo")) {
            for entry in bytes.split(|&b| b == 0) {
                let entry = String::from_utf8_lossy(entry);
                // "module.key=value"
                if let Some((module, rest)) = entry.split_once('.')
                    && let Some(alias) = rest.strip_prefix("alias=")
                {
                    index
                        .builtin_aliases
                        .push((alias.to_string(), normalize(module)));
                }
            }
        }
        Ok(index)
    }

    /// Modules providing `alias` (a glob pattern in each module's `alias=`), sorted by name.
    fn modules_with_alias(&self, alias: &str) -> Vec<&ModuleInfo> {
        let wanted = normalize(alias);
        self.modules
            .values()
            .filter(|m| {
                m.aliases
                    .iter()
                    .any(|pattern| glob_match(&normalize(pattern), &wanted))
            })
            .collect()
    }

    fn builtin_provides(&self, name: &str) -> bool {
        let wanted = normalize(name);
        self.builtin.contains(&wanted)
            || self
                .builtin_aliases
                .iter()
                .any(|(pattern, _)| glob_match(&normalize(pattern), &wanted))
    }
}

fn collect_ko(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_ko(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "ko") {
            out.push(path);
        }
    }
    Ok(())
}

/// fnmatch(3) without flags: `*`, `?` and `[…]` classes (as module aliases use).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob(&p, &t)
}

fn glob(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob(&p[1..], &t[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(2).position(|&c| c == ']').map(|i| i + 2) else {
                return t.first() == Some(&'[') && glob(&p[1..], &t[1..]);
            };
            let Some(&c) = t.first() else { return false };
            let mut class = &p[1..close];
            let negate = matches!(class.first(), Some('!' | '^'));
            if negate {
                class = &class[1..];
            }
            let mut found = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    found |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    found |= class[i] == c;
                    i += 1;
                }
            }
            found != negate && glob(&p[close + 1..], &t[1..])
        }
        Some(&c) => t.first() == Some(&c) && glob(&p[1..], &t[1..]),
    }
}

/// The device's early modules in load order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleOrder {
    /// Dependencies first; otherwise in the order the device lists them.
    pub modules: Vec<ModuleInfo>,
    /// Wanted modules that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
    /// Soft dependencies nothing provides (logged; modprobe ignores them too).
    pub warnings: Vec<String>,
}

/// Why the wanted modules cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error(
        "module `{0}` is neither a module of this kernel nor built into it; check the spelling (`-` and `_` are the same) or remove it"
    )]
    Unknown(String),
    #[error("module `{module}` depends on `{missing}`, which this kernel package does not contain")]
    MissingDependency { module: String, missing: String },
    #[error("module dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Visiting,
    Done,
}

/// Orders `wanted` and everything it needs: for each wanted module in turn, its soft
/// pre-dependencies, then its hard dependencies (each recursively, in the order `.modinfo` lists
/// them), then the module itself. A module appears once, at its first position.
pub fn order_modules(index: &ModuleIndex, wanted: &[String]) -> Result<ModuleOrder, ModuleError> {
    struct Walk<'a> {
        index: &'a ModuleIndex,
        marks: BTreeMap<String, Mark>,
        stack: Vec<String>,
        order: ModuleOrder,
    }

    impl Walk<'_> {
        fn visit(&mut self, name: &str) -> Result<(), ModuleError> {
            let Some(info) = self.index.modules.get(name) else {
                // Callers resolve names first; a missing one here is a hard dependency.
                return Err(ModuleError::MissingDependency {
                    module: self.stack.last().cloned().unwrap_or_default(),
                    missing: name.to_string(),
                });
            };
            match self.marks.get(name) {
                Some(Mark::Done) => return Ok(()),
                Some(Mark::Visiting) => {
                    let start = self.stack.iter().position(|n| n == name).unwrap_or(0);
                    let mut cycle = self.stack[start..].to_vec();
                    cycle.push(name.to_string());
                    return Err(ModuleError::Cycle(cycle));
                }
                None => {}
            }
            self.marks.insert(name.to_string(), Mark::Visiting);
            self.stack.push(name.to_string());
            for soft in &info.softdep_pre {
                let targets = self.resolve_soft(soft, name);
                for target in targets {
                    self.visit(&target)?;
                }
            }
            for dep in &info.depends {
                let dep = normalize(dep);
                if self.index.modules.contains_key(&dep) {
                    self.visit(&dep)?;
                } else if !self.index.builtin_provides(&dep) {
                    return Err(ModuleError::MissingDependency {
                        module: name.to_string(),
                        missing: dep,
                    });
                }
            }
            self.stack.pop();
            self.marks.insert(name.to_string(), Mark::Done);
            self.order.modules.push(info.clone());
            Ok(())
        }

        /// Modules to load for soft dependency `soft` (a module name or an alias).
        fn resolve_soft(&mut self, soft: &str, of: &str) -> Vec<String> {
            let name = normalize(soft);
            if self.index.modules.contains_key(&name) {
                return vec![name];
            }
            if self.index.builtin_provides(soft) {
                return Vec::new();
            }
            let found: Vec<String> = self
                .index
                .modules_with_alias(soft)
                .iter()
                .map(|m| m.name.clone())
                .collect();
            if found.is_empty() {
                self.order.warnings.push(format!(
                    "soft dependency `{soft}` of `{of}` is provided by no module; ignored"
                ));
            }
            found
        }
    }

    let mut walk = Walk {
        index,
        marks: BTreeMap::new(),
        stack: Vec::new(),
        order: ModuleOrder::default(),
    };
    for want in wanted {
        let name = normalize(want);
        if index.modules.contains_key(&name) {
            walk.visit(&name)?;
        } else if index.builtin_provides(&name) {
            if !walk.order.builtin.contains(&name) {
                walk.order.builtin.push(name);
            }
        } else {
            let providers: Vec<String> = index
                .modules_with_alias(want)
                .iter()
                .map(|m| m.name.clone())
                .collect();
            if providers.is_empty() {
                return Err(ModuleError::Unknown(want.clone()));
            }
            for p in providers {
                walk.visit(&p)?;
            }
        }
    }
    Ok(walk.order)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn module(
        name: &str,
        file: &str,
        depends: &[&str],
        softdep_pre: &[&str],
        aliases: &[&str],
    ) -> ModuleInfo {
        ModuleInfo {
            name: name.to_string(),
            path: format!("kernel/{file}"),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            softdep_pre: softdep_pre.iter().map(|s| s.to_string()).collect(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn index(modules: Vec<ModuleInfo>) -> ModuleIndex {
        ModuleIndex {
            modules: modules.into_iter().map(|m| (m.name.clone(), m)).collect(),
            ..Default::default()
        }
    }

    fn names(order: &ModuleOrder) -> Vec<&str> {
        order.modules.iter().map(|m| m.name.as_str()).collect()
    }

    fn wanted(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Shaped like the Debian 6.1 kernel's virtio/erofs/ext4 modules.
    fn debian_like() -> ModuleIndex {
        let mut idx = index(vec![
            module("virtio_ring", "virtio_ring.ko", &[], &[], &[]),
            module("virtio", "virtio.ko", &[], &[], &[]),
            module(
                "virtio_blk",
                "virtio_blk.ko",
                &["virtio", "virtio_ring"],
                &[],
                &["virtio:d00000002v*"],
            ),
            module(
                "virtio_pci_modern_dev",
                "virtio_pci_modern_dev.ko",
                &[],
                &[],
                &[],
            ),
            module(
                "virtio_pci",
                "virtio_pci.ko",
                &[
                    "virtio_pci_modern_dev",
                    "virtio_pci_legacy_dev",
                    "virtio",
                    "virtio_ring",
                ],
                &[],
                &[],
            ),
            module(
                "virtio_pci_legacy_dev",
                "virtio_pci_legacy_dev.ko",
                &[],
                &[],
                &[],
            ),
            module("drm", "drm.ko", &[], &[], &[]),
            module(
                "virtio_gpu",
                "virtio-gpu.ko",
                &["drm", "virtio", "virtio_ring"],
                &[],
                &[],
            ),
            module(
                "crc32c_generic",
                "crc32c_generic.ko",
                &[],
                &[],
                &["crc32c-generic", "crc32c", "crypto-crc32c"],
            ),
            module(
                "crc32c_intel",
                "crc32c-intel.ko",
                &[],
                &[],
                &["crc32c-intel", "crc32c", "crypto-crc32c"],
            ),
            module("libcrc32c", "libcrc32c.ko", &[], &["crc32c"], &[]),
            module("erofs", "erofs.ko", &["libcrc32c"], &[], &["fs-erofs"]),
            module("jbd2", "jbd2.ko", &[], &[], &[]),
            module("mbcache", "mbcache.ko", &[], &[], &[]),
            module(
                "ext4",
                "ext4.ko",
                &["jbd2", "mbcache", "crc16"],
                &["crypto-crc32c"],
                &["fs-ext4"],
            ),
        ]);
        idx.builtin.insert("crc16".to_string());
        idx
    }

    #[test]
    fn dependencies_come_first_in_listed_order() {
        let idx = debian_like();
        let order =
            order_modules(&idx, &wanted(&["virtio_pci", "virtio_blk", "virtio-gpu"])).unwrap();
        assert_eq!(
            names(&order),
            [
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio",
                "virtio_ring",
                "virtio_pci",
                "virtio_blk",
                "drm",
                "virtio_gpu"
            ]
        );
        assert_eq!(order.modules[7].file_name(), "virtio-gpu.ko");
    }

    #[test]
    fn softdeps_through_aliases_and_builtins() {
        let idx = debian_like();
        let order = order_modules(&idx, &wanted(&["erofs", "ext4"])).unwrap();
        // libcrc32c's softdep "crc32c" is an alias of two modules: both load, before libcrc32c.
        // ext4's "crypto-crc32c" is already satisfied; crc16 is built in.
        assert_eq!(
            names(&order),
            [
                "crc32c_generic",
                "crc32c_intel",
                "libcrc32c",
                "erofs",
                "jbd2",
                "mbcache",
                "ext4"
            ]
        );
        assert!(order.warnings.is_empty(), "{:?}", order.warnings);
    }

    #[test]
    fn wanted_builtin_and_unknown() {
        let idx = debian_like();
        let order = order_modules(&idx, &wanted(&["crc16", "virtio_ring"])).unwrap();
        assert_eq!(order.builtin, ["crc16"]);
        assert_eq!(names(&order), ["virtio_ring"]);
        assert_eq!(
            order_modules(&idx, &wanted(&["nosuch"])),
            Err(ModuleError::Unknown("nosuch".into()))
        );
        // A wanted alias works like modprobe: "fs-erofs" is erofs.
        let order = order_modules(&idx, &wanted(&["fs-erofs"])).unwrap();
        assert_eq!(names(&order).last(), Some(&"erofs"));
    }

    #[test]
    fn missing_hard_dependency_and_soft_warning() {
        let idx = index(vec![
            module("a", "a.ko", &["gone"], &[], &[]),
            module("b", "b.ko", &[], &["nothing-provides-this"], &[]),
        ]);
        assert_eq!(
            order_modules(&idx, &wanted(&["a"])),
            Err(ModuleError::MissingDependency {
                module: "a".into(),
                missing: "gone".into()
            })
        );
        let order = order_modules(&idx, &wanted(&["b"])).unwrap();
        assert_eq!(names(&order), ["b"]);
        assert_eq!(order.warnings.len(), 1);
        assert!(order.warnings[0].contains("nothing-provides-this"));
    }

    #[test]
    fn cycles_are_reported() {
        let idx = index(vec![
            module("a", "a.ko", &["b"], &[], &[]),
            module("b", "b.ko", &["c"], &[], &[]),
            module("c", "c.ko", &[], &["a"], &[]),
        ]);
        let err = order_modules(&idx, &wanted(&["a"])).unwrap_err();
        assert_eq!(
            err,
            ModuleError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(err.to_string(), "module dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn parses_modinfo_sections() {
        let raw = b"softdep=pre: crypto-crc32c post: foo\0alias=fs-ext4\0depends=jbd2,mbcache,crc16\0\0name=ext4\0vermagic=6.1\0";
        let info = parse_modinfo(raw);
        assert_eq!(info.name.as_deref(), Some("ext4"));
        assert_eq!(info.depends, ["jbd2", "mbcache", "crc16"]);
        assert_eq!(info.softdep_pre, ["crypto-crc32c"]);
        assert_eq!(info.softdep_post, ["foo"]);
        assert_eq!(info.aliases, ["fs-ext4"]);
        let empty = parse_modinfo(b"depends=\0name=virtio-gpu\0");
        assert!(empty.depends.is_empty());
        assert_eq!(empty.name.as_deref(), Some("virtio_gpu"));
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "pci:v00001AF4d*sv*",
            "pci:v00001AF4d00001050sv1"
        ));
        assert!(glob_match("crc32c", "crc32c"));
        assert!(!glob_match("crc32c", "crc32"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("x[0-9]y", "x5y"));
        assert!(!glob_match("x[!0-9]y", "x5y"));
        assert!(!glob_match("*b", "aaa"));
    }

    #[test]
    fn reads_modinfo_from_a_real_elf_object() {
        // A .ko is an ELF relocatable object; any ELF without .modinfo must be rejected.
        let err = read_modinfo(Path::new("/bin/true")).unwrap_err();
        assert!(
            format!("{err:#}").contains("no .modinfo section"),
            "{err:#}"
        );
    }
}
