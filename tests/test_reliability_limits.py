"""Abuse limits (api/throttle.py), the client address (api/netaddr.py) and the operator endpoints'
guard (api/auth.py operator_only): units, then over a real socket with a ManualClock (no sleeping)."""
import ipaddress
import uuid
from types import SimpleNamespace

import pytest
from sanic.compat import Header

from api.errors import ApiError
from api.netaddr import client_address, is_local, trusted_proxies
from api.throttle import SlidingWindow, Throttle, refuse_if_limited
from core.clock import ManualClock
from core.config import ConfigError
from foundation_support import LIGHT_ENGINE, FoundationPlugin
from test_foundation_accounts import assert_error

OPERATOR_ROUTES = [("GET", "/-/stats"), ("POST", "/-/stats/reset"), ("GET", "/-/plugins")]


# --- units: the window -------------------------------------------------------------------------------
async def test_sliding_window_counts_per_key_and_frees_the_oldest_event_first():
    clock = ManualClock(start=0.0)
    window = SlidingWindow(3, 60.0, clock)
    for _ in range(3):
        assert window.retry_after("a") == 0.0
        window.hit("a")
        await clock.advance(10.0)
    assert clock.now() == 30.0
    assert window.retry_after("a") == pytest.approx(30.0)    # the event at t=0 leaves at t=60
    assert window.retry_after("b") == 0.0                    # keys are independent
    await clock.advance(29.5)
    assert window.retry_after("a") == pytest.approx(0.5)
    await clock.advance(0.5)
    assert window.retry_after("a") == 0.0
    window.hit("a")
    assert window.retry_after("a") == pytest.approx(10.0)    # now the event at t=10 is the oldest
    window.clear("a")
    assert window.retry_after("a") == 0.0 and len(window) == 0


async def test_sliding_window_forgets_expired_keys_and_caps_the_keys_it_tracks():
    clock = ManualClock(start=0.0)
    window = SlidingWindow(2, 10.0, clock, max_keys=3)
    for key in ("a", "b", "c"):
        window.hit(key)
    window.hit("a")                  # "a" is now the most recently touched
    window.hit("d")                  # a fourth key: "b", touched least recently, is forgotten
    assert len(window) == 3
    assert window.retry_after("a") == pytest.approx(10.0)
    window.hit("b")
    assert window.retry_after("b") == 0.0          # one event only: "b" started over
    assert len(window) == 3
    await clock.advance(10.0)
    assert window.retry_after("a") == 0.0 and len(window) == 2   # "a" expired and is dropped


async def test_refusal_is_429_with_whole_seconds_to_wait():
    clock = ManualClock(start=0.0)
    window = SlidingWindow(1, 30.0, clock)
    refuse_if_limited(window, "k", "请 {seconds} 秒后再试")      # under the limit: nothing
    window.hit("k")
    await clock.advance(0.4)
    with pytest.raises(ApiError) as info:
        refuse_if_limited(window, "k", "请 {seconds} 秒后再试", "username")
    err = info.value
    assert (err.status, err.field, err.msg, err.headers) == (429, "username", "请 30 秒后再试", {"Retry-After": "30"})
    await clock.advance(29.5)
    with pytest.raises(ApiError) as info:
        refuse_if_limited(window, "k", "{seconds}")
    assert info.value.headers == {"Retry-After": "1"}


def test_throttle_settings_are_read_with_defaults_and_checked():
    throttle = Throttle({"throttle": {"login_failures_per_user": 3}}, ManualClock())
    assert (throttle.login_user.limit, throttle.login_user.window) == (3, 900.0)
    assert (throttle.login_address.limit, throttle.registration.limit, throttle.registration.window) == (100, 20, 3600.0)
    for bad in (0, -1, "10", True):
        with pytest.raises(ConfigError, match="login_failures_per_user"):
            Throttle({"throttle": {"login_failures_per_user": bad}}, ManualClock())


# --- units: the client address -------------------------------------------------------------------------
def fake_request(peer, headers=(), trusted=()):
    app = SimpleNamespace(ctx=SimpleNamespace(trusted_proxies=tuple(ipaddress.ip_network(t) for t in trusted)))
    return SimpleNamespace(ip=peer, headers=Header(list(headers)), app=app)


PROXIES = ("127.0.0.1/32", "10.0.0.0/8")


