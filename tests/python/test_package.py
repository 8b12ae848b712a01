"""The arabtag Python package against the CLI it wraps."""

import json
import os
import subprocess
import threading
import time

import pytest

import arabtag
from conftest import MODEL, ROOT, write_jsonl


def cli_records(cli, path, *extra):
    out = subprocess.run(
        [str(cli), "tag", "--model", str(MODEL), *extra, str(path)],
        cwd=ROOT, capture_output=True, check=False,
    )
    return out


def test_records_equal_the_cli_on_the_seeds(cli, tagger, seeds, tmp_path):
    docs = tmp_path / "seeds.jsonl"
    write_jsonl(docs, seeds)
    out = cli_records(cli, docs)
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    assert len(lines) == 5
    # As dicts, record for record; and tag_jsonl gives the CLI's bytes.
    assert tagger.tag(seeds) == [json.loads(line) for line in lines]
    assert tagger.tag_jsonl(seeds) == lines


def test_strings_take_their_index_as_id(tagger, seeds):
    texts = [d["text"] for d in seeds[:2]]
    records = tagger.tag(texts)
    assert [r["id"] for r in records] == ["0", "1"]
    by_mapping = tagger.tag([{"id": "0", "text": texts[0]}, {"id": "1", "text": texts[1]}])
    assert records == by_mapping
    assert records[0]["entities"], "the first seed article names people and places"


def test_a_bad_document_is_an_error_record_and_the_rest_is_tagged(tagger):
    good = "قال الرئيس فلاديمير بوتين إن موسكو مستعدة للوساطة."
    records = tagger.tag(
        [good, 7, {"id": "x"}, {"id": "", "text": good}, {"id": "0", "text": good}, {"id": "y", "text": 3}]
    )
    assert len(records) == 6
    assert "error" not in records[0] and records[0]["entities"]
    errors = [r.get("error", "") for r in records[1:]]
    assert "docs[1]: expected a str" in errors[0]
    assert "docs[2]: missing field `text`" in errors[1]
    assert "`id` is empty" in errors[2]
    assert "duplicate document id `0`" in errors[3]
    assert "docs[5]: `text` is not a string" in errors[4]
    assert [r["id"] for r in records] == ["0", "1", "x", "3", "0", "y"]


def test_one_document_instead_of_a_list_is_a_type_error(tagger):
    with pytest.raises(TypeError, match="not one document"):
        tagger.tag("قال بوتين")
    with pytest.raises(TypeError, match="not one document"):
        tagger.tag({"id": "a", "text": "b"})


def test_config_errors_carry_the_cli_message(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no-such.toml: no such file.*ARABTAG_MODEL"):
        arabtag.Tagger("no-such.toml")
    bad = tmp_path / "bad.toml"
    text = MODEL.read_text(encoding="utf-8").replace('path = "', f'path = "{ROOT}/models/', -1)
    # A wrong sha256 for the tokenizer: refused naming the file.
    import re

    text = re.sub(r'(tokenizer[^\n]*sha256 = ")[0-9a-f]{64}', lambda m: m.group(1) + "0" * 64, text, count=1)
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(arabtag.ArabtagError, match="bad.toml"):
        arabtag.Tagger(str(bad))
    with pytest.raises(ValueError, match="threads must be at least 1"):
        arabtag.Tagger(str(model), threads=0)


def test_the_arabtag_model_variable_names_the_config(model, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARABTAG_MODEL", str(model))
    tagger = arabtag.Tagger(threads=1)
    assert tagger.threads == 1
    assert tagger.config_path == str(model)
    monkeypatch.delenv("ARABTAG_MODEL")
    with pytest.raises(arabtag.ArabtagError, match="pass config_path or set ARABTAG_MODEL"):
        arabtag.Tagger()


def test_the_gil_is_released_while_tagging(tagger, seeds):
    """Python code runs on another thread while the model works."""
    done = threading.Event()
    result = {}

    def work():
        result["records"] = tagger.tag(seeds)
        done.set()

    thread = threading.Thread(target=work)
    ticks = 0
    start = time.perf_counter()
    thread.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    thread.join()
    elapsed = time.perf_counter() - start
    assert len(result["records"]) == 5
    # Tagging the seeds takes the better part of a second; with the GIL
    # held the loop above could not run at all until it ended.
    assert elapsed > 0.2 and ticks > 50, (elapsed, ticks)


def test_evaluate_equals_arabtag_eval_json(cli, tagger, seeds, tmp_path):
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(line + "\n" for line in tagger.tag_jsonl(seeds)), encoding="utf-8")
    gold = ROOT / "seeds" / "gold.jsonl"
    out = subprocess.run(
        [str(cli), "eval", "--gold", str(gold), "--pred", str(pred), "--docs", str(ROOT / "seeds"), "--json"],
        cwd=ROOT, capture_output=True, check=True,
    )
    want = json.loads(out.stdout)
    assert arabtag.evaluate(str(gold), str(pred), docs=str(ROOT / "seeds")) == want
    # Records and texts in memory give the same object.
    gold_records = [json.loads(l) for l in gold.read_text(encoding="utf-8").splitlines() if l.strip()]
    texts = {d["id"]: d["text"] for d in seeds}
    assert arabtag.evaluate(gold_records, tagger.tag(seeds), docs=texts) == want
    assert want["entities"]["strict"]["f1"] > 0.5


def test_evaluate_lists_problems_and_scores_the_rest():
    gold = [{"id": "a", "entities": [{"start": 0, "end": 5, "type": "PER", "text": "بوتين"}], "segments": []}]
    pred = [{"id": "a", "entities": [{"start": 0, "end": 5, "type": "PER", "text": "بوتين"}], "segments": []},
            {"id": "zzz", "entities": [], "segments": []}]
    report = arabtag.evaluate(gold, pred, docs={"a": "بوتين قال"})
    assert report["entities"]["strict"]["f1"] == 1.0
    assert any("zzz" in json.dumps(e, ensure_ascii=False) for e in report["errors"])
    with pytest.raises(ValueError, match="types"):
        arabtag.evaluate(gold, pred, types=["NOPE"])
