"""Schedules: created from the CLI and the Python API, triggered, the run completes and is listed, deleted."""

from __future__ import annotations

import json
import uuid

import flowtide
from tests.support.cli import flowtide_process as flowtide_cli
from tests.support.cli import listed, until


def _flow(tmp_path, fid: str) -> str:
    path = tmp_path / f"{fid}.yaml"
    path.write_text(f"id: {fid}\nversion: 3\nsteps:\n  - stepId: back\n    stepType: core.return\n"
                    "    input: {output: \"{{ initial.n }}\"}\n")
    return str(path)


async def test_cli_schedule_create_trigger_run_completes_and_delete(dev_server, client, worker, task_queue, tmp_path):
    fid = f"sched-{uuid.uuid4().hex[:6]}"
    env = {"TEMPORAL_ADDRESS": dev_server.address}
    code, out, err = await flowtide_cli("schedule", "create", _flow(tmp_path, fid), "--cron", "0 0 1 1 *",
                                        "--input", '{"n": 7}', "--id", fid, "--task-queue", task_queue, "--json",
                                        env=env)
    assert code == 0, err
    assert json.loads(out)["scheduleId"] == fid
    code, out, err = await flowtide_cli("schedule", "trigger", fid, env=env)
    assert code == 0, err
    rows = await listed(client, f'FlowId = "{fid}"')
    run = client.get_workflow_handle(rows[0].id)
    assert (await run.result())["output"] == 7
    desc = await run.describe()
    assert desc.typed_search_attributes.get(flowtide_attr("FLOW_VERSION")) == 3

    async def finished() -> list[dict]:
        code, out, _ = await flowtide_cli("runs", "list", "--flow", fid, "--json", env=env)
        return [r for r in json.loads(out) if r["status"] == "completed"] if code == 0 else []
    assert await until(finished)

    async def scheduled() -> list[dict]:
        _, out, _ = await flowtide_cli("schedule", "list", "--json", env=env)
        return [r for r in json.loads(out) if r["id"] == fid and r["flowId"] == fid and r["cron"] == "0 0 1 1 *"]
    assert await until(scheduled)
    code, _, err = await flowtide_cli("schedule", "delete", fid, env=env)
    assert code == 0, err
    code, out, err = await flowtide_cli("schedule", "trigger", fid, "--json", env=env)
    assert code == 4 and json.loads(out)["error"]["code"] == "TEMPORAL_NOT_FOUND"


def flowtide_attr(name: str):
    from flowtide.workflows import search_attributes
    return getattr(search_attributes, name)


async def test_python_api_schedule_defaults_pause_and_bad_settings(client, task_queue, tmp_path):
    fid = f"sched-{uuid.uuid4().hex[:6]}"
    handle = await flowtide.create_schedule(client, _flow(tmp_path, fid), "*/5 * * * *", {"n": 1},
                                            task_queue=task_queue)
    assert handle.id == f"{fid}-schedule"
    info = await flowtide.describe_schedule(client, handle.id)
    assert info["cron"] == "*/5 * * * *" and info["overlap"] == "skip" and info["catchupWindowS"] == 60
    assert not info["paused"]
    await flowtide.pause_schedule(client, handle.id)
    assert (await flowtide.describe_schedule(client, handle.id))["paused"]
    await flowtide.delete_schedule(client, handle.id)
    try:
        await flowtide.create_schedule(client, _flow(tmp_path, fid), "* * * * *", overlap="sometimes")
    except ValueError as exc:
        assert "overlap" in str(exc)
    else:
        raise AssertionError("a bad overlap policy was accepted")
