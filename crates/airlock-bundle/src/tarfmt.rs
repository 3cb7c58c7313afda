//! The subset of POSIX ustar that bundles use, written deterministically and read strictly.
//!
//! Writer: regular files only, mode 0644, uid/gid 0, mtime 0, empty user/group names, so the
//! same content always gives the same bytes. Sizes of 8 GiB and more use the base-256 form that
//! GNU tar, bsdtar, Go and Python all read.
//!
//! Reader: accepts exactly that. Links, devices, directories, PAX/GNU extension headers,
//! absolute paths and `..` components are refused with an error that says which, before the
//! caller compares the name with the one the signed manifest expects. Once name and size match,
//! the caller requires the whole block to equal [`header`] for them ([`NOT_CANONICAL`]
//! otherwise), so mode, owner, times, link name and device numbers are fixed too.

pub const BLOCK: usize = 512;

/// Error detail for a header whose name, size and type are right but which differs from the
/// canonical [`header`] in any other byte.
pub const NOT_CANONICAL: &str = "header fields (mode, owner, times, link name or device numbers) differ from the canonical header";

/// Bytes of padding after `size` bytes of entry data.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Total bytes an entry takes in the tar stream: header + data + padding.
pub fn entry_len(size: u64) -> u64 {
    BLOCK as u64 + size + padding(size)
}

/// Builds the header of a regular file. `name` must be at most 100 bytes (all airlock entry
/// names are).
pub fn header(name: &str, size: u64) -> [u8; BLOCK] {
    assert!(name.len() <= 100, "tar entry name too long: {name}");
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    if size < 0o77777777777 {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[329..337].copy_from_slice(b"0000000\0");
    h[337..345].copy_from_slice(b"0000000\0");
    let sum = checksum(&h);
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn checksum(h: &[u8; BLOCK]) -> u32 {
    h.iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                b' ' as u32
            } else {
                b as u32
            }
        })
        .sum()
}

/// A parsed header of a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub size: u64,
}

/// Is this block the all-zero end-of-archive marker?
pub fn is_zero_block(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Parses a header strictly. The error string says what is wrong, for the caller to wrap with
/// the volume and entry position.
pub fn parse(h: &[u8; BLOCK]) -> Result<Header, String> {
    let stored = parse_octal(&h[148..156]).ok_or("header checksum field is not octal")?;
    if stored != checksum(h) as u64 {
        return Err("header checksum mismatch".into());
    }
    let raw_name = cstr(&h[0..100]);
    let prefix = cstr(&h[345..500]);
    let name = if prefix.is_empty() {
        raw_name.to_vec()
    } else {
        [prefix, b"/", raw_name].concat()
    };
    let name = String::from_utf8(name).map_err(|_| "entry name is not UTF-8".to_string())?;
    let kind = match h[156] {
        b'0' | 0 => None,
        b'1' => Some("hard link"),
        b'2' => Some("symbolic link"),
        b'3' => Some("character device"),
        b'4' => Some("block device"),
        b'5' => Some("directory"),
        b'6' => Some("FIFO"),
        b'x' | b'g' => Some("PAX extended header"),
        b'L' | b'K' => Some("GNU long-name header"),
        _ => Some("unknown entry type"),
    };
    if let Some(kind) = kind {
        return Err(format!(
            "{name:?} is a {kind}; bundles hold regular files only"
        ));
    }
    if name.starts_with('/') {
        return Err(format!("{name:?} is an absolute path"));
    }
    if name
        .split('/')
        .any(|c| c == ".." || c.is_empty() || c == ".")
    {
        return Err(format!("{name:?} has an unsafe path component"));
    }
    if &h[257..263] != b"ustar\0" || &h[263..265] != b"00" {
        return Err(format!("{name:?}: not a POSIX ustar header"));
    }
    let size = if h[124] & 0x80 != 0 {
        if h[124] != 0x80 || h[125..128] != [0, 0, 0] {
            return Err(format!("{name:?}: size out of range"));
        }
        u64::from_be_bytes(h[128..136].try_into().expect("8 bytes"))
    } else {
        parse_octal(&h[124..136]).ok_or_else(|| format!("{name:?}: size field is not octal"))?
    };
    Ok(Header { name, size })
}

fn cstr(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn parse_octal(b: &[u8]) -> Option<u64> {
    let s = cstr(b);
    let s = std::str::from_utf8(s).ok()?.trim_matches(' ');
    if s.is_empty() || s.len() > 22 {
        return None;
    }
    u64::from_str_radix(s, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_small_and_huge() {
        for size in [0u64, 1, 511, 512, 8 << 30, 20 << 30] {
            let h = header("blobs/sha256/ab", size);
            assert_eq!(
                parse(&h).unwrap(),
                Header {
                    name: "blobs/sha256/ab".into(),
                    size
                }
            );
        }
    }

    #[test]
    fn header_bytes_are_canonical() {
        let h = header("oci-layout", 30);
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[108..116], b"0000000\0");
        assert_eq!(&h[116..124], b"0000000\0");
        assert_eq!(&h[124..136], b"00000000036\0");
        assert_eq!(&h[136..148], b"00000000000\0");
        assert_eq!(&h[148..156], format!("{:06o}\0 ", checksum(&h)).as_bytes());
        assert_eq!(h[156], b'0');
        assert!(h[157..257].iter().all(|&b| b == 0));
        assert_eq!(&h[257..263], b"ustar\0");
        assert_eq!(&h[263..265], b"00");
        assert!(h[265..329].iter().all(|&b| b == 0));
        assert_eq!(&h[329..337], b"0000000\0");
        assert_eq!(&h[337..345], b"0000000\0");
        assert!(h[345..].iter().all(|&b| b == 0));
        // A setuid bit with a valid checksum still parses: the caller's byte comparison with
        // `header` is what refuses it.
        let mut evil = h;
        evil[100..108].copy_from_slice(b"0004755\0");
        let sum = checksum(&evil);
        evil[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert!(parse(&evil).is_ok());
        assert_ne!(evil, header("oci-layout", 30));
    }

    #[test]
    fn refuses_links_and_unsafe_names() {
        let mut h = header("x", 0);
        h[156] = b'2';
        let sum = checksum(&h);
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert!(parse(&h).unwrap_err().contains("symbolic link"));
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b"] {
            assert!(parse(&header(bad, 0)).is_err(), "{bad}");
        }
        let mut h = header("x", 0);
        h[0] = b'y';
        assert!(parse(&h).unwrap_err().contains("checksum"));
    }
}
