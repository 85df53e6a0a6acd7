//! What a command prints: the API's JSON as it came (`-o json`), the same as YAML (`-o yaml`),
//! or a table drawn from it (the default); and the helpers the tables are drawn with.

use std::fmt::Write as _;

use serde_json::Value;

use crate::cli::OutputFormat;

/// A command's result: the value, its table, and the format asked for.
#[derive(Debug, Clone)]
pub struct Output {
    value: Value,
    table: String,
    format: OutputFormat,
    /// Printed as it is, whatever the format (a kubeconfig, a completion script).
    raw: bool,
}

impl Output {
    /// `value`, drawn as `table` for the table format.
    pub fn new(value: Value, table: String, format: OutputFormat) -> Self {
        Self {
            value,
            table,
            format,
            raw: false,
        }
    }

    /// Text printed as it is in every format.
    pub fn raw(text: String) -> Self {
        Self {
            value: Value::String(text.clone()),
            table: text,
            format: OutputFormat::Table,
            raw: true,
        }
    }

    /// The value (the API's answer, or what the command reports).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The format asked for.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// The table.
    pub fn table(&self) -> String {
        self.table.clone()
    }

    /// One JSON document.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.value).expect("a JSON value serializes")
    }

    /// One YAML document.
    pub fn yaml(&self) -> String {
        yaml(&self.value)
    }

    /// What to print: the format asked for, ending with a line break.
    pub fn render(&self) -> String {
        let mut text = match (self.raw, self.format) {
            (true, _) | (false, OutputFormat::Table) => self.table.clone(),
            (false, OutputFormat::Json) => self.json(),
            (false, OutputFormat::Yaml) => self.yaml(),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

/// `value` as YAML.
pub fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# cannot write YAML: {e}\n"))
}

/// The `items` of a list answer.
pub fn items(value: &Value) -> &[Value] {
    value["items"].as_array().map_or(&[], Vec::as_slice)
}

/// A string as it is, another value as JSON, `null` as `None`.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// [`text`], `-` for nothing.
pub fn shown(value: &Value) -> String {
    text(value)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// `yes`, `no` or `-`.
pub fn yes_no(value: &Value) -> String {
    match value.as_bool() {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "-".to_owned(),
    }
}

/// An array as `a,b,c`.
pub fn list(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(shown).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

/// [`list`], `-` for an empty one.
pub fn list_or_dash(value: &Value) -> String {
    let list = list(value);
    if list.is_empty() {
        "-".to_owned()
    } else {
        list
    }
}

/// An object as `k=v,k=v`, `-` for an empty one.
pub fn pairs(value: &Value) -> String {
    let pairs: Vec<String> = value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{k}={}", text(v).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        "-".to_owned()
    } else {
        pairs.join(",")
    }
}

/// Unix milliseconds as UTC, to the second.
pub fn time(value: &Value) -> String {
    value
        .as_i64()
        .and_then(|ms| jiff::Timestamp::from_second(ms.div_euclid(1000)).ok())
        .map_or_else(|| "-".to_owned(), |t| t.to_string())
}

/// Left-aligned columns two spaces apart; the last column is not padded.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut widths = vec![0; header.len()];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i == last {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `name: value` lines, the values aligned.
pub fn fields(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in fields {
        let _ = writeln!(out, "{:width$} {value}", format!("{key}:"));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let out = table(
            &["ID", "NAME", "STATE"],
            vec![
                vec!["a".into(), "long-name".into(), "connected".into()],
                vec!["bbbb".into(), "x".into(), "-".into()],
            ],
        );
        assert_eq!(
            out,
            "ID    NAME       STATE\na     long-name  connected\nbbbb  x          -\n"
        );
    }

    #[test]
    fn every_format_renders_the_same_value() {
        let value = json!({"items": [{"id": "a", "labels": {"env": "prod"}}]});
        let table = table(&["ID"], vec![vec!["a".into()]]);
        let out = Output::new(value.clone(), table.clone(), OutputFormat::Table);
        assert_eq!(out.render(), table);
        let json = Output::new(value.clone(), table.clone(), OutputFormat::Json).render();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), value);
        let yaml = Output::new(value.clone(), table, OutputFormat::Yaml).render();
        let back: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, value, "{yaml}");
        assert_eq!(Output::raw("a: b".into()).render(), "a: b\n");
    }

    #[test]
    fn cells_show_absent_values_as_a_dash() {
        assert_eq!(shown(&Value::Null), "-");
        assert_eq!(shown(&json!("")), "-");
        assert_eq!(shown(&json!(3)), "3");
        assert_eq!(pairs(&json!({"a": "1", "b": "2"})), "a=1,b=2");
        assert_eq!(pairs(&json!({})), "-");
        assert_eq!(list_or_dash(&json!([])), "-");
        assert_eq!(time(&json!(1_767_225_600_000_i64)), "2026-01-01T00:00:00Z");
    }
}
