//! Positioned reads over files and byte slices, so that scanners can seek past tensor data
//! instead of reading it, and archive members can be scanned in place without copying.

use std::io::{self, Read};

/// Something that can be read at any offset. Implemented for `&[u8]`, files and [`Slice`]s.
pub trait Source: Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Fills `buf` from `off`; an error if that runs past the end.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The whole content, when it is already in memory (saves a copy).
    fn as_bytes(&self) -> Option<&[u8]> {
        None
    }
}

impl Source for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(off).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let s = self.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(s);
        Ok(())
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end")
}

/// A file whose length is fixed when opened.
pub struct FileSource {
    file: std::fs::File,
    len: u64,
}

impl FileSource {
    pub fn new(file: std::fs::File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(eof());
        }
        self.file.read_exact_at(buf, off)
    }
}

/// A window `[off, off + len)` of another source (an archive member stored uncompressed).
pub struct Slice<'a> {
    inner: &'a dyn Source,
    off: u64,
    len: u64,
}

impl<'a> Slice<'a> {
    /// `None` when the window does not lie inside `inner`.
    pub fn new(inner: &'a dyn Source, off: u64, len: u64) -> Option<Self> {
        let end = off.checked_add(len)?;
        (end <= inner.len()).then_some(Slice { inner, off, len })
    }
}

impl Source for Slice<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(eof());
        }
        self.inner.read_at(self.off + off, buf)
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        let b = self.inner.as_bytes()?;
        b.get(usize::try_from(self.off).ok()?..usize::try_from(self.off + self.len).ok()?)
    }
}

/// Sequential reader over a source, with a position that can skip forward cheaply.
pub struct SourceReader<'a> {
    src: &'a dyn Source,
    pos: u64,
}

impl<'a> SourceReader<'a> {
    pub fn new(src: &'a dyn Source) -> Self {
        SourceReader { src, pos: 0 }
    }
    pub fn at(src: &'a dyn Source, pos: u64) -> Self {
        SourceReader { src, pos }
    }
    pub fn pos(&self) -> u64 {
        self.pos
    }
    pub fn remaining(&self) -> u64 {
        self.src.len().saturating_sub(self.pos)
    }
    /// Moves forward `n` bytes without reading them; an error past the end.
    pub fn skip(&mut self, n: u64) -> io::Result<()> {
        if n > self.remaining() {
            return Err(eof());
        }
        self.pos += n;
        Ok(())
    }
}

impl io::Seek for SourceReader<'_> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let len = self.src.len() as i128;
        let new = match to {
            io::SeekFrom::Start(n) => n as i128,
            io::SeekFrom::End(d) => len + d as i128,
            io::SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if new < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = new.min(u64::MAX as i128) as u64;
        Ok(self.pos)
    }
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.remaining()) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.src.read_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}
