//! The files the catalogers read, gathered from a root directory or an image's layers.
//!
//! Only paths that [`wanted`] accepts are kept, and only their bytes: a whole root filesystem
//! or image is never copied. Each kept file is bounded ([`Limits::max_file`]), and so are
//! their number and total size; a file over its bound is skipped with a warning in
//! [`Files::skipped`], a source over the count or total is an error.
//!
//! Executables are not kept: a regular file that starts with the ELF magic and is at most
//! [`Limits::max_binary`] bytes is read into a buffer of its own, [`crate::binary::extract`]
//! takes the Go build information and `cargo auditable` crate list out of it, and only those
//! are kept ([`Files::binaries`]); the buffer is dropped before the next file, so memory holds
//! one executable at a time. A larger executable is skipped with a warning in
//! [`Files::skipped`].
//!
//! Image layers are applied in order as an overlay filesystem would, to kept files and to
//! executables' results alike: a whiteout `DIR/.wh.NAME` removes `DIR/NAME` (and everything
//! under it) from the lower layers, an opaque marker `DIR/.wh..wh..opq` removes everything
//! under `DIR` from the lower layers, and an entry of any other kind replaces a lower file at
//! its path. Whiteouts in a layer never remove that layer's own files.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use airlock_core::oci::{Descriptor, Index, Manifest};
use airlock_scan::layer::{is_limit_error, tar_stream, Compression};
use airlock_store::layout::OciLayout;

use crate::binary::{self, BinaryInfo, ELF_MAGIC};
use crate::SbomError;

/// Bounds on what is gathered.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest file kept, in bytes (a dpkg `status` of 10,000 packages is about 30 MB).
    pub max_file: u64,
    /// Most files kept.
    pub max_files: usize,
    /// Most bytes kept in all.
    pub max_total: u64,
    /// Most bytes a layer may unpack to.
    pub max_layer_unpacked: u64,
    /// Most tar entries in one layer.
    pub max_entries: usize,
    /// Most layers in one image.
    pub max_layers: usize,
    /// Largest executable (ELF file) read for build information, in bytes; one is held in
    /// memory at a time.
    pub max_binary: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file: 64 << 20,
            max_files: 200_000,
            max_total: 1 << 30,
            max_layer_unpacked: 64 << 30,
            max_entries: 2_000_000,
            max_layers: 256,
            max_binary: 256 << 20,
        }
    }
}

/// One gathered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    /// The digest of the layer it came from (images only).
    pub layer: Option<String>,
}

/// What was taken out of one executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    pub info: BinaryInfo,
    /// The digest of the layer it came from (images only).
    pub layer: Option<String>,
}

/// The gathered files by path (relative, `/`-separated, no leading `./` or `/`).
#[derive(Debug, Default)]
pub struct Files {
    files: BTreeMap<String, File>,
    total: u64,
    binaries: BTreeMap<String, Binary>,
    /// Files left out because they are larger than [`Limits::max_file`] (or, for
    /// executables, [`Limits::max_binary`]), with their sizes.
    pub skipped: Vec<(String, u64)>,
}

/// Does a cataloger read the file at `path`?
pub fn wanted(path: &str) -> bool {
    if matches!(
        path,
        "var/lib/dpkg/status" | "etc/os-release" | "usr/lib/os-release"
    ) {
        return true;
    }
    if let Some(rest) = path.strip_prefix("var/lib/dpkg/status.d/") {
        return !rest.is_empty() && !rest.contains('/');
    }
    if let Some(rest) = path.strip_prefix("usr/share/doc/") {
        return rest
            .split_once('/')
            .is_some_and(|(pkg, f)| !pkg.is_empty() && f == "copyright");
    }
    if crate::npm::is_package_json(path)
        || path == crate::apk::INSTALLED
        || crate::rpm::is_rpmdb(path)
    {
        return true;
    }
    match path.rsplit_once('/') {
        Some((dir, "METADATA")) => dir.ends_with(".dist-info"),
        Some((dir, "PKG-INFO")) => dir.ends_with(".egg-info"),
        _ => false,
    }
}

