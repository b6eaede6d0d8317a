"""Backbones: one module per family, shared blocks in `pcls.arch.layers`, names in `pcls.arch.registry`.

Family modules are discovered (not listed by hand): every module in this package other than
`registry`, `base` and `layers` is a family and registers its constructors with `@register`.
"""
