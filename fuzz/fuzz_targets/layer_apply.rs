//! Arbitrary bytes as a layer, applied to an empty directory beside bait files.
//!
//! The first byte picks how: bit 0 gzips the rest before applying it (so the fuzzer can work
//! on the tar itself and still reach the decompressing path), bit 1 picks the whiteout mode.
//! Whatever the layer holds and however the apply ends, nothing outside the root may change,
//! and no overlayfs xattr the image carried may survive in it.
#![no_main]

use std::io::Write;

use berth_fuzz::sandbox::Sandbox;
use berth_snapshotter::archive::{ApplyOptions, WhiteoutMode, apply_layer};
use flate2::{Compression, write::GzEncoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&how, layer)) = data.split_first() else {
        return;
    };
    let gzipped;
    let layer = if how & 1 == 1 {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(layer).expect("gzip into memory");
        gzipped = encoder.finish().expect("gzip into memory");
        &gzipped[..]
    } else {
        layer
    };
    let whiteouts = if how & 2 == 0 {
        WhiteoutMode::Overlay
    } else {
        WhiteoutMode::Remove
    };
    let sandbox = Sandbox::new();
    let _ = apply_layer(layer, sandbox.root(), &ApplyOptions { whiteouts });
    sandbox.assert_confined();
    sandbox.assert_no_foreign_overlay_xattrs(whiteouts == WhiteoutMode::Overlay);
});