/// A path from a tar header or a directory walk in the form [`Files`] keys use, or `None`
/// for one that climbs out of the root.
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl Files {
    pub fn get(&self, path: &str) -> Option<&File> {
        self.files.get(path)
    }

    /// Every file, by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &File)> {
        self.files.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// What was taken out of each executable that carries build information (or could not be
    /// read), by path.
    pub fn binaries(&self) -> impl Iterator<Item = (&str, &Binary)> {
        self.binaries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Warnings about executables whose build information could not be read, each naming
    /// the file.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.binaries
            .values()
            .flat_map(|b| b.info.warnings.iter().map(String::as_str))
    }

    /// Keeps what was taken out of the executable at `path`, replacing what was there;
    /// nothing is kept when nothing was found. The number of executables kept is bounded by
    /// [`Limits::max_files`].
    pub fn insert_binary(
        &mut self,
        path: String,
        bin: Binary,
        limits: &Limits,
        source: &str,
    ) -> Result<(), SbomError> {
        self.remove(&path);
        if bin.info.is_empty() {
            return Ok(());
        }
        if self.binaries.len() >= limits.max_files {
            return Err(SbomError::Invalid(format!(
                "{source}: more than {} executables with build information (at {path})",
                limits.max_files
            )));
        }
        self.binaries.insert(path, bin);
        Ok(())
    }

    /// Keeps `data` at `path`, replacing what was there; checks the count and total bounds.
    pub fn insert(
        &mut self,
        path: String,
        file: File,
        limits: &Limits,
        source: &str,
    ) -> Result<(), SbomError> {
        self.remove(&path);
        self.total += file.data.len() as u64;
        if self.files.len() >= limits.max_files || self.total > limits.max_total {
            return Err(SbomError::Invalid(format!(
                "{source}: more than {} catalogued files or {} bytes of them (at {path})",
                limits.max_files, limits.max_total
            )));
        }
        self.files.insert(path, file);
        Ok(())
    }

    fn remove(&mut self, path: &str) {
        if let Some(old) = self.files.remove(path) {
            self.total -= old.data.len() as u64;
        }
        self.binaries.remove(path);
    }

    /// Removes `path` and everything under it (a whiteout).
    pub fn remove_tree(&mut self, path: &str) {
        self.remove(path);
        self.remove_under(path);
    }

    /// Removes everything under the directory `dir` but not `dir` itself (an opaque marker);
    /// `""` is the root.
    pub fn remove_under(&mut self, dir: &str) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut doomed: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        doomed.extend(
            self.binaries
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone()),
        );
        for k in doomed {
            self.remove(&k);
        }
    }

    /// Gathers the wanted files under the directory `root`. Symbolic links are not followed
    /// (a link in an unpacked image points into the host); unreadable directories are
    /// skipped with a warning, as `/proc` entries come and go.
    pub fn from_dir(root: &Path, limits: &Limits) -> Result<Files, SbomError> {
        let meta = std::fs::metadata(root).map_err(|source| SbomError::Io {
            what: root.display().to_string(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(SbomError::Invalid(format!(
                "{}: not a directory",
                root.display()
            )));
        }
        let mut files = Files::default();
        let source = root.display().to_string();
        let walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .same_file_system(false)
            .into_iter()
            .filter_entry(|e| {
                // Kernel and runtime filesystems hold no packages and can be huge or hang.
                let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                !(e.depth() == 1
                    && root == Path::new("/")
                    && matches!(rel.to_str(), Some("proc" | "sys" | "dev" | "run")))
            });
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("skipping: {e}");
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            let Some(rel) = rel.to_str().and_then(normalize) else {
                continue;
            };
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if !wanted(&rel) {
                if let Some(info) = dir_binary(entry.path(), &rel, size, limits, &mut files)? {
                    let bin = Binary { info, layer: None };
                    files.insert_binary(rel, bin, limits, &source)?;
                }
                continue;
            }
            if size > limits.max_file {
                files.skipped.push((rel, size));
                continue;
            }
            let data = match airlock_core::bounded::read_file_at_most(entry.path(), limits.max_file)
            {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    tracing::warn!("{}: {e}", entry.path().display());
                    continue;
                }
                Err(source) => {
                    return Err(SbomError::Io {
                        what: entry.path().display().to_string(),
                        source,
                    })
                }
            };
            files.insert(rel, File { data, layer: None }, limits, &source)?;
        }
        Ok(files)
    }

    /// Gathers the wanted files of the image `desc` (a manifest, or an index with exactly
    /// one manifest) in `layout`, applying its layers in order.
    pub fn from_image(
        layout: &OciLayout,
        desc: &Descriptor,
        limits: &Limits,
    ) -> Result<Files, SbomError> {
        let manifest = image_manifest(layout, desc)?;
        if manifest.layers.len() > limits.max_layers {
            return Err(SbomError::Invalid(format!(
                "image {}: {} layers, more than {}",
                desc.digest,
                manifest.layers.len(),
                limits.max_layers
            )));
        }
        let mut files = Files::default();
        for layer in &manifest.layers {
            let digest = layer.digest.to_string();
            let Some(compression) = Compression::of_media_type(&layer.media_type) else {
                return Err(SbomError::Invalid(format!(
                    "layer {digest}: media type {:?} is not a tar layer",
                    layer.media_type
                )));
            };
            let path = layout.blob_path(&layer.digest);
            let f = std::fs::File::open(&path).map_err(|source| SbomError::Io {
                what: format!("layer {digest} ({})", path.display()),
                source,
            })?;
            let stream = tar_stream(
                std::io::BufReader::new(f),
                compression,
                limits.max_layer_unpacked,
            )
            .map_err(|source| SbomError::Io {
                what: format!("layer {digest}"),
                source,
            })?;
            apply_layer(&mut files, stream, &digest, limits)?;
        }
        Ok(files)
    }
}

