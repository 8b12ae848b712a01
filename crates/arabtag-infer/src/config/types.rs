//! The small typed values of a model config: digests, revisions, and the
//! enums its keys take (`ner.aggregation` takes the pipeline's
//! [`Aggregation`](crate::pipeline::Aggregation); the architecture is the
//! models' [`Architecture`](crate::models::Architecture)).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// Floating-point type the encoder computes in (`dtype` in the TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    Bf16,
}

impl DType {
    /// The TOML spelling: `f32`, `f16` or `bf16`.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<DType> for candle_core::DType {
    fn from(dtype: DType) -> Self {
        match dtype {
            DType::F32 => candle_core::DType::F32,
            DType::F16 => candle_core::DType::F16,
            DType::Bf16 => candle_core::DType::BF16,
        }
    }
}

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightsFormat {
    /// `model.safetensors` of a hub-layout checkpoint.
    Safetensors,
    /// The `E5S1` file of multilingual-e5-small with 4-bit (Q4_0) matrices
    /// (`models/README.md`).
    E5Q4,
}

/// An entity type of the guideline (`ANNOTATION.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntityType {
    Per,
    Org,
    Loc,
    Date,
}

impl EntityType {
    /// Every type, in the order of [`arabtag_records::ENTITY_TYPES`].
    pub const ALL: [EntityType; 4] = [
        EntityType::Per,
        EntityType::Org,
        EntityType::Loc,
        EntityType::Date,
    ];

    /// `PER`, `ORG`, `LOC` or `DATE`, as records spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Per => "PER",
            EntityType::Org => "ORG",
            EntityType::Loc => "LOC",
            EntityType::Date => "DATE",
        }
    }

    /// The type spelled `name` (exactly, upper case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stance label of the guideline (`ANNOTATION.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StanceLabel {
    Mediation,
    Conflict,
    Energy,
}

impl StanceLabel {
    /// Every label, in the order of [`arabtag_records::STANCE_LABELS`].
    pub const ALL: [StanceLabel; 3] = [
        StanceLabel::Mediation,
        StanceLabel::Conflict,
        StanceLabel::Energy,
    ];

    /// `mediation`, `conflict` or `energy`, as records spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            StanceLabel::Mediation => "mediation",
            StanceLabel::Conflict => "conflict",
            StanceLabel::Energy => "energy",
        }
    }

    /// The label spelled `name` (exactly, lower case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

impl fmt::Display for StanceLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SHA-256 digest; written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// The 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

/// A string that is not a SHA-256 in hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sha256 is 64 hex digits")]
pub struct InvalidSha256;

impl FromStr for Sha256 {
    type Err = InvalidSha256;

    /// 64 hex digits, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(InvalidSha256);
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(InvalidSha256)?;
            let lo = hex_value(pair[1]).ok_or(InvalidSha256)?;
            out[i] = hi << 4 | lo;
        }
        Ok(Sha256(out))
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A pinned hub revision: a full 40-hex commit hash (lower case). Branches
/// and tags are refused because they move.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Revision(String);

impl Revision {
    /// The commit hash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not a full commit hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pin a commit: its full hash, 40 hex digits (a branch or tag can move)")]
pub struct InvalidRevision;

impl FromStr for Revision {
    type Err = InvalidRevision;

    /// 40 hex digits, either case; kept in lower case as the hub cache names
    /// snapshot folders.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 40 && s.bytes().all(|c| hex_value(c).is_some()) {
            Ok(Revision(s.to_ascii_lowercase()))
        } else {
            Err(InvalidRevision)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sha256_round_trips_and_refuses_bad_text() {
        let hex = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f";
        let d: Sha256 = hex.parse().unwrap();
        assert_eq!(d.to_string(), hex);
        assert_eq!(hex.to_uppercase().parse::<Sha256>().unwrap(), d);
        assert!("abc".parse::<Sha256>().is_err());
        assert!(hex.replace('f', "g").parse::<Sha256>().is_err());
    }

    #[test]
    fn revision_is_a_full_commit_hash() {
        let r: Revision = "B5113EB38AB63EFDD7F280F8C144EA8B13F978CE".parse().unwrap();
        assert_eq!(r.as_str(), "b5113eb38ab63efdd7f280f8c144ea8b13f978ce");
        assert!("main".parse::<Revision>().is_err());
        assert!("b5113eb".parse::<Revision>().is_err());
    }

    #[test]
    fn names_match_the_records() {
        let types: Vec<&str> = EntityType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(types, arabtag_records::ENTITY_TYPES);
        let labels: Vec<&str> = StanceLabel::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(labels, arabtag_records::STANCE_LABELS);
    }
}
