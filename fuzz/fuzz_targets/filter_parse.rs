//! containerd's filter language: any string either parses or is refused, and a parsed filter
//! matches any object without panicking, the same way twice.
#![no_main]

use std::collections::HashMap;

use berth_proto::filters::{Adaptor, Filter, label_field};
use libfuzzer_sys::fuzz_target;

/// An object with a name, labels and a nested field, like the ones `List` calls filter.
struct Object {
    name: &'static str,
    labels: HashMap<String, String>,
}

impl Adaptor for Object {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.split_first() {
            Some((first, [])) if first == "name" => Some(self.name.to_string()),
            Some((first, [])) if first == "target" => Some(String::new()),
            Some((first, rest)) if first == "labels" => label_field(&self.labels, rest),
            _ => None,
        }
    }
}

fn objects() -> Vec<Object> {
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    vec![
        Object {
            name: "",
            labels: HashMap::new(),
        },
        Object {
            name: "docker.io/library/busybox:latest",
            labels: labels(&[("io.containerd.x", "y"), ("a", ""), ("é", "ü\u{0}")]),
        },
        Object {
            name: "name==foo,labels.bar",
            labels: labels(&[("bar", "too complex, yo"), ("", "")]),
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let objects = objects();
    // One string parses alike alone and as the only alternative.
    match (Filter::parse(text), Filter::parse_all(&[text])) {
        (Ok(one), Ok(all)) => {
            for object in &objects {
                assert_eq!(one.matches(object), all.matches(object), "{text:?}");
            }
        }
        (Err(_), Err(_)) => {}
        (one, all) => panic!("{text:?}: parse gave {one:?}, parse_all {all:?}"),
    }
    // Several strings are OR-ed: all of them parse, and a match is a match of any.
    let alternatives: Vec<&str> = text.split('\n').collect();
    let Ok(any) = Filter::parse_all(&alternatives) else {
        return;
    };
    let each: Vec<Filter> = alternatives
        .iter()
        .map(|a| Filter::parse(a).expect("an alternative parse_all accepted"))
        .collect();
    for object in &objects {
        let expected = each.iter().any(|f| f.matches(object));
        assert_eq!(any.matches(object), expected, "{alternatives:?}");
    }
});
