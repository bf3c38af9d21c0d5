"""mianshi: the composition root. ``create_app()`` wires configuration, storage, the engine and the
HTTP/WebSocket routes; ``python sanic_app.py`` serves on the configured host and port (0.0.0.0:8000,
``PORT`` and ``MIANSHI_DATA_DIR`` override)."""
from __future__ import annotations

import importlib
import importlib.util
import itertools
import logging
import sys

from sanic import Sanic

from api import errors
from api.auth import jwt_secret
from api.netaddr import trusted_proxies
from api.throttle import Throttle
from api.ws_lean import LeanWebSocketProtocol
from core.clock import SystemClock
from core.config import ConfigError, data_dir, load_config

log = logging.getLogger("mianshi")

# Routes owned by other parts of the project, registered when their module is present.
OPTIONAL_BLUEPRINTS = ("api.ws", "api.reports", "api.media", "api.plugins_listing", "api.stats", "api.static",
                       "api.resume_import")
_names = itertools.count()


# The server protocol every start uses (app.run here, app.create_server in tests and benchmarks):
# Sanic's, with WebSocket messages received without a task each (api/ws_lean.py).
SERVER_PROTOCOL = LeanWebSocketProtocol


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _app_name() -> str:
    while True:
        n = next(_names)
        name = "mianshi" if n == 0 else f"mianshi_{n}"
        if name not in Sanic._app_registry:
            return name


def create_app(config_overrides: dict | None = None, *, clock=None, extra_plugins=()) -> Sanic:
    config = load_config(overrides=config_overrides)
    app = Sanic(_app_name())
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_TITLE = "mianshi 面试 API"
    app.config.OAS_DESCRIPTION = ("实时 AI 模拟面试后端。WebSocket 协议见 /ws/webrtc/ 与 "
                                  "webrtc-interview-ws-guide.zh.md。")
    app.config.OAS_URL_PREFIX = "/docs"
    app.config.CORS = False
    max_ws = int(config.get("server", {}).get("max_ws_message_bytes", 2_000_000))
    # The protocol limit is above the message limit, so that an oversized message gets an ``error``
    # from the handler (api/ws.py) instead of a closed connection.
    app.config.WEBSOCKET_MAX_SIZE = max_ws * 4
    # (file uploads, api/resume_import.py, are streamed and have their own limit)
    app.config.REQUEST_MAX_SIZE = max(max_ws, 1_000_000)
    # A peer that vanished (no FIN: a dead network, a sleeping laptop) is found by pings: it is
    # dropped after at most interval + timeout seconds without a pong (default 10 + 10).
    server_cfg = config.get("server", {})
    app.config.WEBSOCKET_PING_INTERVAL = float(server_cfg.get("ws_ping_interval_seconds", 10.0))
    app.config.WEBSOCKET_PING_TIMEOUT = float(server_cfg.get("ws_ping_timeout_seconds", 10.0))
    app.ctx.config = config
    app.ctx.jwt_secret = jwt_secret(config)
    app.ctx.clock = clock or SystemClock()
    app.ctx.trusted_proxies = trusted_proxies(config)
    app.ctx.throttle = Throttle(config, app.ctx.clock)
    app.ctx.extra_plugins = tuple(extra_plugins)
    app.ctx.embedded = None
    app.ctx.engine = None
    app.ctx.mongo_client = None
    app.ctx.ws_connections = {}          # user id -> open WebSocket connections (api/ws.py)
    app.ctx.ws_endings = set()           # connections being ended (api/ws.py)

    errors.install(app)
    app.ext.openapi.add_security_scheme("token", "http", scheme="bearer", bearer_format="JWT")

    from api import interviews, resumes, users
    for module in (users, resumes, interviews):
        app.blueprint(module.bp)
    for name in OPTIONAL_BLUEPRINTS:
        if _module_exists(name):
            app.blueprint(importlib.import_module(name).bp)

    app.before_server_start(_start)
    app.after_server_stop(_stop)
    return app


async def _start(app: Sanic) -> None:
    from core.engine import Engine
    from storage import db as dbmod
    from storage.embedded import EmbeddedMongo
    from storage.store import Store

    config = app.ctx.config
    storage = config.get("storage", {})
    uri = storage.get("mongodb_uri")
    try:
        if not uri:
            app.ctx.embedded = EmbeddedMongo(data_dir(config))
            uri = await app.ctx.embedded.start()
        client, database = dbmod.connect(uri, storage.get("database", "mianshi"))
        app.ctx.mongo_client = client
        app.ctx.db = database
        await dbmod.ping(database)
        await dbmod.create_indexes(database)
        app.ctx.store = Store(database)

        from core.loopmon import LoopLagMonitor
        app.ctx.loop_monitor = LoopLagMonitor()
        app.ctx.loop_monitor.start()

        app.ctx.engine = Engine(config, store=app.ctx.store, clock=app.ctx.clock,
                                extra_plugins=app.ctx.extra_plugins)
        await app.ctx.engine.start()
        app.ctx.loop_monitor.listeners.append(app.ctx.engine.observe_loop_lag)   # the partial cadence
        from core.recording import RetentionSweep
        app.ctx.retention = RetentionSweep(app.ctx.store, app.ctx.clock, config.get("recordings", {}))
        app.ctx.retention.start()
    except BaseException:
        # Do not leave a database server behind when start-up fails half way.
        app.ctx.engine = None
        await _stop(app)
        raise


async def _stop(app: Sanic) -> None:
    from storage import db as dbmod
    try:
        if getattr(app.ctx, "loop_monitor", None) is not None:
            await app.ctx.loop_monitor.stop()
        if getattr(app.ctx, "retention", None) is not None:
            await app.ctx.retention.aclose()
        if app.ctx.engine is not None:
            await app.ctx.engine.close()
    finally:
        if app.ctx.mongo_client is not None:
            dbmod.close(app.ctx.mongo_client)
            app.ctx.mongo_client = None
        if app.ctx.embedded is not None:
            await app.ctx.embedded.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    if not app.ctx.config.get("storage", {}).get("mongodb_uri"):
        # Prepare the embedded database before serving, so a missing Python 3.13 is one clear message.
        from storage.embedded import EmbeddedMongoError, ensure_venv
        try:
            ensure_venv()
        except EmbeddedMongoError as exc:
            print(f"mianshi cannot start: {exc}", file=sys.stderr)
            sys.exit(1)
    server = app.ctx.config["server"]
    try:
        app.run(host=server["host"], port=int(server["port"]), single_process=True, auto_reload=False,
                access_log=False, motd=True, protocol=SERVER_PROTOCOL)
    except OSError as exc:
        print(f"mianshi cannot start: cannot listen on {server['host']}:{server['port']} ({exc.strerror}); "
              f"set PORT to a free port", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
