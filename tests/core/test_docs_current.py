"""Generated documents stay equal to the code they describe."""

import json
import re
from pathlib import Path

from adapter import config
from adapter.csms import actions_doc
from adapter.normalize.event_schemas import DATA_SCHEMAS, SCHEMA_DIR, event_schema

ROOT = Path(__file__).resolve().parents[2]


def test_event_schemas_in_docs_match_the_code() -> None:
    files = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert files == {f"{t}.schema.json" for t in DATA_SCHEMAS}
    for event_type in DATA_SCHEMAS:
        assert json.loads((SCHEMA_DIR / f"{event_type}.schema.json").read_text()) == event_schema(event_type)


def test_actions_document_matches_the_code() -> None:
    assert actions_doc.DOC.read_text() == actions_doc.render()


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for flag, env, _default, _help in config.describe():
        assert f"`{flag}`" in readme and f"`{env}`" in readme, flag



def test_every_error_kind_is_explained_to_operators() -> None:
    """The dashboard graphs Errors by Kind: each kind the code counts has a row in deploy.md's table."""
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    kinds = {kind for path in (ROOT / "adapter").rglob("*.py")
             for kind in re.findall(r'Kind=f?"([a-z_]+)', path.read_text())}
    assert "handler" in kinds and "handshake_" in kinds, "the pattern still finds the counted kinds"
    documented = set(re.findall(r"^  \| `([a-z_<>]+)`", deploy, re.MULTILINE))
    assert {"handshake_<status>" if k == "handshake_" else k for k in kinds} <= documented
