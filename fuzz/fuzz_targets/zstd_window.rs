//! The zstd frame walk behind `airlockd node render`'s check of k3s's air-gap tarball: any
//! bytes give a window, "not zstd" or an error, never a panic or a read past the end.
#![no_main]
use airlock_node::archive::zstd_max_window;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = zstd_max_window(std::io::Cursor::new(data));
    // The same bytes behind a valid frame: the walk goes on to the second frame, and the first
    // frame alone reads as its one-byte window.
    let mut v = zstd_frame();
    v.extend_from_slice(data);
    let r = zstd_max_window(std::io::Cursor::new(&v));
    if data.is_empty() {
        assert_eq!(r, Ok(Some(1)));
    }
});

/// A one-byte single-segment frame (window = content size = 1).
fn zstd_frame() -> Vec<u8> {
    // magic, FHD (single segment, FCS 1 byte), FCS=1, raw last block of 1 byte, payload.
    vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x01, 0x09, 0x00, 0x00, b'x']
}
