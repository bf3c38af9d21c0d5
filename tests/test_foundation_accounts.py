"""Accounts and tokens, over a real socket against the embedded database."""
import time
import uuid

import jwt
import pytest

from foundation_support import LIGHT_ENGINE, FoundationPlugin


@pytest.fixture
async def server(app_server_factory):
    return await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()])


def assert_error(r, status, field=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False
    assert isinstance(body["msg"], str) and any("\u4e00" <= ch <= "\u9fff" for ch in body["msg"]), body
    if field is not None:
        assert body.get("field") == field, body
    assert "Traceback" not in r.text and "File \"" not in r.text
    return body


async def test_register_login_and_token(server, api_client):
    client = await api_client(server)
    assert client.token and client.user_id
    r = await client.post("/users/login/", auth=False, json={"username": client.username, "password": client.password})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and body["user_id"] == client.user_id and body["token"]
    r = await client.get("/users/resume/list/", headers={"Authorization": f"Bearer {body['token']}"})
    assert r.status_code == 200 and r.json()["total"] == 0


async def test_password_is_stored_with_scrypt_and_per_user_salt(server, api_client):
    a = await api_client(server, password="same-password-1")
    b = await api_client(server, password="same-password-1")
    users = server.app.ctx.db.users
    da = await users.find_one({"_id": a.user_id})
    db_ = await users.find_one({"_id": b.user_id})
    assert "same-password-1" not in str(da)
    assert da["password"].startswith("scrypt$") and db_["password"].startswith("scrypt$")
    assert da["password"] != db_["password"]       # different salts


async def test_register_errors(server, api_client):
    client = await api_client(server)
    r = await client.post("/users/register/", auth=False, json={"username": client.username, "password": "another-1"})
    assert_error(r, 409, "username")
    cases = [
        ({"password": "secret-123"}, "username"),
        ({"username": "someone_new"}, "password"),
        ({"username": 123, "password": "secret-123"}, "username"),
        ({"username": "someone_new", "password": ["x"]}, "password"),
        ({"username": "ab", "password": "secret-123"}, "username"),
        ({"username": "has space", "password": "secret-123"}, "username"),
        ({"username": "someone_new", "password": "123"}, "password"),
    ]
    for body, field in cases:
        r = await client.post("/users/register/", auth=False, json=body)
        assert_error(r, 400, field)
    r = await client.post("/users/register/", auth=False, content=b'{"username": "x", ')
    assert assert_error(r, 400)["msg"] == "请求体不是合法的 JSON"
    r = await client.post("/users/register/", auth=False, content=b'["not", "an", "object"]')
    assert_error(r, 400)
    r = await client.post("/users/register/", auth=False, content=b"")
    assert_error(r, 400)


async def test_login_errors(server, api_client):
    client = await api_client(server)
    r = await client.post("/users/login/", auth=False, json={"username": client.username, "password": "wrong-pass"})
    assert_error(r, 401)
    r = await client.post("/users/login/", auth=False, json={"username": "nobody_" + uuid.uuid4().hex[:6],
                                                             "password": "whatever-1"})
    assert_error(r, 401)
    r = await client.post("/users/login/", auth=False, json={"username": client.username})
    assert_error(r, 400, "password")
    r = await client.post("/users/login/", auth=False, content=b"{not json")
    assert_error(r, 400)


@pytest.mark.parametrize("path,method", [("/users/resume/list/", "GET"), ("/users/resume/", "POST"),
                                         ("/users/resume/1/", "GET"), ("/users/resume/1/", "PUT"),
                                         ("/users/resume/1/", "DELETE"), ("/interviews/create/", "POST"),
                                         ("/interviews/", "GET"), ("/interviews/1/", "GET")])
async def test_every_route_needs_a_token(server, api_client, path, method):
    client = await api_client(server)
    r = await client.request(method, path, auth=False, json={})
    assert_error(r, 401, "Authorization")


async def test_bad_expired_and_tampered_tokens(server, api_client):
    client = await api_client(server)
    secret = server.app.ctx.jwt_secret
    now = int(time.time())
    expired = jwt.encode({"sub": client.user_id, "iat": now - 7200, "exp": now - 3600, "iss": "mianshi"}, secret,
                         algorithm="HS256")
    foreign = jwt.encode({"sub": client.user_id, "iat": now, "exp": now + 3600, "iss": "mianshi"}, "another-secret-that-is-long-enough-for-hs256",
                         algorithm="HS256")
    header, payload, signature = client.token.split(".")
    tampered = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    none_alg = jwt.encode({"sub": client.user_id, "iat": now, "exp": now + 3600, "iss": "mianshi"}, None,
                          algorithm="none")
    r = await client.get("/users/resume/list/", headers={"Authorization": f"Bearer {expired}"})
    assert "过期" in assert_error(r, 401, "Authorization")["msg"]
    for token in (foreign, tampered, none_alg, "not-a-jwt", "a.b.c"):
        r = await client.get("/users/resume/list/", headers={"Authorization": f"Bearer {token}"})
        assert_error(r, 401, "Authorization")
    r = await client.get("/users/resume/list/", headers={"Authorization": f"Token {client.token}"})
    assert_error(r, 401, "Authorization")
    r = await client.get("/users/resume/list/", headers={"Authorization": "Bearer"})
    assert_error(r, 401, "Authorization")


async def test_token_expiry_follows_config(app_server_factory, api_client):
    server = await app_server_factory({**LIGHT_ENGINE, "auth": {"token_ttl_hours": 2}},
                                      extra_plugins=[FoundationPlugin()])
    client = await api_client(server)
    claims = jwt.decode(client.token, server.app.ctx.jwt_secret, algorithms=["HS256"], issuer="mianshi")
    assert claims["exp"] - claims["iat"] == 2 * 3600
    assert claims["sub"] == client.user_id


async def test_jwt_secret_is_generated_once_and_kept(app_server_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("MIANSHI_JWT_SECRET", raising=False)
    data = tmp_path / "secret-data"
    a = await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()], data_dir=data)
    b = await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()], data_dir=data)
    secret_file = data / "secrets" / "jwt_secret"
    assert secret_file.exists() and oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert a.app.ctx.jwt_secret == b.app.ctx.jwt_secret == secret_file.read_text().strip()
    assert len(a.app.ctx.jwt_secret) >= 32
    monkeypatch.setenv("MIANSHI_JWT_SECRET", "from-the-environment-" + "x" * 20)
    c = await app_server_factory(LIGHT_ENGINE, extra_plugins=[FoundationPlugin()], data_dir=data)
    assert c.app.ctx.jwt_secret == "from-the-environment-" + "x" * 20