fn image_manifest(layout: &OciLayout, desc: &Descriptor) -> Result<Manifest, SbomError> {
    let read = |d: &Descriptor| {
        layout
            .read_blob(d)
            .map_err(|e| SbomError::Invalid(format!("blob {}: {e}", d.digest)))
    };
    let mut desc = desc.clone();
    for _ in 0..4 {
        let bytes = read(&desc)?;
        if airlock_core::media::is_index(&desc.media_type) {
            let ix: Index = serde_json::from_slice(&bytes)
                .map_err(|e| SbomError::Invalid(format!("index {}: {e}", desc.digest)))?;
            match ix.manifests.as_slice() {
                [one] => desc = one.clone(),
                _ => {
                    return Err(SbomError::Invalid(format!(
                        "index {} lists {} manifests; name one image (this slice reads \
                         single-platform images)",
                        desc.digest,
                        ix.manifests.len()
                    )))
                }
            }
            continue;
        }
        return serde_json::from_slice(&bytes)
            .map_err(|e| SbomError::Invalid(format!("manifest {}: {e}", desc.digest)));
    }
    Err(SbomError::Invalid(format!(
        "indexes nested too deeply at {}",
        desc.digest
    )))
}

/// Reads the file at `path` (`rel` under the root, `size` bytes) when it is an executable
/// within the bound, and takes its build information; `None` for other files and for those
/// skipped (recorded in `files.skipped`) or unreadable for lack of permission.
fn dir_binary(
    path: &Path,
    rel: &str,
    size: u64,
    limits: &Limits,
    files: &mut Files,
) -> Result<Option<BinaryInfo>, SbomError> {
    if size < ELF_MAGIC.len() as u64 {
        return Ok(None);
    }
    let io = |source| SbomError::Io {
        what: path.display().to_string(),
        source,
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        // Sockets, fifos opened by mistake and unreadable files hold no packages.
        Err(e) => {
            tracing::debug!("{}: {e}", path.display());
            return Ok(None);
        }
    };
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() || &magic != ELF_MAGIC {
        return Ok(None);
    }
    if size > limits.max_binary {
        files.skipped.push((rel.to_string(), size));
        return Ok(None);
    }
    let mut data = Vec::with_capacity(size as usize);
    data.extend_from_slice(&magic);
    (&mut f)
        .take(limits.max_binary - magic.len() as u64)
        .read_to_end(&mut data)
        .map_err(io)?;
    Ok(Some(binary::extract(rel, &data)))
}

