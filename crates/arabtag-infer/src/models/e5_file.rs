//! The `E5S1` file's format: header, vocabulary, tensor directory, each
//! size checked as the wheel's `e5.c` (`e5_parse`) checks it, and each
//! tensor's bytes read on demand ([`super::e5`] builds the model from them).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::e5::{E5_MAGIC, E5_VERSION, Q4_BLOCK, Q4_BLOCK_BYTES};
use crate::InferError;

/// What is wrong with an `E5S1` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum E5Problem {
    /// Not an `E5S1` file.
    #[error("magic is {found:?}, expected \"E5S1\"")]
    BadMagic {
        /// The first bytes.
        found: Vec<u8>,
    },
    /// Another version of the format.
    #[error("version {found} is not supported (only {E5_VERSION} is)")]
    Version {
        /// The version in the file.
        found: u32,
    },
    /// The file ends before the field does.
    #[error("needs {needed} bytes at offset {offset}, the file has {file_len}")]
    Truncated {
        /// Where the field starts.
        offset: u64,
        /// Its length.
        needed: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A header value out of range.
    #[error("{value} is invalid: {rule}")]
    Invalid {
        /// The value read.
        value: String,
        /// What it must be.
        rule: &'static str,
    },
    /// A dtype code other than 0 (f32) and 1 (Q4_0).
    #[error("unknown dtype code {0}")]
    UnknownDtype(u8),
    /// A vector stored quantized.
    #[error("is Q4_0, must be f32")]
    MustBeF32,
    /// The element count disagrees with the header.
    #[error("{found} elements, expected {expected}")]
    Elements {
        /// From the header's sizes.
        expected: u64,
        /// In the directory.
        found: u64,
    },
    /// The byte length disagrees with the element count.
    #[error("{found} bytes, expected {expected}")]
    Bytes {
        /// From the element count and dtype.
        expected: u64,
        /// In the directory.
        found: u64,
    },
    /// A tensor the model needs is not in the directory.
    #[error("missing from the tensor directory")]
    Missing,
    /// A name listed twice.
    #[error("listed twice in the tensor directory")]
    Duplicate,
    /// A name that is not UTF-8.
    #[error("tensor name is not UTF-8")]
    NameNotUtf8,
}

/// The sizes and special ids in an `E5S1` header.
#[derive(Debug, Clone, PartialEq)]
pub struct E5Header {
    /// Format version.
    pub version: u32,
    /// Width of the hidden states.
    pub hidden: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward width.
    pub ffn: usize,
    /// Rows of the word table.
    pub vocab: usize,
    /// Rows of the position table (positions start at 0).
    pub max_positions: usize,
    /// Token types.
    pub type_vocab: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f32,
    /// Q4 block size (32).
    pub block_size: usize,
    /// Pieces of the embedded SentencePiece vocabulary.
    pub pieces: usize,
    /// `<s>`.
    pub bos: u32,
    /// `</s>`.
    pub eos: u32,
    /// `<pad>`.
    pub pad: u32,
    /// `<unk>`.
    pub unk: u32,
}

/// Storage of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E5DType {
    /// Little-endian f32.
    F32,
    /// GGML Q4_0 blocks.
    Q4_0,
}

/// One entry of the tensor directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E5Entry {
    /// e.g. `l3.fi.w`.
    pub name: String,
    /// Storage.
    pub dtype: E5DType,
    /// Number of values.
    pub elements: u64,
    /// Byte offset in the file.
    pub offset: u64,
    /// Byte length.
    pub bytes: u64,
}

/// A parsed `E5S1` file, its bytes held.
pub struct E5File {
    pub(super) path: PathBuf,
    pub(super) header: E5Header,
    pub(super) entries: Vec<E5Entry>,
    data: E5Bytes,
}

/// Where a parsed file's tensors are read from.
enum E5Bytes {
    /// The whole file, in memory ([`E5File::parse`]).
    Memory(Vec<u8>),
    /// The open file, each tensor read when it is needed ([`E5File::read`]):
    /// the 72 MB file is never in memory whole beside the model built from
    /// it.
    File(std::fs::File),
}

