//! template.yaml as the static checks read it: SAM source, short-form tags
//! included. (Deployed stacks come from `scripts/local_stack.py`, through the
//! SAM transform and CloudFormation; this reader only serves the checks.)
#![allow(dead_code)]

use std::path::Path;

use serde_norway::Value;

/// A CloudFormation/SAM template, short-form tags included.
pub struct Template {
    doc: Value,
}

/// A value in the template that CloudFormation resolves at deploy time.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    Literal(String),
    Ref(String),
    GetAtt(String, String),
    /// `!Join [sep, !Ref List]`: a list parameter as one string.
    JoinRef(String, String),
    Other,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        serde_norway::from_str(text)
            .map(|doc| Self { doc })
            .map_err(|e| format!("template is not YAML: {e}"))
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(id, body)| {
                Some((id.as_str()?, body["Type"].as_str()?, &body["Properties"]))
            })
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.doc["Resources"].get(logical_id)
    }

    pub fn parameter_default(&self, name: &str) -> Option<String> {
        scalar(&self.doc["Parameters"][name]["Default"])
    }

    /// The environment variables of a function resource, unresolved.
    pub fn function_environment(&self, logical_id: &str) -> Vec<(String, TemplateValue)> {
        let vars = &self.doc["Resources"][logical_id]["Properties"]["Environment"]["Variables"];
        vars.as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), template_value(v))))
            .collect()
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads `!Ref X`, `!GetAtt X.Attr`, their long forms, or a literal.
pub fn template_value(v: &Value) -> TemplateValue {
    if let Some(literal) = scalar(v) {
        return TemplateValue::Literal(literal);
    }
    let (tag, inner) = match v {
        Value::Tagged(t) => (t.tag.to_string(), &t.value),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, inner) = m.iter().next().expect("one entry");
            (
                k.as_str()
                    .unwrap_or_default()
                    .replace("Fn::", "!")
                    .replace("Ref", "!Ref"),
                inner,
            )
        }
        _ => return TemplateValue::Other,
    };
    match (tag.as_str(), inner) {
        ("!Ref", Value::String(name)) => TemplateValue::Ref(name.clone()),
        ("!GetAtt", Value::String(path)) => match path.split_once('.') {
            Some((id, attr)) => TemplateValue::GetAtt(id.into(), attr.into()),
            None => TemplateValue::Other,
        },
        ("!GetAtt", Value::Sequence(parts)) if parts.len() == 2 => TemplateValue::GetAtt(
            parts[0].as_str().unwrap_or_default().into(),
            parts[1].as_str().unwrap_or_default().into(),
        ),
        ("!Join", Value::Sequence(parts)) if parts.len() == 2 => {
            match (parts[0].as_str(), template_value(&parts[1])) {
                (Some(sep), TemplateValue::Ref(id)) => TemplateValue::JoinRef(sep.into(), id),
                _ => TemplateValue::Other,
            }
        }
        _ => TemplateValue::Other,
    }
}
