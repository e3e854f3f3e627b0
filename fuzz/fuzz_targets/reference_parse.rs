//! Image references: any string either parses or is refused, and a parsed reference reads
//! back equal from its full string form (`Display`) and from its familiar short form.
#![no_main]

use berth_services::registry::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reference) = Reference::parse(text) else {
        return;
    };
    let full = reference.to_string();
    match Reference::parse(&full) {
        Ok(again) => assert_eq!(again, reference, "{text:?} -> {full:?}"),
        Err(e) => panic!("{text:?} parsed, its string form {full:?} did not: {e:?}"),
    }
    let familiar = reference.familiar();
    match Reference::parse(&familiar) {
        Ok(again) => assert_eq!(again, reference, "{text:?} -> {familiar:?}"),
        Err(e) => panic!("{text:?} parsed, its familiar form {familiar:?} did not: {e:?}"),
    }
    let _ = (reference.host(), reference.name(), reference.object());
});
