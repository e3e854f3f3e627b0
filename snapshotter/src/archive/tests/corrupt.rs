//! Broken layers: truncated or corrupt streams and entries we do not support are errors
//! (never panics), and nothing outside the root changes meanwhile.

use berth_proto::errdefs::Kind;
use tar::EntryType;

use super::{Layer, gzip, hostile::Arena, remove_mode, require_root, zstd};

/// A valid layer with a file big enough to cut in its data.
fn sample() -> Vec<u8> {
    let data = "0123456789".repeat(1000);
    Layer::new()
        .dir("d/")
        .file("d/f", &data)
        .file("g", "tail")
        .finish()
}

#[test]
fn truncated_and_corrupt_streams_are_errors() {
    require_root!();
    let full = sample();
    let arena = Arena::new();
    let whole = arena.apply(&full, &remove_mode()).unwrap();
    // Every cut either fails or (cut on a block boundary after the last entry) yields a
    // different diff ID; a cut inside file data is DataLoss.
    for cut in (0..full.len()).step_by(97) {
        let arena = Arena::new();
        match arena.apply(&full[..cut], &remove_mode()) {
            Ok(applied) => assert_ne!(applied.diff_id, whole.diff_id, "cut at {cut}"),
            Err(err) => assert!(
                matches!(err.kind, Kind::DataLoss | Kind::InvalidArgument),
                "cut at {cut}: {err}"
            ),
        }
    }
    let err = Arena::new()
        .apply(&full[..2000], &remove_mode())
        .unwrap_err();
    assert_eq!(err.kind, Kind::DataLoss, "{err}");

    for (name, compressed) in [("gzip", gzip(&full)), ("zstd", zstd(&full))] {
        let mid = compressed.len() / 2;
        let err = Arena::new()
            .apply(&compressed[..mid], &remove_mode())
            .unwrap_err();
        assert_eq!(err.kind, Kind::DataLoss, "{name} truncated: {err}");
        let mut flipped = compressed.clone();
        for byte in &mut flipped[20..mid] {
            *byte ^= 0x5a;
        }
        let err = Arena::new().apply(&flipped, &remove_mode()).unwrap_err();
        assert_eq!(err.kind, Kind::DataLoss, "{name} corrupt: {err}");
        // Only the trailer lost: the data decodes, the check at the end fails.
        let short = &compressed[..compressed.len() - 4];
        assert!(
            Arena::new().apply(short, &remove_mode()).is_err(),
            "{name} without trailer"
        );
    }

    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let err = Arena::new().apply(&garbage, &remove_mode()).unwrap_err();
    assert_eq!(err.kind, Kind::DataLoss, "{err}");
}

#[test]
fn unsupported_entries_are_invalid() {
    require_root!();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "volume header",
            Layer::new()
                .raw(EntryType::new(b'V'), "vol", "", 0, b"")
                .finish(),
        ),
        (
            "PAX sparse",
            Layer::new()
                .pax(&[("GNU.sparse.major", b"1")])
                .file("s", "x")
                .finish(),
        ),
        (
            "NUL in a PAX path",
            Layer::new()
                .pax(&[("path", b"a\0b")])
                .file("n", "x")
                .finish(),
        ),
        ("empty symlink", Layer::new().symlink("e", "").finish()),
        (
            "symlink as the root",
            Layer::new().symlink(".", "x").finish(),
        ),
        ("whiteout of ..", Layer::new().file("d/.wh...", "").finish()),
    ];
    for (name, layer) in cases {
        let err = Arena::new().apply(&layer, &remove_mode()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument, "{name}: {err}");
    }
}
