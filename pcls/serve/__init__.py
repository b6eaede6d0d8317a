"""`pcls serve`: an exported model behind HTTP (FastAPI + uvicorn, the `serve` extra), with concurrent requests
batched into one predictor call, request limits, Prometheus metrics and a page to try it (`pcls.serve.app`)."""
