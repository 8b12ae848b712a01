"""Type stubs of the extension module arabtag._arabtag."""

import os
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

__version__: str

Record = dict[str, Any]
"""One document's record, as `arabtag tag` writes it (seeds/ANNOTATION.md):
``{"id", "entities": [{"start", "end", "type", "text", "score"}],
"segments": [{"start", "end", "labels", "score"}]}``, or ``{"id", "error"}``."""

Document = Union[str, Mapping[str, str]]
"""A text (its index in the list is its id) or a ``{"id", "text"}`` mapping."""

class ArabtagError(Exception):
    """A model, a config or an input that arabtag cannot use; the message is the CLI's."""

class Tagger:
    """A model config loaded once; tag as many batches with it as you like.

    ``config_path``: the model config (TOML); when None, ``$ARABTAG_MODEL``.
    Relative paths inside a config count from the config's own folder.
    ``threads``: threads this tagger's work runs on (default: every core,
    or ``RAYON_NUM_THREADS``). ``batch_size``: windows or segments per
    encoder call. ``offline``: never touch the network.

    Raises FileNotFoundError when the config file does not exist,
    ArabtagError when it or a file it names cannot be used (a wrong sha256,
    labels that disagree with the head), ValueError for threads or
    batch_size of 0.
    """

    def __init__(
        self,
        config_path: Optional[Union[str, os.PathLike[str]]] = None,
        threads: Optional[int] = None,
        batch_size: int = 16,
        offline: bool = False,
    ) -> None: ...
    def tag(self, docs: Iterable[Document]) -> list[Record]:
        """One record per document, in order, equal to the CLI's record for it.

        A document that is not a str or mapping, lacks a string ``id`` or
        ``text``, has an empty or repeated id, or fails in the model gets an
        error record; the others are tagged. The GIL is released while the
        model runs.
        """
    def tag_jsonl(self, docs: Iterable[Document]) -> list[str]:
        """As ``tag``, but each record as the JSON line ``arabtag tag`` writes
        (without its line break): the CLI's own bytes, for JSONL files or a
        string column."""
    @property
    def config_path(self) -> str:
        """The model config this tagger loaded."""
    @property
    def threads(self) -> int:
        """The threads this tagger's work runs on."""

def evaluate(
    gold: Union[str, os.PathLike[str], Sequence[Mapping[str, Any]]],
    pred: Union[str, os.PathLike[str], Sequence[Mapping[str, Any]]],
    docs: Optional[Union[str, os.PathLike[str], Mapping[str, str]]] = None,
    types: Optional[Sequence[str]] = None,
) -> dict[str, Any]:
    """Scores ``pred`` against ``gold`` as ``arabtag eval --json`` does.

    ``gold``, ``pred``: a JSONL file's path or a list of records. ``docs``:
    the documents' texts, a folder of ``<id>.txt`` files or a mapping
    id -> text. ``types``: the entity types of the micro and macro scores
    (default PER, ORG, LOC, DATE). Problems in the records are listed under
    ``"errors"`` and the valid rest is scored.
    """
