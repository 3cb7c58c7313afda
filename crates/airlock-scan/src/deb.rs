//! Debian packages: a `.deb` whose control file apt and dpkg would read differently (a second
//! deb822 paragraph, a field line without a name, a control character) is reported `invalid`,
//! so that `airlock pack` signs the finding and the import policy refuses the package before
//! the appliance could publish it in its apt repository. The rest of the file is scanned like
//! any other.

use crate::source::SourceReader;
use crate::{Ctx, Loc, Severity, Source};

/// Checks the control paragraph of the `.deb` in `src`.
pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) {
    let checked = airlock_deb::control_of(SourceReader::new(src))
        .map_err(|e| e.to_string())
        .and_then(|c| airlock_deb::check_control(c.as_bytes()));
    if let Err(e) = checked {
        ctx.add(
            loc,
            Severity::Invalid,
            "deb/control",
            None,
            format!("Debian package whose control data apt and dpkg cannot agree on: {e}"),
        );
    }
}
