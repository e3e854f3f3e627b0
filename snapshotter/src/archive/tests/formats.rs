//! Tar dialects a layer may use: PAX records, GNU long names, GNU sparse files, blank
//! numeric fields.

use std::{fs, os::unix::fs::MetadataExt};

use filetime::FileTime;
use tar::{EntryType, Header};

use super::{Layer, apply, remove_mode, require_root};

#[test]
fn long_names_and_pax_records_are_read() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let long = format!("dir/{}", "n".repeat(200));
    let mut layer = Layer::new();
    layer.dir("dir/");
    layer.pax(&[
        ("path", long.as_bytes()),
        ("mtime", b"1700000000.25"),
        ("SCHILY.xattr.user.pax", b"value"),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
    ]);
    layer.file("ignored-short-name", "data");
    // A GNU long name via the tar crate's own writer.
    let mut header = Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o600);
    header.set_entry_type(EntryType::Regular);
    let gnu_long = format!("dir/{}", "g".repeat(180));
    layer
        .builder
        .append_data(&mut header, &gnu_long, &b"gnu"[..])
        .unwrap();
    let bytes = layer.finish();
    apply(&bytes, tmp.path(), &remove_mode()).unwrap();
    let pax_file = tmp.path().join(&long);
    assert_eq!(fs::read(&pax_file).unwrap(), b"data");
    assert_eq!(
        xattr::get(&pax_file, "user.pax").unwrap().unwrap(),
        b"value"
    );
    assert!(
        xattr::get(&pax_file, "trusted.overlay.opaque")
            .unwrap()
            .is_none()
    );
    let mtime = FileTime::from_last_modification_time(&fs::metadata(&pax_file).unwrap());
    assert_eq!(
        (mtime.unix_seconds(), mtime.nanoseconds()),
        (1_700_000_000, 250_000_000)
    );
    assert_eq!(fs::read(tmp.path().join(&gnu_long)).unwrap(), b"gnu");
}

#[test]
fn gnu_sparse_files_are_expanded_with_holes() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    const MIB: u64 = 1 << 20;
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}", width = field.len() - 1);
        field[..text.len()].copy_from_slice(text.as_bytes());
    };
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::GNUSparse);
    header.set_mode(0o640);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_600_000_000);
    header.set_size(1024); // stored bytes: two 512-byte chunks
    let gnu = header.as_gnu_mut().unwrap();
    gnu.name[..6].copy_from_slice(b"sparse");
    octal(&mut gnu.sparse[0].offset, MIB);
    octal(&mut gnu.sparse[0].numbytes, 512);
    octal(&mut gnu.sparse[1].offset, 2 * MIB);
    octal(&mut gnu.sparse[1].numbytes, 512);
    // GNU tar ends the map with an empty chunk at the real size (the trailing hole).
    octal(&mut gnu.sparse[2].offset, 3 * MIB);
    octal(&mut gnu.sparse[2].numbytes, 0);
    octal(&mut gnu.realsize, 3 * MIB);
    header.set_cksum();
    let mut data = vec![b'a'; 512];
    data.extend(vec![b'b'; 512]);
    let mut layer = Layer::new();
    layer.builder.append(&header, data.as_slice()).unwrap();
    apply(&layer.finish(), tmp.path(), &remove_mode()).unwrap();

    let path = tmp.path().join("sparse");
    let content = fs::read(&path).unwrap();
    assert_eq!(content.len() as u64, 3 * MIB);
    assert!(content[..MIB as usize].iter().all(|&b| b == 0));
    assert!(content[MIB as usize..][..512].iter().all(|&b| b == b'a'));
    assert!(
        content[2 * MIB as usize..][..512]
            .iter()
            .all(|&b| b == b'b')
    );
    assert!(content[2 * MIB as usize + 512..].iter().all(|&b| b == 0));
    let meta = fs::metadata(&path).unwrap();
    assert!(
        meta.blocks() * 512 < MIB,
        "holes were written: {} blocks",
        meta.blocks()
    );
    assert_eq!(meta.mode() & 0o7777, 0o640);
}