impl std::fmt::Debug for E5File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E5File")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("tensors", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// A bounds-checked little-endian reader naming the file in its errors.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn error(&self, field: impl Into<String>, problem: E5Problem) -> InferError {
        InferError::E5Format {
            path: self.path.to_owned(),
            field: field.into(),
            problem,
        }
    }

    fn take(&mut self, n: u64, field: &str) -> Result<&'a [u8], InferError> {
        let truncated = || E5Problem::Truncated {
            offset: self.pos as u64,
            needed: n,
            file_len: self.data.len() as u64,
        };
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.error(field, truncated()))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], InferError> {
        let bytes = self.take(N as u64, field)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self, field: &str) -> Result<u8, InferError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &str) -> Result<u16, InferError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &str) -> Result<u32, InferError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &str) -> Result<i32, InferError> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &str) -> Result<u64, InferError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn f32(&mut self, field: &str) -> Result<f32, InferError> {
        Ok(f32::from_le_bytes(self.array(field)?))
    }

    /// An i32 that must be at least `min`.
    fn count(&mut self, field: &str, min: i32) -> Result<usize, InferError> {
        let v = self.i32(field)?;
        usize::try_from(v).ok().filter(|_| v >= min).ok_or_else(|| {
            self.error(
                field,
                E5Problem::Invalid {
                    value: v.to_string(),
                    rule: if min > 0 {
                        "must be positive"
                    } else {
                        "must not be negative"
                    },
                },
            )
        })
    }
}

impl E5File {
    /// Reads and parses the header, vocabulary and tensor directory of
    /// `path` (a prefix of the file, grown until they fit); the tensors are
    /// read from the file when the model is built.
    pub fn read(path: &Path) -> Result<Self, InferError> {
        use std::os::unix::fs::FileExt;
        let io = |source| InferError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut prefix_len = len.min(4 << 20);
        loop {
            let mut prefix = vec![0u8; usize::try_from(prefix_len).unwrap_or(usize::MAX)];
            file.read_exact_at(&mut prefix, 0).map_err(io)?;
            match Self::parse_directory(&prefix, len, path) {
                Ok((header, entries)) => {
                    let parsed = Self {
                        path: path.to_owned(),
                        header,
                        entries,
                        data: E5Bytes::File(file),
                    };
                    parsed.check_tensors()?;
                    return Ok(parsed);
                }
                // The directory runs past the prefix: read more.
                Err(InferError::E5Format {
                    problem: E5Problem::Truncated { .. },
                    ..
                }) if prefix_len < len => prefix_len = len.min(prefix_len * 4),
                Err(e) => return Err(e),
            }
        }
    }

    /// Parses the bytes of an `E5S1` file; `path` is named in errors.
    pub fn parse(data: Vec<u8>, path: &Path) -> Result<Self, InferError> {
        let (header, entries) = Self::parse_directory(&data, data.len() as u64, path)?;
        let file = Self {
            path: path.to_owned(),
            header,
            entries,
            data: E5Bytes::Memory(data),
        };
        file.check_tensors()?;
        Ok(file)
    }

