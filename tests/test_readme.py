"""The README's composing example runs as written."""

import json
import logging
import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_compose_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "no python block in the README"
    namespace = {"__name__": "readme_example"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    namespace["run"](str(tmp_path))


def test_readme_transforms_example_runs(tmp_path):
    """The transforms section's example (lookup handler, Dedupe, approximate aggregations)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "InMemoryLookup" in b)
    namespace = {"__name__": "readme_transforms_example"}
    exec(compile(example, "README.md", "exec"), namespace)
    namespace["run"](str(tmp_path))


def test_readme_yaml_pipeline_runs(tmp_path, caplog):
    """The Beam YAML block runs with Beam's YAML runner, the include pointing at the shipped file."""
    from apache_beam.yaml import main as yaml_main

    from hybridflow.beam_yaml import PROVIDERS_FILE

    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "pipeline:" in b]
    spec = re.sub(r"(- include: ).*", lambda m: m.group(1) + PROVIDERS_FILE, block)
    path = tmp_path / "pipeline.yaml"
    path.write_text(spec)
    with caplog.at_level(logging.INFO):
        yaml_main.run(argv=[f"--yaml_pipeline_file={path}", "--runner=FnApiRunner"])
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert {"card_id": "c1", "window_end": "2026-01-01T00:01:00Z", "n": 1, "total": 12.5, "p95": 12.5} in logged
    assert any(r.get("stage") == "ParseRecords" and r.get("error_type") == "missing_field" for r in logged), logged