@pytest.mark.parametrize("peer, headers, trusted, expected", [
    # no trusted proxies: the peer, whatever the headers say
    ("198.51.100.9", [("X-Forwarded-For", "1.2.3.4")], (), "198.51.100.9"),
    ("127.0.0.1", [("X-Forwarded-For", "1.2.3.4"), ("X-Real-IP", "5.6.7.8")], (), "127.0.0.1"),
    # a peer that is not in the list: headers ignored
    ("198.51.100.9", [("X-Forwarded-For", "1.2.3.4")], PROXIES, "198.51.100.9"),
    # a trusted peer: the right-most entry that is not a trusted proxy
    ("127.0.0.1", [("X-Forwarded-For", "203.0.113.5")], PROXIES, "203.0.113.5"),
    ("127.0.0.1", [("X-Forwarded-For", "6.6.6.6, 203.0.113.5, 10.1.2.3")], PROXIES, "203.0.113.5"),
    ("127.0.0.1", [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.5")], PROXIES, "203.0.113.5"),
    ("127.0.0.1", [("X-Forwarded-For", "10.9.9.9, 10.1.2.3")], PROXIES, "10.9.9.9"),      # all trusted
    ("127.0.0.1", [("X-Forwarded-For", "203.0.113.5, garbage, 10.1.2.3")], PROXIES, "10.1.2.3"),
    ("127.0.0.1", [("X-Real-IP", "203.0.113.7")], PROXIES, "203.0.113.7"),
    ("127.0.0.1", [], PROXIES, "127.0.0.1"),
    ("::ffff:127.0.0.1", [("X-Forwarded-For", "2001:db8::1")], PROXIES, "2001:db8::1"),
    ("::ffff:198.51.100.9", [], (), "198.51.100.9"),
])
def test_client_address(peer, headers, trusted, expected):
    assert client_address(fake_request(peer, headers, trusted)) == expected


def test_trusted_proxies_setting():
    assert trusted_proxies({"server": {}}) == ()
    nets = trusted_proxies({"server": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8", "::1"]}})
    assert [str(n) for n in nets] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    for bad in (["not-an-ip"], "127.0.0.1"):
        with pytest.raises(ConfigError, match="trusted_proxies"):
            trusted_proxies({"server": {"trusted_proxies": bad}})


@pytest.mark.parametrize("peer, headers, expected", [
    ("127.0.0.1", [], True),
    ("::1", [], True),
    ("::ffff:127.0.0.1", [], True),
    ("198.51.100.9", [], False),
    ("127.0.0.1", [("X-Forwarded-For", "198.51.100.9")], False),
    ("127.0.0.1", [("Forwarded", "for=198.51.100.9")], False),
    ("127.0.0.1", [("X-Real-IP", "198.51.100.9")], False),
    ("", [], False),
])
def test_is_local(peer, headers, expected):
    assert is_local(fake_request(peer, headers)) is expected


# --- over the socket ---------------------------------------------------------------------------------
async def start(app_server_factory, throttle=None, server=None):
    clock = ManualClock()
    overrides = {**LIGHT_ENGINE, "throttle": throttle or {}, "server": server or {}}
    app = await app_server_factory(overrides, clock=clock, extra_plugins=[FoundationPlugin()])
    return app, clock


async def login(client, password, username=None, headers=None):
    return await client.post("/users/login/", auth=False, headers=headers,
                             json={"username": username or client.username, "password": password})


def assert_throttled(r, retry_after, field=None):
    body = assert_error(r, 429, field)
    assert r.headers["Retry-After"] == str(retry_after), r.headers
    assert str(retry_after) in body["msg"]
    if field is None:
        assert "field" not in body
    return body


async def test_per_user_limit_refuses_even_the_right_password_until_the_window_frees_one(app_server_factory,
                                                                                         api_client):
    server, clock = await start(app_server_factory)
    client = await api_client(server)
    for _ in range(10):
        assert_error(await login(client, "wrong-pass"), 401, "password")
    assert_throttled(await login(client, client.password), 900, "username")
    await clock.advance(600)
    assert_throttled(await login(client, "wrong-pass"), 300, "username")   # refused tries do not count
    await clock.advance(299)
    assert_throttled(await login(client, client.password), 1, "username")
    await clock.advance(1)
    r = await login(client, client.password)
    assert r.status_code == 200 and r.json()["user_id"] == client.user_id


async def test_a_successful_login_clears_the_usernames_failures(app_server_factory, api_client):
    server, clock = await start(app_server_factory)
    client = await api_client(server)
    for _ in range(2):
        for _ in range(9):
            assert_error(await login(client, "wrong-pass"), 401)
        assert (await login(client, client.password)).status_code == 200
    assert_error(await login(client, "wrong-pass"), 401)     # 19 failures in the window, 1 since the success


async def test_failures_on_one_account_do_not_lock_out_another_behind_the_same_address(app_server_factory,
                                                                                        api_client):
    server, clock = await start(app_server_factory)          # defaults: 10 per user, 100 per address
    victim = await api_client(server)
    other = await api_client(server)
    statuses = [(await login(victim, "wrong-pass")).status_code for _ in range(40)]
    assert statuses == [401] * 10 + [429] * 30
    for n in range(3):                                       # 30 more real failures: 40 from the address
        for _ in range(10):
            assert_error(await login(victim, "wrong-pass", username=f"ghost_{n}_{uuid.uuid4().hex[:6]}"), 401)
    r = await login(other, other.password)
    assert r.status_code == 200 and r.json()["user_id"] == other.user_id


async def test_per_address_limit(app_server_factory, api_client):
    server, clock = await start(app_server_factory, {"login_failures_per_user": 50, "login_failures_per_address": 5})
    client = await api_client(server)
    for n in range(5):
        assert_error(await login(client, "wrong-pass", username=f"nobody_{n}"), 401)
    assert_throttled(await login(client, client.password), 900)
    await clock.advance(900)
    assert (await login(client, client.password)).status_code == 200


async def test_registration_limit_per_address(app_server_factory, api_client):
    server, clock = await start(app_server_factory, {"registrations_per_address": 3})
    client = await api_client(server)                        # 1

    async def register(username, password="secret-pass-1"):
        return await client.post("/users/register/", auth=False, json={"username": username, "password": password})

    assert_error(await register("ab"), 400, "username")      # invalid attempts cost nothing
    assert_error(await register(client.username), 409, "username")   # 2: a valid attempt, name taken
    assert (await register(f"u_{uuid.uuid4().hex[:10]}")).status_code == 201   # 3
    await clock.advance(100)
    assert_throttled(await register(f"u_{uuid.uuid4().hex[:10]}"), 3500)
    assert_throttled(await register("ab"), 3500)             # refused before anything else is looked at
    await clock.advance(3500)
    assert (await register(f"u_{uuid.uuid4().hex[:10]}")).status_code == 201


async def test_spoofed_forwarding_headers_are_ignored_without_trusted_proxies(app_server_factory, api_client):
    server, clock = await start(app_server_factory, {"login_failures_per_user": 50, "login_failures_per_address": 3})
    client = await api_client(server)
    for n in range(3):
        spoof = {"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"198.51.100.{n}"}
        assert_error(await login(client, "wrong-pass", headers=spoof), 401)
    assert_throttled(await login(client, client.password, headers={"X-Forwarded-For": "203.0.113.99"}), 900)


async def test_forwarded_addresses_count_separately_behind_a_trusted_proxy(app_server_factory, api_client):
    server, clock = await start(app_server_factory, {"login_failures_per_user": 50, "login_failures_per_address": 3},
                                {"trusted_proxies": ["127.0.0.1/32"]})
    client = await api_client(server)
    first = {"X-Forwarded-For": "203.0.113.1"}
    for _ in range(3):
        assert_error(await login(client, "wrong-pass", headers=first), 401)
    assert_throttled(await login(client, client.password, headers=first), 900)
    # a client that prepends its own entry is still the address the proxy appended
    assert_throttled(await login(client, client.password, headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.1"}), 900)
    second = {"X-Forwarded-For": "203.0.113.2"}
    assert_error(await login(client, "wrong-pass", headers=second), 401)
    assert (await login(client, client.password, headers=second)).status_code == 200


async def test_operator_endpoints_from_loopback_without_a_token(app_server_factory, api_client, monkeypatch):
    monkeypatch.delenv("MIANSHI_ADMIN_TOKEN", raising=False)
    server, clock = await start(app_server_factory)
    client = await api_client(server)
    for method, path in OPERATOR_ROUTES:
        r = await client.request(method, path, auth=False)
        assert r.status_code == 200 and r.json()["success"] is True, (path, r.text)
        for header in ({"X-Forwarded-For": "198.51.100.9"}, {"X-Real-IP": "198.51.100.9"},
                       {"Forwarded": "for=198.51.100.9"}):
            assert_error(await client.request(method, path, auth=False, headers=header), 403)
    assert "sessions" in (await client.get("/-/stats", auth=False)).json()


async def test_operator_endpoints_need_the_admin_token_when_one_is_set(app_server_factory, api_client, monkeypatch):
    monkeypatch.setenv("MIANSHI_ADMIN_TOKEN", "op-token-123")
    server, clock = await start(app_server_factory)
    client = await api_client(server)
    for method, path in OPERATOR_ROUTES:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "op-token-123"},
                        {"Authorization": f"Bearer {client.token}"}):       # a user's token is not the admin's
            r = await client.request(method, path, auth=False, headers=headers)
            assert_error(r, 401, "Authorization")
            assert r.headers["WWW-Authenticate"] == "Bearer"
        for headers in ({"Authorization": "Bearer op-token-123"},
                        {"Authorization": "Bearer op-token-123", "X-Forwarded-For": "198.51.100.9"}):
            r = await client.request(method, path, auth=False, headers=headers)
            assert r.status_code == 200 and r.json()["success"] is True, (path, r.text)
    listing = (await client.get("/-/plugins", auth=False, headers={"Authorization": "Bearer op-token-123"})).json()
    assert listing["plugins"] and "sessions" not in listing
