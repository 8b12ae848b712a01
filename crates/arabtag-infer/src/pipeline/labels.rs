//! Model entity types to the guideline's, and entity records.

use std::collections::BTreeMap;

use arabtag_records::{CharText, ENTITY_TYPES, Entity, Span};

use crate::InferError;

/// Maps a model's entity types (`PERS`, `B-`/`I-` already removed) to
/// `PER`, `ORG`, `LOC` or `DATE`. A type the map does not name is dropped
/// (`MISC`). Keys match exactly (case included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    map: BTreeMap<String, String>,
}

impl LabelMap {
    /// A map from `(model type, guideline type)` pairs; errors when a target
    /// is not one of [`ENTITY_TYPES`].
    pub fn new<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, InferError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (from, to) in pairs {
            let (from, to) = (from.into(), to.into());
            if !ENTITY_TYPES.contains(&to.as_str()) {
                return Err(InferError::UnknownEntityType { from, to });
            }
            map.insert(from, to);
        }
        Ok(Self { map })
    }

    /// The usual names: `PER` `PERS` `PERSON` → PER; `ORG` `ORGANIZATION`
    /// `ORGANISATION` → ORG; `LOC` `LOCATION` `GPE` → LOC; `DATE` → DATE;
    /// anything else (`MISC`, `TIME`, `NORP`…) dropped.
    pub fn standard() -> Self {
        let pairs = [
            ("PER", "PER"),
            ("PERS", "PER"),
            ("PERSON", "PER"),
            ("ORG", "ORG"),
            ("ORGANIZATION", "ORG"),
            ("ORGANISATION", "ORG"),
            ("LOC", "LOC"),
            ("LOCATION", "LOC"),
            ("GPE", "LOC"),
            ("DATE", "DATE"),
        ];
        Self {
            map: pairs
                .iter()
                .map(|&(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Every type of `scheme` kept under its own name (`PERS`, `MISC`…): a
    /// benchmark's labels, not the guideline's.
    pub fn identity(scheme: &super::LabelScheme) -> Self {
        let map = scheme
            .names()
            .iter()
            .filter_map(|n| n.strip_prefix("B-").or_else(|| n.strip_prefix("I-")))
            .map(|t| (t.to_owned(), t.to_owned()))
            .collect();
        Self { map }
    }

    /// The guideline type of a model type, or `None` when it is dropped.
    pub fn get(&self, model_type: &str) -> Option<&str> {
        self.map.get(model_type).map(String::as_str)
    }

    /// The pairs, sorted by model type.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl Default for LabelMap {
    fn default() -> Self {
        Self::standard()
    }
}

/// An entity record whose `text` is the original slice `span` of `text`;
/// errors when the span does not lie in the text.
pub fn entity(
    text: &CharText<'_>,
    span: Span,
    kind: &str,
    score: Option<f64>,
) -> Result<Entity, InferError> {
    let slice = text
        .slice(span.start, span.end)
        .ok_or(InferError::SpanOutOfRange {
            start: span.start,
            end: span.end,
            len: text.len(),
        })?;
    Ok(Entity {
        start: span.start,
        end: span.end,
        kind: kind.to_string(),
        text: slice.to_string(),
        score,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn maps_and_drops() {
        let m = LabelMap::new([("PERS", "PER"), ("LOC", "LOC"), ("ORG", "ORG")]).unwrap();
        assert_eq!(m.get("PERS"), Some("PER"));
        assert_eq!(m.get("MISC"), None, "MISC is dropped");
        assert_eq!(m.get("pers"), None, "keys match exactly");
        let std = LabelMap::standard();
        assert_eq!(std.get("PERSON"), Some("PER"));
        assert_eq!(std.get("GPE"), Some("LOC"));
        assert_eq!(std.get("MISC"), None);
        assert_eq!(LabelMap::default(), std);
        assert_eq!(m.pairs().next(), Some(("LOC", "LOC")));
        let err = LabelMap::new([("MISC", "MISC")]).unwrap_err();
        assert!(
            matches!(&err, InferError::UnknownEntityType { from, to } if from == "MISC" && to == "MISC")
        );
    }

    #[test]
    fn entity_text_is_the_original_slice() {
        let text = "قال بوتينُ في باكو";
        let ct = CharText::new(text);
        let e = entity(&ct, Span::new(4, 10), "PER", Some(0.5)).unwrap();
        assert_eq!(e.text, "بوتينُ");
        assert_eq!(
            (e.start, e.end, e.kind.as_str(), e.score),
            (4, 10, "PER", Some(0.5))
        );
        assert!(matches!(
            entity(&ct, Span::new(15, 40), "LOC", None),
            Err(InferError::SpanOutOfRange {
                start: 15,
                end: 40,
                len: 18
            })
        ));
    }
}
