//! 7-Zip archives, where models are wrapped to slip past scanners that only know zip and tar.
//!
//! Read with `sevenz-rust2` (pure Rust: LZMA, LZMA2, deflate, bzip2, BCJ filters), one thread,
//! dictionaries and headers capped at [`crate::DICT_LIMIT_KB`] before anything is allocated.
//! Every file is decoded (bounded by [`crate::Limits::max_inflate`]) and scanned like any
//! other member; CRCs are checked by the reader. Encrypted archives cannot be scanned and are
//! `suspicious`; an archive that does not decode is `invalid`.

use std::io::{self, Read};

use sevenz_rust2::{ArchiveReader, Error, Password};

use crate::{scan_any, Ctx, Loc, Severity, Source, SourceReader};

pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    let rd = SourceReader::new(src);
    let mut ar = match ArchiveReader::new_with_memory_limit(
        rd,
        Password::empty(),
        crate::DICT_LIMIT_KB as usize,
    ) {
        Ok(a) => a,
        Err(e) => {
            report(ctx, loc, &e);
            return Ok(());
        }
    };
    ar.set_thread_count(1);
    let entries = ar.archive().files.len();
    if entries > ctx.limits.max_entries {
        ctx.add(
            loc,
            Severity::Suspicious,
            "7z/too-many-entries",
            None,
            format!(
                "{entries} entries, more than {}; not scanned",
                ctx.limits.max_entries
            ),
        );
        return Ok(());
    }
    let max = ctx.limits.max_inflate;
    // Each member is scanned as soon as it is decoded, one in memory at a time (a solid
    // archive decodes its block in order anyway).
    let mut local_err: Option<io::Error> = None;
    let r = ar.for_each_entries(|entry, data| {
        if entry.is_directory || !entry.has_stream {
            return Ok(true);
        }
        let name = entry.name.clone();
        let member = loc.child(&name);
        if entry.size > max {
            ctx.add(
                &member,
                Severity::Suspicious,
                "archive/too-large",
                None,
                format!("7z member larger than {max} bytes is not scanned"),
            );
            return Ok(true);
        }
        let mut buf = Vec::with_capacity(entry.size as usize);
        data.take(max + 1).read_to_end(&mut buf)?;
        if let Err(e) = scan_any(ctx, &buf.as_slice(), &member) {
            local_err = Some(e);
            return Ok(false);
        }
        Ok(true)
    });
    if let Some(e) = local_err {
        return Err(e);
    }
    if let Err(e) = r {
        report(ctx, loc, &e);
    }
    Ok(())
}

fn report(ctx: &mut Ctx, loc: &Loc, e: &Error) {
    match e {
        Error::PasswordRequired | Error::MaybeBadPassword(_) => encrypted(ctx, loc),
        // Built without AES: an encrypted header or member shows up as this method.
        Error::UnsupportedCompressionMethod(m) if m.contains("AES") => encrypted(ctx, loc),
        Error::MaxMemLimited { max_kb, actaul_kb } => ctx.add(
            loc,
            Severity::Invalid,
            "7z/corrupt",
            None,
            format!(
                "7z archive asks for {actaul_kb} KiB of decoder memory, more than the {max_kb} KiB limit"
            ),
        ),
        _ => ctx.add(
            loc,
            Severity::Invalid,
            "7z/corrupt",
            None,
            format!("7z archive does not decode: {e}"),
        ),
    }
}

fn encrypted(ctx: &mut Ctx, loc: &Loc) {
    ctx.add(
        loc,
        Severity::Suspicious,
        "archive/encrypted",
        None,
        "encrypted 7z archive: its contents cannot be scanned",
    )
}
