//! Helpers shared by the integration tests of several crates.
//!
//! [`apk`] builds real APKs with Debian's Android tools (the APK parser's, the CLI's and the app
//! manager's tests use the same builder); [`dbus::PrivateBus`] runs a private dbus-daemon.
//!
//! Tests that run a program as another uid (an app's uid, `nobody`) cannot exec it from the cargo
//! target directory when that lives under a private home (`/root` is mode 0700 on Debian, and CI
//! keeps its target directory under `$HOME/.cache`). [`ExecutableCopy`] puts a copy where any uid
//! can run it.

pub mod apk;
pub mod dbus;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A copy of an executable in a fresh directory that every uid may traverse; removed on drop.
#[derive(Debug)]
pub struct ExecutableCopy {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ExecutableCopy {
    /// Copies `program` into a new world-traversable temporary directory, mode 0755.
    ///
    /// # Errors
    /// When the temporary directory cannot be made or the copy fails.
    pub fn new(program: impl AsRef<Path>) -> io::Result<Self> {
        let program = program.as_ref();
        let dir = tempfile::Builder::new()
            .prefix("cirrus-test-bin")
            .tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let name = program.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", program.display()),
            )
        })?;
        let path = dir.path().join(name);
        std::fs::copy(program, &path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self { _dir: dir, path })
    }

    /// Where the copy is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn copy_is_world_executable_in_a_world_traversable_dir() {
        let copy = ExecutableCopy::new("/bin/true").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(copy.path()), 0o755);
        assert_eq!(mode(copy.path().parent().unwrap()), 0o755);
        assert!(
            std::process::Command::new(copy.path())
                .status()
                .unwrap()
                .success()
        );
        let dir = copy.path().parent().unwrap().to_path_buf();
        drop(copy);
        assert!(!dir.exists());
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let err = ExecutableCopy::new("/").unwrap_err();
        assert!(err.to_string().contains("names no file"), "{err}");
    }
}
