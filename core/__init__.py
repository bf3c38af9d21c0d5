"""mianshi core: hook specifications, typed events, the phase protocol and the interview engine.

Nothing in this package imports sanic or motor: the web layer (sanic_app.py) and the storage layer
(storage/) are plugged in from the outside.
"""
