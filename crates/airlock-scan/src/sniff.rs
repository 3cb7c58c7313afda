//! Content sniffing: the file type comes from the bytes, not the name. A pickle named
//! `.bin`, `.model` or with no extension is still scanned as a pickle; a zip named `.pt` is
//! still walked as a zip. Extensions only decide how strictly a doubtful guess is treated.

/// What a blob looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zip,
    Tar,
    Gzip,
    /// A raw zlib stream (joblib's default compression).
    Zlib,
    /// A 7-Zip archive.
    SevenZ,
    /// A single compressed stream: `xz`, `bzip2`, `zstd` or `lzma`.
    Compressed(&'static str),
    /// An archive format airlock cannot open (rar).
    Unscannable(&'static str),
    Safetensors,
    Gguf,
    Npy,
    Hdf5,
    Onnx,
    /// `strict`: named like a pickle, so any parse error is a finding. Otherwise (content that
    /// starts with `PROTO` or a protocol-0 opcode) see [`crate::pickle`]'s reporting rule.
    Pickle {
        strict: bool,
    },
    Json,
    Other,
}

impl Kind {
    /// The name rule engines see (`Leaf::kind`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Zip => "zip",
            Kind::Tar => "tar",
            Kind::Gzip => "gzip",
            Kind::Zlib => "zlib",
            Kind::SevenZ => "7z",
            Kind::Compressed(c) => c,
            Kind::Unscannable(_) => "unscannable",
            Kind::Safetensors => "safetensors",
            Kind::Gguf => "gguf",
            Kind::Npy => "npy",
            Kind::Hdf5 => "hdf5",
            Kind::Onnx => "onnx",
            Kind::Pickle { .. } => "pickle",
            Kind::Json => "json",
            Kind::Other => "other",
        }
    }

    /// Model file formats, where executables and shell commands have no business.
    pub fn is_model(self) -> bool {
        matches!(
            self,
            Kind::Safetensors
                | Kind::Gguf
                | Kind::Npy
                | Kind::Hdf5
                | Kind::Onnx
                | Kind::Pickle { .. }
        )
    }
}

fn ext(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base.rfind('.') {
        Some(i) if i > 0 => base[i + 1..].to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// Tar header checksum: sum of the header bytes with the checksum field read as spaces.
pub(crate) fn tar_checksum_ok(h: &[u8]) -> bool {
    if h.len() < 512 || h[..100].iter().all(|b| *b == 0) {
        return false;
    }
    let field = &h[148..156];
    let s: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let Ok(want) = u32::from_str_radix(s.trim(), 8) else {
        return false;
    };
    let sum: u32 = h[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    sum == want
}

/// Opcodes a protocol 0/1 pickle can start with.
fn pickle0_start(b: u8) -> bool {
    matches!(
        b,
        b'(' | b'c'
            | b'}'
            | b']'
            | b')'
            | b'N'
            | b'I'
            | b'S'
            | b'V'
            | b'X'
            | b'U'
            | b'T'
            | b'K'
            | b'J'
            | b'M'
            | b'F'
            | b'G'
            | b'L'
            | b'l'
            | b'd'
            | b't'
            | b'i'
            | b'B'
            | b'C'
    )
}

pub(crate) fn sniff(head: &[u8], len: u64, name: &str) -> Kind {
    let e = ext(name);
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        return Kind::Zip;
    }
    if starts(b"\x1f\x8b\x08") {
        return Kind::Gzip;
    }
    if head.len() >= 2
        && head[0] == 0x78
        && matches!(head[1], 0x01 | 0x5e | 0x9c | 0xda)
        && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0
    {
        return Kind::Zlib;
    }
    if starts(b"7z\xbc\xaf\x27\x1c") {
        return Kind::SevenZ;
    }
    if starts(b"Rar!\x1a\x07") {
        return Kind::Unscannable("rar archive");
    }
    if starts(b"\xfd7zXZ\x00") {
        return Kind::Compressed("xz");
    }
    if starts(b"BZh") && head.len() > 3 && head[3].is_ascii_digit() {
        return Kind::Compressed("bzip2");
    }
    if starts(b"\x28\xb5\x2f\xfd") {
        return Kind::Compressed("zstd");
    }
    if starts(b"\x5d\x00\x00") && e == "lzma" {
        return Kind::Compressed("lzma");
    }
    if head.len() >= 512 && (&head[257..262] == b"ustar" || tar_checksum_ok(head)) {
        return Kind::Tar;
    }
    if starts(b"GGUF") {
        return Kind::Gguf;
    }
    if starts(b"\x93NUMPY") {
        return Kind::Npy;
    }
    if starts(b"\x89HDF\r\n\x1a\n") {
        return Kind::Hdf5;
    }
    if head.len() >= 9 {
        let n = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        if n >= 2 && n.checked_add(8).is_some_and(|e| e <= len) && head[8] == b'{' {
            return Kind::Safetensors;
        }
    }
    if e == "safetensors" {
        return Kind::Safetensors;
    }
    if e == "gguf" {
        return Kind::Gguf;
    }
    if e == "onnx" {
        return Kind::Onnx;
    }
    if e == "h5" || e == "hdf5" || e == "keras" && !head.is_empty() && !starts(b"PK") {
        // An HDF5 file may carry a user block before the signature.
        return Kind::Hdf5;
    }
    // `.pt`, `.pth`, `.ckpt`, `.p` and `.sav` are pickles only when they start like one:
    // the same extensions name Python path files (`distutils-precedence.pth`), vim tutors
    // (`tutor.pt`) and other text, which is scanned as a protocol-0 guess instead.
    let named_pickle = matches!(e.as_str(), "pkl" | "pickle" | "joblib" | "dill" | "npy")
        || (matches!(e.as_str(), "pt" | "pth" | "ckpt" | "p" | "sav")
            && head.first() == Some(&0x80))
        || name.ends_with("data.pkl");
    if named_pickle && !head.is_empty() {
        return Kind::Pickle { strict: true };
    }
    if head.len() >= 2 && head[0] == 0x80 && head[1] <= 5 {
        // Unnamed content that starts with PROTO: a pickle when it imports anything or
        // completes; random bytes (1 in ~10,000 start like this) that just fail are not.
        return Kind::Pickle { strict: false };
    }
    let trimmed = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| head[i]);
    if matches!(trimmed, Some(b'{') | Some(b'['))
        && (e == "json" || e.is_empty() || e == "txt" || e == "config")
    {
        return Kind::Json;
    }
    if !head.is_empty() && pickle0_start(head[0]) {
        return Kind::Pickle { strict: false };
    }
    Kind::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sniffs_by_content() {
        assert_eq!(
            sniff(b"\x80\x02cos\nsystem\n", 20, "weights.bin"),
            Kind::Pickle { strict: false }
        );
        assert_eq!(sniff(b"PK\x03\x04....", 100, "model.pt"), Kind::Zip);
        assert_eq!(sniff(b"7z\xbc\xaf\x27\x1c..", 100, "m.bin"), Kind::SevenZ);
        assert_eq!(sniff(b"hello", 5, "README"), Kind::Other);
    }
}
