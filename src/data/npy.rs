//! `.npy` files: checked reads (the header is validated against the file size
//! before anything is allocated) and atomic writes with a checksum.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayBase, Data, Dimension};
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};
use xxhash_rust::xxh3::Xxh3;

use super::error::{DataError, Result};

/// The largest header we read; NumPy itself refuses more than 10,000 bytes by default.
const MAX_HEADER_BYTES: usize = 1 << 16;

/// What the header of a `.npy` file declares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NpyHeader {
    /// The dtype, e.g. `<f8`.
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Bytes before the data.
    pub data_offset: u64,
}

impl NpyHeader {
    /// The element size the dtype declares, for the dtypes we read.
    fn item_size(&self) -> Option<usize> {
        match self.descr.as_str() {
            "<f8" | ">f8" => Some(8),
            "<f4" | ">f4" | "<u4" | ">u4" => Some(4),
            _ => None,
        }
    }
}

fn npy_error(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads and checks the header of `path`: magic, version, a 2-D or 1-D shape,
/// a supported dtype, and a data size that matches the file size exactly.
pub(crate) fn read_header(path: &Path, ndim: usize, allowed: &[&str]) -> Result<NpyHeader> {
    let file = open_file(path)?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut reader = BufReader::new(file);
    let mut prefix = [0u8; 8];
    reader
        .read_exact(&mut prefix)
        .map_err(|_| npy_error(path, "file too short for a .npy header"))?;
    if &prefix[..6] != b"\x93NUMPY" {
        return Err(npy_error(path, "missing the .npy magic string"));
    }
    let (header_len, prefix_len) = match prefix[6] {
        1 => {
            let mut len = [0u8; 2];
            reader
                .read_exact(&mut len)
                .map_err(|_| npy_error(path, "truncated header"))?;
            (u16::from_le_bytes(len) as usize, 10)
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            reader
                .read_exact(&mut len)
                .map_err(|_| npy_error(path, "truncated header"))?;
            (u32::from_le_bytes(len) as usize, 12)
        }
        v => return Err(npy_error(path, format!("unsupported .npy version {v}"))),
    };
    if header_len > MAX_HEADER_BYTES || (prefix_len + header_len) as u64 > file_len {
        return Err(npy_error(path, "truncated or oversized header"));
    }
    let mut text = vec![0u8; header_len];
    reader
        .read_exact(&mut text)
        .map_err(|_| npy_error(path, "truncated header"))?;
    let text = String::from_utf8_lossy(&text);
    let header = parse_header_dict(&text).ok_or_else(|| npy_error(path, "unreadable header"))?;
    let header = NpyHeader {
        data_offset: (prefix_len + header_len) as u64,
        ..header
    };

    let got = header.shape.len();
    if got != ndim {
        return Err(if ndim == 2 {
            DataError::NotTwoDimensional {
                path: path.to_path_buf(),
                ndim: got,
            }
        } else {
            npy_error(path, format!("expected {ndim} dimension(s), got {got}"))
        });
    }
    if !allowed.contains(&header.descr.as_str()) {
        return Err(npy_error(
            path,
            format!(
                "unsupported dtype '{}' (expected one of {})",
                header.descr,
                allowed.join(", ")
            ),
        ));
    }
    let item = header.item_size().expect("allowed dtypes have a size");
    let expected = header
        .shape
        .iter()
        .try_fold(item as u64, |acc, &s| acc.checked_mul(s as u64))
        .ok_or_else(|| npy_error(path, "shape overflows"))?;
    let actual = file_len - header.data_offset;
    if actual != expected {
        return Err(npy_error(
            path,
            format!(
                "header declares shape {:?} ({expected} bytes of data) but the file holds {actual}",
                header.shape
            ),
        ));
    }
    Ok(header)
}

/// Parses `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }`.
fn parse_header_dict(text: &str) -> Option<NpyHeader> {
    let after = |key: &str| -> Option<&str> {
        let start = text.find(&format!("'{key}'"))? + key.len() + 2;
        Some(text[start..].trim_start().strip_prefix(':')?.trim_start())
    };
    let descr_field = after("descr")?;
    let quote = descr_field
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')?;
    let descr = descr_field[1..].split(quote).next()?.to_string();
    let fortran_order = match after("fortran_order")? {
        s if s.starts_with("True") => true,
        s if s.starts_with("False") => false,
        _ => return None,
    };
    let shape_field = after("shape")?.strip_prefix('(')?;
    let shape = shape_field[..shape_field.find(')')?]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().ok())
        .collect::<Option<Vec<_>>>()?;
    Some(NpyHeader {
        descr,
        fortran_order,
        shape,
        data_offset: 0,
    })
}

