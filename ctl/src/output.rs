//! How commands print lists and objects: aligned tables for people, `--format json` (one JSON
//! document per item) and Go-template-style `--format '{{.ID}}\t{{.Names}}'` for scripts.
//!
//! Templates understand the subset of Go's text/template that docker users write: `{{.Field}}`,
//! nested `{{.A.B}}`, `{{json .}}` / `{{json .Field}}`, `{{index .Labels "key"}}`, and the
//! `table` prefix that prints a header line of the field names. `\t` and `\n` escapes are
//! honoured as docker does.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// A parsed `--format` choice.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// The command's own table (the default).
    Table,
    /// One compact JSON document per item, one per line.
    Json,
    /// A Go-style template, rendered once per item; `header` when it began with `table`.
    Template {
        /// The template's parts.
        parts: Vec<Part>,
        /// Print a header row of the fields' names first.
        header: bool,
    },
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// `{{.A.B}}`: a field path (empty for `.`).
    Field(Vec<String>),
    /// `{{json .A}}`.
    Json(Vec<String>),
    /// `{{index .A "key"}}`.
    Index(Vec<String>, String),
}

impl Format {
    /// Parses a `--format` value; `None` or `table` means the default table.
    pub fn parse(format: Option<&str>) -> anyhow::Result<Format> {
        let Some(raw) = format else {
            return Ok(Format::Table);
        };
        match raw.trim() {
            "" | "table" => return Ok(Format::Table),
            "json" | "{{json .}}" => return Ok(Format::Json),
            _ => {}
        }
        let (body, header) = match raw.strip_prefix("table ") {
            Some(rest) => (rest, true),
            None => (raw, false),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        Ok(Format::Template {
            parts: parse_template(&body)?,
            header,
        })
    }
}

fn parse_path(expr: &str) -> anyhow::Result<Vec<String>> {
    let expr = expr.trim();
    if expr == "." {
        return Ok(Vec::new());
    }
    let Some(rest) = expr.strip_prefix('.') else {
        bail!("template: expected a field like .ID, got {expr:?}");
    };
    Ok(rest.split('.').map(str::to_string).collect())
}

fn parse_template(body: &str) -> anyhow::Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("template: unclosed action in {body:?}"))?;
        let action = after[..end].trim();
        let mut words = action.split_whitespace();
        let part = match words.next() {
            Some("json") => Part::Json(parse_path(words.next().unwrap_or("."))?),
            Some("index") => {
                let path = parse_path(words.next().unwrap_or(""))?;
                let key = words.collect::<Vec<_>>().join(" ");
                Part::Index(path, key.trim_matches('"').to_string())
            }
            Some(field) if field.starts_with('.') => Part::Field(parse_path(field)?),
            _ => bail!("template: unsupported action {{{{{action}}}}}"),
        };
        parts.push(part);
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Ok(parts)
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// A value as a template prints it: strings bare, null empty, everything else as JSON.
fn plain(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(map)) => {
            // Label maps print like docker's: k=v,k2=v2, sorted.
            let mut pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", plain(Some(v))))
                .collect();
            pairs.sort();
            pairs.join(",")
        }
        Some(other) => other.to_string(),
    }
}

/// Renders one item through a template.
pub fn render(parts: &[Part], item: &Value) -> String {
    parts
        .iter()
        .map(|part| match part {
            Part::Text(t) => t.clone(),
            Part::Field(path) => plain(lookup(item, path)),
            Part::Json(path) => lookup(item, path)
                .map(Value::to_string)
                .unwrap_or_else(|| "null".into()),
            Part::Index(path, key) => plain(lookup(item, path).and_then(|m| m.get(key))),
        })
        .collect()
}

fn header_of(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|part| match part {
            Part::Text(t) => t.clone(),
            Part::Field(p) | Part::Json(p) | Part::Index(p, _) => {
                p.last().map(|s| s.to_uppercase()).unwrap_or_default()
            }
        })
        .collect()
}

/// Prints rows as columns separated by at least three spaces (docker's tabwriter look).
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            s.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 3;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s
    };
    let _ = writeln!(out, "{}", line(headers.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// Prints items in the chosen format; `table` prints the command's own table via `table_rows`
/// (headers, rows); `-q` output is the caller's business.
pub fn print_items(
    format: &Format,
    items: &[Value],
    headers: &[&str],
    table_rows: impl Fn(&Value) -> Vec<String>,
) {
    match format {
        Format::Table => {
            let rows: Vec<Vec<String>> = items.iter().map(table_rows).collect();
            print_table(headers, &rows);
        }
        Format::Json => {
            for item in items {
                println!("{item}");
            }
        }
        Format::Template { parts, header } => {
            if *header {
                println!("{}", header_of(parts));
            }
            for item in items {
                println!("{}", render(parts, item));
            }
        }
    }
}

/// Prints whole objects (inspect): a JSON array by default, or each through a template.
pub fn print_objects(format: &Format, items: &[Value]) -> anyhow::Result<()> {
    match format {
        Format::Table => println!("{}", serde_json::to_string_pretty(items)?),
        Format::Json => {
            for item in items {
                println!("{item}");
            }
        }
        Format::Template { parts, .. } => {
            for item in items {
                println!("{}", render(parts, item));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_fields_json_and_index() {
        let item =
            json!({"ID": "abc", "State": {"Status": "running"}, "Labels": {"a": "1", "b": "2"}});
        let Format::Template { parts, header } = Format::parse(Some(
            "{{.ID}}\\t{{.State.Status}} {{index .Labels \"b\"}} {{json .State}}",
        ))
        .unwrap() else {
            panic!("not a template")
        };
        assert!(!header);
        assert_eq!(
            render(&parts, &item),
            "abc\trunning 2 {\"Status\":\"running\"}"
        );
        assert_eq!(
            render(&[Part::Field(vec!["Labels".into()])], &item),
            "a=1,b=2"
        );
    }

    #[test]
    fn parses_table_json_and_rejects_bad_templates() {
        assert_eq!(Format::parse(None).unwrap(), Format::Table);
        assert_eq!(Format::parse(Some("json")).unwrap(), Format::Json);
        assert!(matches!(
            Format::parse(Some("table {{.ID}}")).unwrap(),
            Format::Template { header: true, .. }
        ));
        assert!(Format::parse(Some("{{.ID")).is_err());
        assert!(Format::parse(Some("{{range .}}")).is_err());
        assert!(Format::parse(Some("{{ID}}")).is_err());
    }

    #[test]
    fn missing_fields_print_empty() {
        let parts = parse_template("[{{.Nope.Deeper}}]").unwrap();
        assert_eq!(render(&parts, &json!({})), "[]");
    }
}
