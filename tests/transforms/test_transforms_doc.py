"""The examples of docs/transforms.md's overview run as written."""

import json
import logging
import re

from tests._docs import example


def test_the_lookup_dedupe_sketch_example_runs(tmp_path):
    """The overview's example (lookup handler, Dedupe, approximate aggregations)."""
    code = example("transforms.md", "lookup-dedupe-sketch", "python")
    namespace = {"__name__": "transforms_doc_example"}
    exec(compile(code, "docs/transforms.md", "exec"), namespace)
    namespace["run"](str(tmp_path))


def test_the_beam_yaml_pipeline_runs(tmp_path, caplog):
    """The Beam YAML block runs with Beam's YAML runner, the include pointing at the shipped file."""
    from apache_beam.yaml import main as yaml_main

    from hybridflow.beam_yaml import PROVIDERS_FILE

    block = example("transforms.md", "yaml-pipeline", "yaml")
    spec = re.sub(r"(- include: ).*", lambda m: m.group(1) + PROVIDERS_FILE, block)
    path = tmp_path / "pipeline.yaml"
    path.write_text(spec)
    with caplog.at_level(logging.INFO):
        yaml_main.run(argv=[f"--yaml_pipeline_file={path}", "--runner=FnApiRunner"])
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert {"card_id": "c1", "window_end": "2026-01-01T00:01:00Z", "n": 1, "total": 12.5, "p95": 12.5} in logged
    assert any(r.get("stage") == "ParseRecords" and r.get("error_type") == "missing_field" for r in logged), logged