fn open_file(path: &Path) -> Result<File> {
    if path.is_dir() {
        return Err(DataError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "is a directory"),
        ));
    }
    File::open(path).map_err(|e| DataError::io(path, e))
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Xxh3,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads an array after checking its header, returning it with the xxh3
/// checksum of the whole file.
fn read_checked<A, D>(
    path: &Path,
    allowed: &[&str],
) -> Result<(ArrayBase<ndarray::OwnedRepr<A>, D>, u64)>
where
    A: ReadableElement,
    D: Dimension,
{
    read_header(path, D::NDIM.unwrap_or(0), allowed)?;
    let mut reader = HashingReader {
        inner: BufReader::with_capacity(1 << 20, open_file(path)?),
        hasher: Xxh3::new(),
    };
    let array = ArrayBase::<ndarray::OwnedRepr<A>, D>::read_npy(&mut reader)
        .map_err(|e| npy_error(path, e.to_string()))?;
    Ok((array, reader.hasher.digest()))
}

/// Reads a 2-D `f32` or `f64` array, C or Fortran order, either byte order.
pub fn read_npy<F: ReadableElement>(path: &Path) -> Result<Array2<F>> {
    let allowed: &[&str] = if std::mem::size_of::<F>() == 8 {
        &["<f8", ">f8"]
    } else {
        &["<f4", ">f4"]
    };
    read_checked(path, allowed).map(|(a, _)| a)
}

/// Reads a little-endian 2-D `f64` array (as the cache writes it) and the
/// checksum of its file.
pub(crate) fn read_f64_with_checksum(path: &Path) -> Result<(Array2<f64>, u64)> {
    read_checked(path, &["<f8"])
}

