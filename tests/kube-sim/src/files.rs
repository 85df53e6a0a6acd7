//! In-memory file trees, one per container (keyed by the pod's uid too, so a pod created again
//! under the same name starts empty), for the commands `kubectl cp` runs through exec
//! (`tar cf - PATH`, `tar -xmf - -C DIR`, `test -d PATH`) and for `cat`, `ls`, `mkdir`, `rm`.
//!
//! A tree starts with `/`, `/tmp`, `/etc` (holding `hostname`), `/root` and `/var`. Paths are
//! absolute after normalising against `/` (the working directory of every exec). No owners,
//! links, devices or times: modes are kept, everything else is dropped.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Errors of file operations, worded as GNU coreutils and tar print them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// No such file or directory.
    #[error("{0}: No such file or directory")]
    NotFound(String),
    /// A directory where a file was wanted.
    #[error("{0}: Is a directory")]
    IsDir(String),
    /// A file where a directory was wanted.
    #[error("{0}: Not a directory")]
    NotDir(String),
    /// The path exists.
    #[error("{0}: File exists")]
    Exists(String),
    /// A tar stream that does not parse.
    #[error("This does not look like a tar archive ({0})")]
    BadArchive(String),
}

/// One entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory with its permission bits.
    Dir {
        /// Mode bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Contents.
        data: Bytes,
        /// Mode bits.
        mode: u32,
    },
}

/// One container's files: absolute normalised paths to entries.
#[derive(Clone, Debug)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

/// Makes `path` absolute (relative to `/`) and resolves `.` and `..`.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn join(dir: &str, name: &str) -> String {
    normalize(&format!("{dir}/{name}"))
}