    /// The header and tensor directory from the first bytes of a file of
    /// `file_len` bytes (tensors must end within `file_len`).
    fn parse_directory(
        data: &[u8],
        file_len: u64,
        path: &Path,
    ) -> Result<(E5Header, Vec<E5Entry>), InferError> {
        let _span = tracing::debug_span!("e5_parse", path = %path.display()).entered();
        let mut c = Cursor { data, pos: 0, path };
        let magic = c.take(4, "magic")?;
        if magic != E5_MAGIC {
            return Err(c.error(
                "magic",
                E5Problem::BadMagic {
                    found: magic.to_vec(),
                },
            ));
        }
        let version = c.u32("version")?;
        if version != E5_VERSION {
            return Err(c.error("version", E5Problem::Version { found: version }));
        }
        let hidden = c.count("hidden", 1)?;
        let layers = c.count("layers", 1)?;
        let heads = c.count("heads", 1)?;
        let ffn = c.count("ffn", 1)?;
        let vocab = c.count("vocab", 1)?;
        let max_positions = c.count("max_positions", 1)?;
        let type_vocab = c.count("type_vocab", 1)?;
        let layer_norm_eps = c.f32("layer_norm_eps")?;
        let block_size = c.count("block_size", 1)?;
        let invalid = |value: &dyn std::fmt::Display, rule| E5Problem::Invalid {
            value: value.to_string(),
            rule,
        };
        if block_size != Q4_BLOCK {
            return Err(c.error("block_size", invalid(&block_size, "must be 32")));
        }
        for (field, value) in [("hidden", hidden), ("ffn", ffn)] {
            if !value.is_multiple_of(Q4_BLOCK) {
                return Err(c.error(field, invalid(&value, "must be a multiple of 32")));
            }
        }
        if !hidden.is_multiple_of(heads) {
            return Err(c.error("heads", invalid(&heads, "must divide hidden")));
        }
        if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
            return Err(c.error(
                "layer_norm_eps",
                invalid(&layer_norm_eps, "must be a positive number"),
            ));
        }

        // The SentencePiece vocabulary: read past it, keep the special ids.
        let pieces = c.count("vocab.count", 0)?;
        let mut special = [0u32; 4];
        for (slot, field) in
            special
                .iter_mut()
                .zip(["vocab.bos", "vocab.eos", "vocab.pad", "vocab.unk"])
        {
            let id = c.count(field, 0)?;
            if id >= vocab {
                return Err(c.error(field, invalid(&id, "must be below vocab")));
            }
            *slot = u32::try_from(id).unwrap_or(u32::MAX);
        }
        let blob_len = c.u64("vocab.blob_length")?;
        let offsets = c.take((pieces as u64 + 1) * 4, "vocab.offsets")?;
        let last_offset = offsets
            .chunks_exact(4)
            .last()
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if u64::from(last_offset) > blob_len {
            return Err(c.error(
                "vocab.offsets",
                invalid(&last_offset, "must end within the blob"),
            ));
        }
        c.take(pieces as u64 * 4, "vocab.scores")?;
        c.take(blob_len, "vocab.blob")?;
        c.count("normalizer.count", 0)?;
        let norm_len = c.u32("normalizer.bytes")?;
        c.take(u64::from(norm_len), "normalizer")?;

