"""What a command names and the service database does not hold is "not found": exit 4, one line (docs/operations.md)."""

from __future__ import annotations

import pytest

from tests.support.cli import flowtide


async def test_a_missing_revision_or_connection_is_exit_4(capsys: pytest.CaptureFixture[str], tmp_path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_DATABASE_URL", f"sqlite:///{tmp_path / 'api.db'}")
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", "k" * 32)
    flow = tmp_path / "f.yaml"
    flow.write_text("id: f\nsteps:\n  - stepId: r\n    stepType: core.return\n    input: {output: 1}\n")
    code, _out, err = await flowtide(capsys, "flows", "deploy", str(flow), "--project", "p")
    assert code == 0, err
    for args, said in ((("flows", "revert", "f", "--revision", "9", "--project", "p"), "no revision 9 of flow 'f'"),
                       (("connections", "show", "nope"), "no connection 'nope'"),
                       (("connections", "test", "nope"), "no connection 'nope'")):
        code, out, err = await flowtide(capsys, *args)
        assert code == 4 and out == "" and said in err and len(err.strip().splitlines()) == 1, (args, code, err)