impl Tree {
    /// A fresh container filesystem.
    pub fn new(hostname: &str) -> Self {
        let mut entries = BTreeMap::new();
        for d in ["/", "/tmp", "/etc", "/root", "/var"] {
            entries.insert(
                d.to_string(),
                Entry::Dir {
                    mode: if d == "/tmp" { 0o1777 } else { 0o755 },
                },
            );
        }
        entries.insert(
            "/etc/hostname".into(),
            Entry::File {
                data: Bytes::from(format!("{hostname}\n")),
                mode: 0o644,
            },
        );
        Self { entries }
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&normalize(path))
    }

    /// Whether `path` is a directory.
    pub fn is_dir(&self, path: &str) -> bool {
        matches!(self.get(path), Some(Entry::Dir { .. }))
    }

    /// A file's contents.
    pub fn read(&self, path: &str) -> Result<Bytes, Error> {
        match self.get(path) {
            Some(Entry::File { data, .. }) => Ok(data.clone()),
            Some(Entry::Dir { .. }) => Err(Error::IsDir(path.to_string())),
            None => Err(Error::NotFound(path.to_string())),
        }
    }

    /// Writes a file; its directory must exist.
    pub fn write(&mut self, path: &str, data: Bytes, mode: u32) -> Result<(), Error> {
        let p = normalize(path);
        if !self.is_dir(parent(&p)) {
            return Err(Error::NotFound(path.to_string()));
        }
        if self.is_dir(&p) {
            return Err(Error::IsDir(path.to_string()));
        }
        self.entries.insert(p, Entry::File { data, mode });
        Ok(())
    }

    /// Creates a directory and, with `parents`, the missing ones above it (`mkdir [-p]`).
    pub fn mkdir(&mut self, path: &str, parents: bool) -> Result<(), Error> {
        let p = normalize(path);
        match self.entries.get(&p) {
            Some(Entry::Dir { .. }) if parents => return Ok(()),
            Some(_) => return Err(Error::Exists(path.to_string())),
            None => {}
        }
        let up = parent(&p).to_string();
        match self.entries.get(&up) {
            Some(Entry::Dir { .. }) => {}
            Some(Entry::File { .. }) => return Err(Error::NotDir(path.to_string())),
            None if parents => self.mkdir(&up, true)?,
            None => return Err(Error::NotFound(path.to_string())),
        }
        self.entries.insert(p, Entry::Dir { mode: 0o755 });
        Ok(())
    }

    /// Removes a path; directories only with `recursive` (`rm [-r]`).
    pub fn remove(&mut self, path: &str, recursive: bool) -> Result<(), Error> {
        let p = normalize(path);
        match self.entries.get(&p) {
            None => Err(Error::NotFound(path.to_string())),
            Some(Entry::Dir { .. }) if !recursive => Err(Error::IsDir(path.to_string())),
            Some(_) => {
                let prefix = format!("{p}/");
                self.entries
                    .retain(|k, _| k != &p && !k.starts_with(&prefix));
                self.entries
                    .entry("/".into())
                    .or_insert(Entry::Dir { mode: 0o755 });
                Ok(())
            }
        }
    }

    /// Names directly inside a directory, sorted.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, Error> {
        let p = normalize(dir);
        match self.entries.get(&p) {
            None => return Err(Error::NotFound(dir.to_string())),
            Some(Entry::File { .. }) => return Err(Error::NotDir(dir.to_string())),
            Some(Entry::Dir { .. }) => {}
        }
        let prefix = if p == "/" { p.clone() } else { format!("{p}/") };
        Ok(self
            .entries
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }

    /// `tar cf - PATHS…`: an archive of the paths (directories recursively) with GNU tar's
    /// member names (the leading `/` removed). Missing paths are reported and skipped, as
    /// GNU tar does before exiting with status 2.
    pub fn tar(&self, paths: &[String]) -> (Vec<u8>, Vec<Error>) {
        let mut b = tar::Builder::new(Vec::new());
        let mut errors = Vec::new();
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        for given in paths {
            let root = normalize(given);
            if !self.entries.contains_key(&root) {
                errors.push(Error::NotFound(given.clone()));
                continue;
            }
            let prefix = format!("{}/", root.trim_end_matches('/'));
            for (path, entry) in self
                .entries
                .range(root.clone()..)
                .take_while(|(k, _)| **k == root || k.starts_with(&prefix) || root == "/")
            {
                let name = path.trim_start_matches('/');
                let mut h = tar::Header::new_gnu();
                h.set_mtime(now);
                h.set_uid(0);
                h.set_gid(0);
                let result = match entry {
                    Entry::Dir { mode } => {
                        if name.is_empty() {
                            continue;
                        }
                        h.set_entry_type(tar::EntryType::Directory);
                        h.set_mode(*mode);
                        h.set_size(0);
                        b.append_data(&mut h, format!("{name}/"), std::io::empty())
                    }
                    Entry::File { data, mode } => {
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_mode(*mode);
                        h.set_size(data.len() as u64);
                        b.append_data(&mut h, name, &data[..])
                    }
                };
                if let Err(e) = result {
                    errors.push(Error::BadArchive(e.to_string()));
                }
            }
        }
        let out = b.into_inner().unwrap_or_default();
        (out, errors)
    }

    /// `tar xf - -C DIR`: unpacks an archive below `dir`, creating missing directories.
    /// Links and special files are skipped. Returns the names skipped.
    pub fn untar(&mut self, archive: &[u8], dir: &str) -> Result<Vec<String>, Error> {
        if !self.is_dir(dir) {
            return Err(Error::NotFound(dir.to_string()));
        }
        let mut skipped = Vec::new();
        let mut a = tar::Archive::new(archive);
        let entries = a.entries().map_err(|e| Error::BadArchive(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::BadArchive(e.to_string()))?;
            let name = entry
                .path()
                .map_err(|e| Error::BadArchive(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            // GNU tar refuses members that climb out of the target.
            if name.split('/').any(|p| p == "..") {
                skipped.push(name);
                continue;
            }
            let target = join(dir, &name);
            let mode = entry.header().mode().unwrap_or(0o644);
            match entry.header().entry_type() {
                tar::EntryType::Directory => self.mkdir(&target, true)?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut data = Vec::new();
                    entry
                        .read_to_end(&mut data)
                        .map_err(|e| Error::BadArchive(e.to_string()))?;
                    self.mkdir(parent(&target), true)?;
                    self.write(&target, data.into(), mode)?;
                }
                _ => skipped.push(name),
            }
        }
        Ok(skipped)
    }
}

type Key = (String, String, String, String);

/// Every container's tree, created on first use.
#[derive(Debug, Default)]
pub struct Files {
    trees: Mutex<HashMap<Key, Arc<Mutex<Tree>>>>,
}

impl Files {
    /// The tree of a container of the pod with this uid.
    pub fn tree(&self, ns: &str, pod: &str, uid: &str, container: &str) -> Arc<Mutex<Tree>> {
        let mut m = self.trees.lock().unwrap_or_else(|e| e.into_inner());
        m.entry((ns.into(), pod.into(), uid.into(), container.into()))
            .or_insert_with(|| Arc::new(Mutex::new(Tree::new(pod))))
            .clone()
    }
}

#[cfg(test)]
mod tests;
