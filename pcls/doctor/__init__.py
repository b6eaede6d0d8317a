"""`pcls doctor`: what this machine can do with pcls (facts, then one row per capability with its fix), the
end-to-end self-check of every GPU path (`pcls doctor --run`), and the guard that refuses a Paddle older than 3.0
where it is first imported. Importing this package imports nothing heavy."""
