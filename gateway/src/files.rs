//! Modes of the data folder and the secrets in it, whatever the process umask.
//!
//! The folder is 0700; the SQLite database (with its `-wal`, `-shm` and `-journal` files), the
//! secret key and the generated TLS key are 0600. Files and folders made by an older version, or
//! by hand, with looser modes are tightened at start, with a warning. A folder that holds files
//! other than Portico's is left alone (it may be a shared folder such as the working directory
//! or `/tmp`: changing it would lock others out), with a warning saying what to do instead; so
//! is a folder or file whose mode this process may not change (another owner).

use std::io;
use std::path::Path;

/// Owner read, write and search only.
pub const DIR_MODE: u32 = 0o700;
/// Owner read and write only.
pub const FILE_MODE: u32 = 0o600;

/// What Portico keeps in its data folder: a folder holding only these (and the database's own
/// files) is Portico's to tighten.
const DATA_FILES: &[&str] = &[
    "secret.key",
    "tls-ca.crt",
    "tls.crt",
    "tls.key",
    "plugin-cache",
];

/// Creates `dir` (and its parents) if missing, as 0700; tightens it to 0700 when it is looser
/// and holds nothing but Portico's files (`database` names the database file in it).
pub fn private_dir(dir: &Path, database: Option<&str>) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        // The working directory: not ours to change.
        return Ok(());
    }
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => tighten_dir(dir, database),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a folder",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
            match builder.create(dir) {
                Ok(()) => set_mode(dir, DIR_MODE),
                // Created meanwhile by another process: treat it as existing.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten_dir(dir, database),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates Portico's own folder `dir` (the compile cache) as 0700 if missing, or makes an
/// existing one 0700: it holds nothing but what Portico wrote there.
pub fn own_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    match mode_of(dir)? {
        Some(mode) if mode & 0o077 != 0 => set_mode(dir, DIR_MODE),
        _ => Ok(()),
    }
}

/// Creates the empty file `path` as 0600 if missing (so that whoever opens it next, SQLite
/// included, finds it private), or tightens it to 0600.
pub fn private_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    match options.open(path) {
        // The umask may have taken bits away (0400): make it exactly 0600.
        Ok(_) => set_mode(path, FILE_MODE),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten_file(path),
        Err(e) => Err(e),
    }
}

/// Tightens `path` to 0600 if it exists with group or other bits, with a warning.
pub fn tighten_file(path: &Path) -> io::Result<()> {
    let Some(mode) = mode_of(path)? else {
        return Ok(());
    };
    if mode & 0o077 != 0 {
        if let Err(e) = set_mode(path, FILE_MODE) {
            // Not ours to change (another owner): say so rather than refuse to start.
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:04o}"),
                error = %e,
                "a private file is open to other users and its mode cannot be changed"
            );
            return Ok(());
        }
        tracing::warn!(
            path = %path.display(),
            from = %format!("{mode:04o}"),
            to = %format!("{FILE_MODE:04o}"),
            "tightened the mode of a private file"
        );
    }
    Ok(())
}

fn tighten_dir(dir: &Path, database: Option<&str>) -> io::Result<()> {
    let Some(mode) = mode_of(dir)? else {
        return Ok(());
    };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    if !holds_only_portico_files(dir, database)? {
        tracing::warn!(
            path = %dir.display(),
            mode = %format!("{mode:04o}"),
            "the data folder is open to other users and holds other files, so Portico leaves \
             its mode alone (its own files are 0600); give Portico a folder of its own, or \
             `chmod 700` this one"
        );
        return Ok(());
    }
    if let Err(e) = set_mode(dir, DIR_MODE) {
        tracing::warn!(
            path = %dir.display(),
            mode = %format!("{mode:04o}"),
            error = %e,
            "the data folder is open to other users and its mode cannot be changed"
        );
        return Ok(());
    }
    tracing::warn!(
        path = %dir.display(),
        from = %format!("{mode:04o}"),
        to = %format!("{DIR_MODE:04o}"),
        "tightened the mode of the data folder"
    );
    Ok(())
}

fn holds_only_portico_files(dir: &Path, database: Option<&str>) -> io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let database_file = database.is_some_and(|db| {
            name == db
                || ["-wal", "-shm", "-journal"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(db))
        });
        if !database_file && !DATA_FILES.contains(&name.as_ref()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The permission bits of `path`, `None` when it does not exist.
fn mode_of(path: &Path) -> io::Result<Option<u32>> {
    match std::fs::metadata(path) {
        #[cfg(unix)]
        Ok(meta) => Ok(Some(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        )),
        #[cfg(not(unix))]
        Ok(_) => Ok(Some(0)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests;
