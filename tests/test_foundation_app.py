"""The composed app: error shape, OpenAPI, restart persistence with its own embedded server, and
how the embedded server finds (or refuses without) a Python >= 3.13."""
import os
import stat
import sys

import pytest

from foundation_support import LIGHT_ENGINE, FoundationPlugin
from storage import embedded
from test_foundation_accounts import assert_error


def add_failing_route(app):
    async def boom(request):
        raise RuntimeError("secret internal detail /etc/passwd")
    app.add_route(boom, "/-/test-boom/")


async def test_errors_are_json_without_stack_traces(app_server_factory, api_client):
    server = await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()], prepare=add_failing_route)
    client = await api_client(server)
    assert_error(await client.get("/no/such/route/"), 404)
    r = await client.delete("/users/resume/list/")
    assert_error(r, 405)
    r = await client.get("/-/test-boom/")
    body = assert_error(r, 500)
    assert body["msg"] == "服务器内部错误" and "secret internal detail" not in r.text and "RuntimeError" not in r.text
    r = await client.post("/users/resume/", content=b"\xff\xfe not utf-8")
    assert_error(r, 400)
    r = await client.post("/users/resume/", content=b"{" + b" " * (server.app.config.REQUEST_MAX_SIZE + 10) + b"}")
    assert_error(r, 413)


async def test_openapi_and_docs(app_server_factory, api_client):
    server = await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()])
    client = await api_client(server)
    spec = (await client.get("/docs/openapi.json", auth=False)).json()
    paths = " ".join(spec["paths"])
    for path in ("/users/register", "/users/login", "/users/resume/list", "/interviews/create", "/interviews"):
        assert path in paths
    create = next(v for k, v in spec["paths"].items() if k.rstrip("/") == "/interviews/create")["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["position_type"]["enum"] == ["backend", "frontend", "pm", "qa", "algo"]
    assert "token" in spec["components"]["securitySchemes"]
    r = await client.get("/docs", auth=False, follow_redirects=True)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]


async def test_restart_on_the_same_data_directory_keeps_everything(app_server_factory, api_client, tmp_path):
    """As in production: the app starts its own embedded server on its data directory, twice."""
    data = tmp_path / "persist"
    first = await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()], data_dir=data,
                                     embedded=True, database="mianshi")
    assert first.app.ctx.embedded is not None and first.app.ctx.embedded.db_path.is_relative_to(data)
    client = await api_client(first, username="persist_user", password="persist-pass-1")
    rids = [await client.create_resume(resume_name="简历一"), await client.create_resume(resume_name="简历二")]
    iid = await client.create_interview()
    await first.store.append_transcript(iid, [{"text": "你好"}])
    listing = (await client.get("/users/resume/list/")).json()
    old_token = client.token
    embedded_process = first.app.ctx.embedded.process
    await first.stop()
    assert embedded_process.returncode is not None            # its database server is gone too

    second = await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()], data_dir=data,
                                      embedded=True, database="mianshi")
    client.server = second
    assert (await client.get("/users/resume/list/")).json() == listing        # the old token still works
    r = await client.post("/users/login/", auth=False, json={"username": "persist_user", "password": "persist-pass-1"})
    assert r.status_code == 200 and r.json()["user_id"] == client.user_id
    client.token = r.json()["token"]
    assert sorted(x["resume_id"] for x in (await client.get("/users/resume/list/")).json()["resumes"]) == sorted(rids)
    detail = (await client.get(f"/interviews/{iid}/")).json()["interview"]
    assert detail["transcript"] == [{"text": "你好"}]
    # counters continue: new ids do not collide with the old ones
    new_rid = await client.create_resume(resume_name="简历三")
    assert new_rid not in rids
    assert await client.create_interview() != iid
    assert_error(await client.post("/users/register/", auth=False,
                                   json={"username": "persist_user", "password": "persist-pass-1"}), 409)
    assert old_token


def _fake_python(path, code: int) -> None:
    path.write_text(f"#!/bin/sh\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_interpreter_discovery_skips_a_broken_shim(tmp_path, monkeypatch):
    real = embedded.find_interpreter()          # this machine has one (the test session uses it)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_python(bin_dir / "python3.13", 1)     # like a pyenv shim without PYENV_VERSION
    _fake_python(bin_dir / "python3", 0)        # runs, but prints nothing: not accepted
    pyenv = tmp_path / "pyenv" / "versions" / "3.13.9" / "bin"
    pyenv.mkdir(parents=True)
    os.symlink(real, pyenv / "python3.13")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.delenv("MIANSHI_MONGOECO_PYTHON", raising=False)
    monkeypatch.setattr(embedded, "FIXED_LOCATIONS", ())
    assert embedded.find_interpreter() == str(pyenv / "python3.13")


def test_no_interpreter_is_a_clear_refusal(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_python(bin_dir / "python3.13", 1)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.delenv("MIANSHI_MONGOECO_PYTHON", raising=False)
    monkeypatch.setattr(embedded, "FIXED_LOCATIONS", ())
    with pytest.raises(embedded.EmbeddedMongoError) as info:
        embedded.find_interpreter()
    message = str(info.value)
    assert "Python 3.13" in message and "pyenv install 3.13" in message and "MONGODB_URI" in message
    # and the venv is not created from nothing: ensure_venv refuses the same way
    with pytest.raises(embedded.EmbeddedMongoError):
        embedded.ensure_venv(tmp_path / "venv")
    assert not (tmp_path / "venv").exists()


def test_server_refuses_to_start_without_interpreter(tmp_path):
    """`python sanic_app.py` with no Python 3.13 anywhere and no MONGODB_URI exits with the message."""
    import subprocess
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "none"), "HOME": str(tmp_path),
           "MIANSHI_DATA_DIR": str(tmp_path / "data"), "MIANSHI_MONGOECO_VENV": str(tmp_path / "venv"),
           "PORT": "0"}
    if any(os.path.exists(p) for p in embedded.FIXED_LOCATIONS):
        pytest.skip("a system Python >= 3.13 is installed; the refusal cannot be shown here")
    proc = subprocess.run([sys.executable, "sanic_app.py"], cwd=embedded.ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Python 3.13" in proc.stderr and "MONGODB_URI" in proc.stderr
    assert "Traceback" not in proc.stderr
