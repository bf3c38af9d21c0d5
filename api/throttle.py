"""Abuse limits on the account routes: failed logins per username and per client address,
registrations per client address (``[throttle]`` in plugins.toml).

Counters are sliding windows in memory on the app's clock, so they are per process: N instances
behind a load balancer give an attacker N times the budget (rate-limit at the proxy as well)."""
from __future__ import annotations

import math
from collections import OrderedDict, deque

from api.errors import ApiError
from core.config import ConfigError

MAX_KEYS = 10_000       # per window; memory is at most MAX_KEYS x limit timestamps

DEFAULTS = {
    "login_failures_per_user": 10,
    "login_failures_per_address": 100,      # a campus behind one NAT address shares this
    "login_window_seconds": 900,
    "registrations_per_address": 20,
    "registration_window_seconds": 3600,
}


class SlidingWindow:
    """At most ``limit`` events per ``window`` seconds for each key, over an injected clock. At most
    ``max_keys`` keys are tracked: the one touched least recently is forgotten first."""

    def __init__(self, limit: int, window: float, clock, max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float] | None:
        times = self._times.get(key)
        if times is None:
            return None
        cutoff = self.clock.now() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._times[key]
            return None
        return times

    def retry_after(self, key: str) -> float:
        """0 when one more event is allowed now, else the seconds until it is."""
        times = self._recent(key)
        if times is None or len(times) < self.limit:
            return 0.0
        return times[0] + self.window - self.clock.now()

    def hit(self, key: str) -> None:
        times = self._recent(key)
        if times is None:
            times = self._times[key] = deque(maxlen=self.limit)
            if len(self._times) > self.max_keys:
                self._times.popitem(last=False)
        else:
            self._times.move_to_end(key)
        times.append(self.clock.now())

    def clear(self, key: str) -> None:
        self._times.pop(key, None)

    def __len__(self) -> int:
        return len(self._times)


def refuse_if_limited(window: SlidingWindow, key: str, msg: str, field: str | None = None) -> None:
    """429 with ``Retry-After`` (whole seconds) when ``key`` has used up ``window``; ``msg`` gets the
    seconds through ``{seconds}``."""
    wait = window.retry_after(key)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(429, msg.format(seconds=seconds), field, headers={"Retry-After": str(seconds)})


class Throttle:
    def __init__(self, config: dict, clock) -> None:
        settings = {**DEFAULTS, **config.get("throttle", {})}
        for name, value in settings.items():
            if name in DEFAULTS and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1):
                raise ConfigError(f"[throttle] {name} must be a positive number, got {value!r}")
        login_window = float(settings["login_window_seconds"])
        self.login_user = SlidingWindow(int(settings["login_failures_per_user"]), login_window, clock)
        self.login_address = SlidingWindow(int(settings["login_failures_per_address"]), login_window, clock)
        self.registration = SlidingWindow(int(settings["registrations_per_address"]),
                                          float(settings["registration_window_seconds"]), clock)

    def check_login(self, username: str, address: str) -> None:
        refuse_if_limited(self.login_user, username, "该账号登录失败次数过多，请 {seconds} 秒后再试", "username")
        refuse_if_limited(self.login_address, address, "当前网络登录失败次数过多，请 {seconds} 秒后再试")

    def login_failed(self, username: str, address: str) -> None:
        self.login_user.hit(username)
        self.login_address.hit(address)

    def login_succeeded(self, username: str) -> None:
        # The address keeps its count: one user's success says nothing about the others behind it.
        self.login_user.clear(username)

    def check_registration(self, address: str) -> None:
        refuse_if_limited(self.registration, address, "当前网络注册过于频繁，请 {seconds} 秒后再试")

    def registered(self, address: str) -> None:
        self.registration.hit(address)
