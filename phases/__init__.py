"""Built-in interview phases (plugins registered through ``register_phases``)."""