        let n_tensors = c.count("tensors.count", 0)?;
        let mut entries: Vec<E5Entry> = Vec::with_capacity(n_tensors.min(4096));
        for i in 0..n_tensors {
            let field = format!("tensors[{i}]");
            let name_len = c.u16(&field)?;
            let name = std::str::from_utf8(c.take(u64::from(name_len), &field)?)
                .map_err(|_| c.error(field.clone(), E5Problem::NameNotUtf8))?
                .to_owned();
            let dtype = match c.u8(&name)? {
                0 => E5DType::F32,
                1 => E5DType::Q4_0,
                other => return Err(c.error(name, E5Problem::UnknownDtype(other))),
            };
            let elements = u64::from(c.u32(&name)?);
            let offset = c.u64(&name)?;
            let bytes = c.u64(&name)?;
            let expected = match dtype {
                E5DType::F32 => elements * 4,
                E5DType::Q4_0 if elements.is_multiple_of(Q4_BLOCK as u64) => {
                    elements / Q4_BLOCK as u64 * Q4_BLOCK_BYTES as u64
                }
                E5DType::Q4_0 => {
                    return Err(c.error(
                        name,
                        E5Problem::Invalid {
                            value: elements.to_string(),
                            rule: "Q4_0 element count must be a multiple of 32",
                        },
                    ));
                }
            };
            if bytes != expected {
                return Err(c.error(
                    name,
                    E5Problem::Bytes {
                        expected,
                        found: bytes,
                    },
                ));
            }
            let fits = offset.checked_add(bytes).is_some_and(|end| end <= file_len);
            if !fits {
                let problem = E5Problem::Truncated {
                    offset,
                    needed: bytes,
                    file_len,
                };
                return Err(c.error(name, problem));
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(c.error(name, E5Problem::Duplicate));
            }
            entries.push(E5Entry {
                name,
                dtype,
                elements,
                offset,
                bytes,
            });
        }
        let [bos, eos, pad, unk] = special;
        let header = E5Header {
            version,
            hidden,
            layers,
            heads,
            ffn,
            vocab,
            max_positions,
            type_vocab,
            layer_norm_eps,
            block_size,
            pieces,
            bos,
            eos,
            pad,
            unk,
        };
        Ok((header, entries))
    }

    /// The header.
    pub fn header(&self) -> &E5Header {
        &self.header
    }

    /// The tensor directory, in file order.
    pub fn entries(&self) -> &[E5Entry] {
        &self.entries
    }

    pub(super) fn error(&self, field: &str, problem: E5Problem) -> InferError {
        InferError::E5Format {
            path: self.path.clone(),
            field: field.to_owned(),
            problem,
        }
    }

    pub(super) fn entry(&self, name: &str) -> Result<&E5Entry, InferError> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| self.error(name, E5Problem::Missing))
    }

    /// Every tensor the model needs: its element count against the header,
    /// and f32 where the engine reads f32.
    fn check_tensors(&self) -> Result<(), InferError> {
        let h = self.header.hidden as u64;
        let ff = self.header.ffn as u64;
        let mut wanted: Vec<(String, u64, bool)> = vec![
            ("emb.word".into(), self.header.vocab as u64 * h, true),
            (
                "emb.pos".into(),
                self.header.max_positions as u64 * h,
                false,
            ),
            ("emb.ln.w".into(), h, false),
            ("emb.ln.b".into(), h, false),
        ];
        for l in 0..self.header.layers {
            for (part, elements, matrix) in [
                ("q.w", h * h, true),
                ("k.w", h * h, true),
                ("v.w", h * h, true),
                ("ao.w", h * h, true),
                ("fi.w", ff * h, true),
                ("fo.w", h * ff, true),
                ("q.b", h, false),
                ("k.b", h, false),
                ("v.b", h, false),
                ("ao.b", h, false),
                ("fi.b", ff, false),
                ("fo.b", h, false),
                ("aln.w", h, false),
                ("aln.b", h, false),
                ("oln.w", h, false),
                ("oln.b", h, false),
            ] {
                wanted.push((format!("l{l}.{part}"), elements, matrix));
            }
        }
        for (name, expected, matrix) in wanted {
            let e = self.entry(&name)?;
            if e.elements != expected {
                return Err(self.error(
                    &name,
                    E5Problem::Elements {
                        expected,
                        found: e.elements,
                    },
                ));
            }
            if !matrix && e.dtype != E5DType::F32 {
                return Err(self.error(&name, E5Problem::MustBeF32));
            }
        }
        // The engine stores one or more token-type rows and adds row 0.
        let t = self.entry("emb.type")?;
        if t.dtype != E5DType::F32 {
            return Err(self.error("emb.type", E5Problem::MustBeF32));
        }
        if t.elements < h || !t.elements.is_multiple_of(h) {
            let expected = self.header.type_vocab as u64 * h;
            return Err(self.error(
                "emb.type",
                E5Problem::Elements {
                    expected,
                    found: t.elements,
                },
            ));
        }
        Ok(())
    }

    /// A tensor's bytes: borrowed from memory, or read from the file.
    pub(super) fn bytes_of(&self, e: &E5Entry) -> Result<Cow<'_, [u8]>, InferError> {
        // Bounds were checked in `parse_directory`.
        let start = usize::try_from(e.offset).unwrap_or(usize::MAX);
        let len = usize::try_from(e.bytes).unwrap_or(0);
        match &self.data {
            E5Bytes::Memory(data) => Ok(Cow::Borrowed(
                data.get(start..start.saturating_add(len))
                    .unwrap_or_default(),
            )),
            E5Bytes::File(file) => {
                use std::os::unix::fs::FileExt;
                let mut out = vec![0u8; len];
                file.read_exact_at(&mut out, e.offset)
                    .map_err(|source| InferError::Read {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok(Cow::Owned(out))
            }
        }
    }
}