/// Reads a little-endian 1-D `u32` array (labels) and the checksum of its file.
pub(crate) fn read_u32_with_checksum(path: &Path) -> Result<(Array1<u32>, u64)> {
    read_checked(path, &["<u4"])
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Xxh3,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A temporary path beside `path`, unique to this process and call.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes temporary files of writers that died before renaming them (named
/// by [`temporary_path`] with a process id no longer running), so a killed
/// run leaves no lasting litter. Only where the running processes can be
/// seen (`/proc`).
fn remove_stale_temporaries(dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let pid = name
            .strip_prefix('.')
            .and_then(|rest| rest.rsplit_once(".tmp-"))
            .and_then(|(_, tail)| tail.split_once('-'))
            .and_then(|(pid, counter)| {
                counter.parse::<u64>().ok()?;
                pid.parse::<u32>().ok()
            });
        if let Some(pid) = pid {
            if !proc.join(pid.to_string()).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A file written under a temporary name, renamed into place by
/// [`commit`](Self::commit); dropped uncommitted, it is removed.
pub(crate) struct PendingFile {
    temp: PathBuf,
    path: PathBuf,
    /// The xxh3 checksum of the file's bytes.
    pub checksum: u64,
    committed: bool,
}

impl PendingFile {
    /// Writes `write` to a temporary file beside `path` and syncs it.
    pub fn write(
        path: &Path,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<Self> {
        if let Some(dir) = path.parent() {
            remove_stale_temporaries(dir);
        }
        let temp = temporary_path(path);
        let mut pending = PendingFile {
            temp,
            path: path.to_path_buf(),
            checksum: 0,
            committed: false,
        };
        let file = File::create(&pending.temp).map_err(|e| DataError::io(path, e))?;
        let mut writer = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Xxh3::new(),
        };
        let written = write(&mut writer).and_then(|()| writer.flush());
        written.map_err(|e| DataError::io(path, e))?;
        pending.checksum = writer.hasher.digest();
        let file = writer
            .inner
            .into_inner()
            .map_err(|e| DataError::io(path, e.into_error()))?;
        file.sync_all().map_err(|e| DataError::io(path, e))?;
        Ok(pending)
    }

    /// Renames the file into place (atomic on one file system).
    pub fn commit(mut self) -> Result<u64> {
        std::fs::rename(&self.temp, &self.path).map_err(|e| DataError::io(&self.path, e))?;
        self.committed = true;
        Ok(self.checksum)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `write` to a temporary file beside `path`, syncs it, then renames
/// it into place: readers see the old file or the whole new one, never a part.
/// Returns the xxh3 checksum of the bytes written.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<u64> {
    PendingFile::write(path, write)?.commit()
}

/// Writes `array` as `.npy` under a temporary name, to be committed.
pub(crate) fn write_npy_pending<A, S, D>(
    path: &Path,
    array: &ArrayBase<S, D>,
) -> Result<PendingFile>
where
    A: WritableElement,
    S: Data<Elem = A>,
    D: Dimension,
{
    PendingFile::write(path, |w| {
        array
            .write_npy(w)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// Writes `array` as `.npy` atomically; returns the xxh3 checksum of the file.
pub fn write_npy_atomic<A, S, D>(path: &Path, array: &ArrayBase<S, D>) -> Result<u64>
where
    A: WritableElement,
    S: Data<Elem = A>,
    D: Dimension,
{
    write_npy_pending(path, array)?.commit()
}

/// Replaces `path` with `bytes` atomically.
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| w.write_all(bytes)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// A version 1 `.npy` file with this header dict and data.
    fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn round_trip_f64_and_f32_in_c_and_fortran_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let x = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        write_npy_atomic(&path, &x).unwrap();
        assert_eq!(read_npy::<f64>(&path).unwrap(), x);
        write_npy_atomic(&path, &x.t().as_standard_layout().t()).unwrap();
        assert_eq!(read_npy::<f64>(&path).unwrap(), x);
        let y = x.mapv(|v| v as f32);
        write_npy_atomic(&path, &y).unwrap();
        assert_eq!(read_npy::<f32>(&path).unwrap(), y);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn parses_numpy_headers() {
        let h = parse_header_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }")
            .unwrap();
        assert_eq!(h.descr, "<f8");
        assert!(!h.fortran_order);
        assert_eq!(h.shape, vec![3, 2]);
        let h =
            parse_header_dict("{'descr': '<u4', 'fortran_order': True, 'shape': (7,), }").unwrap();
        assert_eq!(h.shape, vec![7]);
        assert!(h.fortran_order);
        assert!(parse_header_dict(
            "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,), }"
        )
        .is_none());
    }

    #[test]
    fn truncated_file_is_rejected_before_reading_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_npy_atomic(&path, &Array2::<f64>::zeros((100, 4))).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
        let err = read_npy::<f64>(&path).unwrap_err();
        assert!(err.to_string().contains("but the file holds"), "{err}");
    }

    #[test]
    fn absurd_shape_is_rejected_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_npy_atomic(&path, &Array2::<f64>::zeros((2, 2))).unwrap();
        std::fs::write(
            &path,
            npy_bytes(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (9999999999, 99999999), }",
                &[0; 32],
            ),
        )
        .unwrap();
        let err = read_npy::<f64>(&path).unwrap_err();
        assert!(err.to_string().contains("but the file holds 32"), "{err}");
        std::fs::write(
            &path,
            npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999, 99999999999), }", &[]),
        )
        .unwrap();
        assert!(matches!(read_npy::<f64>(&path), Err(DataError::Npy { .. })));
    }

    #[test]
    fn foreign_files_and_wrong_dtypes_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        std::fs::write(&path, b"this is not an npy file at all").unwrap();
        assert!(matches!(read_npy::<f64>(&path), Err(DataError::Npy { .. })));
        write_npy_atomic(&path, &array![[1i64, 2]]).unwrap();
        let err = read_npy::<f64>(&path).unwrap_err();
        assert!(err.to_string().contains("unsupported dtype '<i8'"), "{err}");
        write_npy_atomic(&path, &array![1.0, 2.0]).unwrap();
        assert!(matches!(
            read_npy::<f64>(&path),
            Err(DataError::NotTwoDimensional { ndim: 1, .. })
        ));
        assert!(matches!(
            read_npy::<f64>(dir.path()),
            Err(DataError::Io { .. })
        ));
        assert!(matches!(
            read_npy::<f64>(&dir.path().join("missing.npy")),
            Err(DataError::Io { .. })
        ));
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        // A process id that cannot be running (beyond Linux's pid_max).
        let stale = dir.path().join(".blobs.npy.tmp-4194305-0");
        std::fs::write(&stale, b"half").unwrap();
        let alive = dir
            .path()
            .join(format!(".other.npy.tmp-{}-7", std::process::id()));
        std::fs::write(&alive, b"in progress").unwrap();
        write_atomic_bytes(&dir.path().join("a.bin"), b"data").unwrap();
        assert!(!stale.exists(), "the dead writer's file is gone");
        assert!(alive.exists(), "a live writer's file stays");
    }
}
