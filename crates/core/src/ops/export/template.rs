//! The hand-off's text files are templates under `templates/export/`, compiled in, with
//! `{{name}}` placeholders. A placeholder without a value is left as it is; a unit test
//! renders every template with its gateway's values and finds none left.

use std::collections::BTreeMap;

/// The text of `templates/export/<path>`, compiled in.
macro_rules! template {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/export/",
            $path
        ))
    };
}
pub(crate) use template;

/// Placeholder values, by name.
#[derive(Clone, Debug, Default)]
pub struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    /// Adds (or replaces) the value of `{{name}}`.
    pub fn with(mut self, name: &'static str, value: impl ToString) -> Vars {
        self.0.insert(name, value.to_string());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Replaces every `{{name}}` of `template` that `vars` has a value for, in one pass (a
/// value is never scanned for placeholders itself).
pub fn render(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(len) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match vars.get(after[..len].trim()) {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + len + 2]),
        }
        rest = &after[len + 2..];
    }
    out.push_str(rest);
    out
}

/// A YAML (or JSON) double-quoted scalar.
pub fn yaml_quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Every line of `text` indented by `n` spaces: the body of a YAML block scalar.
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A value for an XML attribute in double quotes.
pub fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Pretty JSON with a final newline.
pub fn json(v: &serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(v).expect("JSON values serialise")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_and_keeps_unknown_placeholders() {
        let v = Vars::default().with("a", "1").with("b", "{{a}}");
        assert_eq!(render("x{{a}}y{{ b }}z", &v), "x1y{{a}}z");
        assert_eq!(render("{{nope}} {{a}}", &v), "{{nope}} 1");
        assert_eq!(render("open {{a", &v), "open {{a");
        assert_eq!(render("{ single } braces", &v), "{ single } braces");
    }

    #[test]
    fn quoting() {
        assert_eq!(yaml_quoted("a\"b"), "\"a\\\"b\"");
        assert_eq!(indent("a\nb\n", 2), "  a\n  b\n");
        assert_eq!(xml_attr("<R&D \"x\">"), "&lt;R&amp;D &quot;x&quot;&gt;");
    }
}
