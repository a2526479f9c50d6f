//! Files and directories that hold secrets: the node key, the admin token,
//! the store (run-time agents keep their environment and tokens there).
//!
//! A secret file is created with mode 0600 from its first byte, next to its
//! final name, synced, and hard-linked into place: a crash leaves either no
//! file or a whole one, and an existing file is never replaced. It is read
//! through the handle whose mode was checked (so a swap between check and
//! read cannot slip another file in), and refused when group or others have
//! any access. Directories for secrets are created 0700.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why a secret file could not be created or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already exists; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error(
        "{path} has mode {mode:04o}; group and others must have no access (run: chmod 600 {path})"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is longer than {max} bytes")]
    TooLong { path: PathBuf, max: u64 },
}

impl SecretFileError {
    /// The file was simply not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SecretFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Creates `dir` and its missing parents with mode 0700. An existing
/// directory keeps its mode (see [`tighten_dir`]).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `dir` (0700) if needed and, if it exists with access for group
/// or others, takes that access away. Returns the mode it had when it was
/// changed, so the caller can say so.
pub fn tighten_dir(dir: &Path) -> std::io::Result<Option<u32>> {
    create_private_dir(dir)?;
    let mode = fs::metadata(dir)?.mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700))?;
    Ok(Some(mode))
}

/// Whether group or others have any access to the file at `path`
/// (`None` when it cannot be read).
pub fn readable_by_others(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Writes a new secret file holding `bytes`. Never overwrites: an existing
/// file is [`SecretFileError::Exists`]. Creates the parent directory (mode
/// 0700) if needed.
pub fn create(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = parent {
        create_private_dir(dir).map_err(io)?;
    }
    if path.exists() {
        return Err(SecretFileError::Exists {
            path: path.to_path_buf(),
        });
    }
    let tmp = tmp_path(path);
    let written = (|| {
        // The mode is set when the file is created, so the secret is never
        // readable by others, not even for an instant.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    // hard_link fails if `path` exists: an atomic "create, never replace".
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(SecretFileError::Exists {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io(e)),
    }
    if let Some(dir) = parent {
        // Make the new directory entry durable; best effort, as some file
        // systems refuse to sync a directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads a secret file of at most `max` bytes, refusing one that group or
/// others can access.
pub fn read(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SecretFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(SecretFileError::TooLong {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(bytes)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_file_is_0600_in_a_0700_directory_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret");
        create(&path, b"hush").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let d = fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(d, 0o700);
        assert_eq!(read(&path, 16).unwrap().as_slice(), b"hush");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn create_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        create(&path, b"one").unwrap();
        assert!(matches!(
            create(&path, b"two"),
            Err(SecretFileError::Exists { .. })
        ));
        assert_eq!(read(&path, 16).unwrap().as_slice(), b"one");
    }

    #[test]
    fn read_refuses_open_modes_long_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        create(&path, b"0123456789").unwrap();
        assert!(matches!(
            read(&path, 4),
            Err(SecretFileError::TooLong { max: 4, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(&path, 64).unwrap_err();
        assert!(matches!(e, SecretFileError::TooOpen { mode: 0o644, .. }));
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert_eq!(readable_by_others(&path), Some(0o644));
        assert!(matches!(
            read(dir.path(), 64),
            Err(SecretFileError::NotAFile { .. }) | Err(SecretFileError::TooOpen { .. })
        ));
        assert!(
            read(&dir.path().join("none"), 4)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn tighten_dir_removes_group_and_other_access() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("store");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(tighten_dir(&d).unwrap(), Some(0o755));
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        assert_eq!(tighten_dir(&d).unwrap(), None);
        let fresh = dir.path().join("a").join("b");
        assert_eq!(tighten_dir(&fresh).unwrap(), None);
        assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
    }
}