/// Applies one layer's tar stream to `files`.
///
/// Entries of the layer replace what lower layers had at their paths, and whiteouts remove
/// lower files; all of that is applied as the entries come, and the layer's own wanted files
/// are added at the end, so nothing in a layer removes that layer's files.
pub fn apply_layer(
    files: &mut Files,
    stream: impl Read,
    digest: &str,
    limits: &Limits,
) -> Result<(), SbomError> {
    let bad = |e: std::io::Error| {
        if is_limit_error(&e) {
            SbomError::Invalid(format!(
                "layer {digest}: unpacks to more than {} bytes",
                limits.max_layer_unpacked
            ))
        } else {
            SbomError::Invalid(format!("layer {digest}: not a readable tar stream: {e}"))
        }
    };
    let mut ar = tar::Archive::new(stream);
    // Removals act on the lower layers at once (`files` holds only those until the end);
    // this layer's own files wait in `added`, bounded like `files`.
    let mut added: Vec<(String, Vec<u8>)> = Vec::new();
    let mut added_bins: Vec<(String, BinaryInfo)> = Vec::new();
    let mut added_bytes = 0u64;
    let mut count = 0usize;
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        count += 1;
        if count > limits.max_entries {
            return Err(SbomError::Invalid(format!(
                "layer {digest}: more than {} entries",
                limits.max_entries
            )));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = normalize(&raw) else {
            return Err(SbomError::Invalid(format!(
                "layer {digest}: entry {raw:?} climbs out of the root"
            )));
        };
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => ("", path.as_str()),
        };
        if base == ".wh..wh..opq" {
            files.remove_under(dir);
            continue;
        }
        if let Some(name) = base.strip_prefix(".wh.") {
            if dir.is_empty() {
                files.remove_tree(name);
            } else {
                files.remove_tree(&format!("{dir}/{name}"));
            }
            continue;
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            // A directory merges with the lower one; a link or device replaces what was there.
            if !kind.is_dir() {
                files.remove_tree(&path);
            }
            continue;
        }
        files.remove_tree(&path);
        let size = entry.size();
        if !wanted(&path) {
            if size < ELF_MAGIC.len() as u64 {
                continue;
            }
            let mut data = vec![0u8; ELF_MAGIC.len()];
            entry.read_exact(&mut data).map_err(bad)?;
            if data != ELF_MAGIC {
                continue;
            }
            if size > limits.max_binary {
                files.skipped.push((path, size));
                continue;
            }
            data.reserve_exact((size as usize).saturating_sub(data.len()));
            (&mut entry)
                .take(size - data.len() as u64)
                .read_to_end(&mut data)
                .map_err(bad)?;
            let info = binary::extract(&path, &data);
            drop(data);
            if !info.is_empty() {
                if files.binaries.len() + added_bins.len() >= limits.max_files {
                    return Err(SbomError::Invalid(format!(
                        "layer {digest}: more than {} executables with build information \
                         (at {path})",
                        limits.max_files
                    )));
                }
                added_bins.push((path, info));
            }
            continue;
        }
        if size > limits.max_file {
            files.skipped.push((path, size));
            continue;
        }
        added_bytes += size;
        if files.len() + added.len() >= limits.max_files
            || files.total + added_bytes > limits.max_total
        {
            return Err(SbomError::Invalid(format!(
                "layer {digest}: more than {} catalogued files or {} bytes of them (at {path})",
                limits.max_files, limits.max_total
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(size)
            .read_to_end(&mut data)
            .map_err(bad)?;
        added.push((path, data));
    }
    for (path, info) in added_bins {
        let bin = Binary {
            info,
            layer: Some(digest.to_string()),
        };
        files.insert_binary(path, bin, limits, &format!("layer {digest}"))?;
    }
    for (path, data) in added {
        files.insert(
            path,
            File {
                data,
                layer: Some(digest.to_string()),
            },
            limits,
            &format!("layer {digest}"),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    const STATUS: &str = "var/lib/dpkg/status";
    const META: &str = "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA";

    #[test]
    fn whiteout_removes_a_lower_file_and_opaque_dir_empties_a_lower_tree() {
        let l = Limits::default();
        let mut f = Files::default();
        let l1 = layer(&[
            (STATUS, b"a"),
            (META, b"b"),
            ("etc/os-release", b"ID=debian"),
        ]);
        apply_layer(&mut f, &l1[..], "sha256:1", &l).unwrap();
        assert_eq!(f.len(), 3);
        let l2 = layer(&[
            ("var/lib/dpkg/.wh.status", b""),
            ("usr/lib/python3/dist-packages/.wh..wh..opq", b""),
        ]);
        apply_layer(&mut f, &l2[..], "sha256:2", &l).unwrap();
        assert!(f.get(STATUS).is_none());
        assert!(f.get(META).is_none());
        assert_eq!(
            f.get("etc/os-release").unwrap().layer.as_deref(),
            Some("sha256:1")
        );
    }

    #[test]
    fn whiteouts_spare_files_of_their_own_layer_and_later_layers_win() {
        let l = Limits::default();
        let mut f = Files::default();
        apply_layer(&mut f, &layer(&[(STATUS, b"old")])[..], "sha256:1", &l).unwrap();
        let l2 = layer(&[(STATUS, b"new"), ("var/lib/dpkg/.wh..wh..opq", b"")]);
        apply_layer(&mut f, &l2[..], "sha256:2", &l).unwrap();
        let got = f.get(STATUS).unwrap();
        assert_eq!(got.data, b"new");
        assert_eq!(got.layer.as_deref(), Some("sha256:2"));
        // A whiteout of a whole directory removes what is under it.
        apply_layer(
            &mut f,
            &layer(&[("var/lib/.wh.dpkg", b"")])[..],
            "sha256:3",
            &l,
        )
        .unwrap();
        assert!(f.is_empty());
    }

    #[test]
    fn files_over_the_size_bound_are_skipped_and_counts_are_bounded() {
        let l = Limits {
            max_file: 4,
            max_files: 1,
            ..Limits::default()
        };
        let mut f = Files::default();
        apply_layer(&mut f, &layer(&[(STATUS, b"12345")])[..], "sha256:1", &l).unwrap();
        assert!(f.is_empty());
        assert_eq!(f.skipped, vec![(STATUS.to_string(), 5)]);
        let two = layer(&[(STATUS, b"1"), (META, b"2")]);
        let e = apply_layer(&mut f, &two[..], "sha256:2", &l).unwrap_err();
        assert!(
            e.to_string().contains("more than 1 catalogued files"),
            "{e}"
        );
    }

    #[test]
    fn layer_that_unpacks_past_its_bound_is_an_error_naming_it() {
        let l = Limits {
            max_layer_unpacked: 600,
            ..Limits::default()
        };
        let big = layer(&[(STATUS, &[b'x'; 2000])]);
        let stream = tar_stream(&big[..], Compression::None, l.max_layer_unpacked).unwrap();
        let e = apply_layer(&mut Files::default(), stream, "sha256:big", &l).unwrap_err();
        assert!(
            e.to_string()
                .contains("sha256:big: unpacks to more than 600"),
            "{e}"
        );
    }

    #[test]
    fn only_catalogued_paths_are_wanted_and_paths_normalise() {
        assert!(wanted(STATUS));
        assert!(wanted("var/lib/dpkg/status.d/base"));
        assert!(wanted("usr/share/doc/bash/copyright"));
        assert!(wanted(META));
        assert!(wanted("x/foo.egg-info/PKG-INFO"));
        assert!(!wanted("usr/share/doc/bash/changelog.gz"));
        assert!(!wanted("usr/bin/bash"));
        assert!(!wanted("x/METADATA"));
        assert!(wanted("app/node_modules/@s/a/package.json"));
        assert!(!wanted("app/package.json"));
        assert!(wanted("lib/apk/db/installed"));
        assert!(wanted("var/lib/rpm/rpmdb.sqlite"));
        assert!(wanted("usr/lib/sysimage/rpm/rpmdb.sqlite"));
        assert!(!wanted("var/lib/rpm/rpmdb.sqlite-wal"));
        assert_eq!(normalize("./var//lib/./dpkg/status").unwrap(), STATUS);
        assert_eq!(normalize("../etc/passwd"), None);
    }
}
