"""Small utilities shared across pcls (no paddle imports here)."""
